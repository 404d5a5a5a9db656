"""Connect: connected accounts, account links, login links, hosted onboarding.

Mirrors https://docs.stripe.com/api/accounts for Express accounts as a platform sees them:

- create (``type=express`` or a ``controller``; ``country``, ``email``, ``metadata``,
  ``capabilities[transfers][requested]`` - requested by default): the account starts
  restricted, ``details_submitted``/``charges_enabled``/``payouts_enabled`` false,
  ``requirements.currently_due`` listing what onboarding collects and
  ``requirements.disabled_reason = "requirements.past_due"``, ``capabilities.transfers =
  "inactive"``; retrieve (also ``GET /v1/account`` with ``Stripe-Account``), update (emits
  ``account.updated`` with ``previous_attributes``), delete, list;
- account links (``type=account_onboarding|account_update``, ``refresh_url``, ``return_url``)
  point at ``GET /connect/onboard/acct_...?link=...``. Like Stripe's, a link is single-use and
  expires after 300 s: opening a used or expired link redirects to ``refresh_url``. Submitting
  the form fills the requirements, adds a bank account, activates ``transfers`` (and
  ``card_payments`` if requested), sets ``details_submitted``/``payouts_enabled`` and emits
  ``account.updated``; then the browser goes to ``return_url`` (303). "Return without
  finishing" goes to ``return_url`` and changes nothing - ``return_url`` never means done;
- login links for onboarded Express accounts open a tiny dashboard page;
- ``POST /_test/accounts/{id}/complete_onboarding`` does what the form does;
  ``POST /_test/accounts/{id}/restrict`` (``disabled_reason``, ``currently_due``) disables
  payouts and the transfers capability, as Stripe does when requirements fall past due.

All ``account.updated`` events are Connect events: ``event.account`` is the connected account.

Simplified: no persons, external-account API, capability objects, verification states,
``future_requirements`` or rejection; countries map to a default currency from a short table.
"""

from __future__ import annotations

from typing import Any

from stripe_local import pages
from stripe_local.errors import invalid_request, resource_missing
from stripe_local.money import balance_object
from stripe_local.router import Request, Response, RouteTable
from stripe_local.state import Store, random_token, sub_list
from stripe_local.wire import Params, metadata_apply, paginate, public

routes = RouteTable("api")

LINK_TTL = 300
CURRENCY_BY_COUNTRY = {
    "US": "usd", "GB": "gbp", "CA": "cad", "AU": "aud", "NZ": "nzd", "CH": "chf", "SE": "sek",
    "DK": "dkk", "NO": "nok", "PL": "pln", "CZ": "czk", "JP": "jpy", "SG": "sgd", "HK": "hkd",
}
EURO_COUNTRIES = {
    "AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV",
    "MT", "NL", "PT", "SI", "SK",
}
ONBOARDING_REQUIREMENTS = [
    "business_profile.mcc", "business_profile.url", "business_type", "external_account",
    "individual.address.city", "individual.address.line1", "individual.address.postal_code",
    "individual.dob.day", "individual.dob.month", "individual.dob.year", "individual.email",
    "individual.first_name", "individual.last_name", "individual.phone", "tos_acceptance.date",
    "tos_acceptance.ip",
]


def _requirements(due: list[str], disabled_reason: str | None) -> dict[str, Any]:
    return {
        "alternatives": [], "current_deadline": None, "currently_due": list(due),
        "disabled_reason": disabled_reason, "errors": [], "eventually_due": list(due),
        "past_due": list(due), "pending_verification": [],
    }


def _capabilities(p: Params) -> dict[str, str]:
    caps = p.obj("capabilities")
    if caps is None:
        return {"transfers": "inactive"}
    caps.only("transfers", "card_payments")
    result = {}
    for name in ("transfers", "card_payments"):
        cap = caps.obj(name)
        if cap is not None:
            cap.only("requested")
            if cap.bool("requested"):
                result[name] = "inactive"
    return result or {"transfers": "inactive"}


@routes.post("/v1/accounts")
def account_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("type", "controller", "country", "email", "metadata", "capabilities",
                        "business_type", "business_profile", "tos_acceptance",
                        "default_currency")
    account_type = p.str("type", choices=("express", "standard", "custom"))
    if account_type is None and not p.has("controller"):
        raise invalid_request("You must provide either `type` or `controller`.", param="type")
    country = (p.str("country") or "US").upper()
    currency = p.currency("default_currency", required=False) or CURRENCY_BY_COUNTRY.get(
        country, "eur" if country in EURO_COUNTRIES else "usd")
    profile = p.obj("business_profile")
    if profile is not None:
        profile.only("name", "url", "mcc", "product_description", "support_email")
    tos = p.obj("tos_acceptance")
    if tos is not None:
        tos.only("service_agreement")
    metadata = metadata_apply({}, p.metadata())
    capabilities = _capabilities(p)
    req.begin()
    account_id = store.new_id("acct")
    account = {
        "id": account_id,
        "object": "account",
        "business_profile": {
            "annual_revenue": None, "estimated_worker_count": None,
            "mcc": profile.str("mcc") if profile else None,
            "name": profile.str("name") if profile else None,
            "product_description": profile.str("product_description") if profile else None,
            "support_address": None,
            "support_email": profile.str("support_email") if profile else None,
            "support_phone": None, "support_url": None,
            "url": profile.str("url") if profile else None,
        },
        "business_type": p.str("business_type"),
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": {
            "fees": {"payer": "application_express"}, "is_controller": True,
            "losses": {"payments": "application"}, "requirement_collection": "stripe",
            "stripe_dashboard": {"type": account_type or "express"}, "type": "application",
        },
        "country": country,
        "created": store.now(),
        "default_currency": currency,
        "details_submitted": False,
        "email": p.str("email"),
        "external_accounts": sub_list([], f"/v1/accounts/{account_id}/external_accounts"),
        "future_requirements": _requirements([], None),
        "metadata": metadata,
        "payouts_enabled": False,
        "requirements": _requirements(ONBOARDING_REQUIREMENTS, "requirements.past_due"),
        "settings": {
            "payouts": {"debit_negative_balances": True,
                        "schedule": {"delay_days": 2, "interval": "daily"},
                        "statement_descriptor": None},
        },
        "tos_acceptance": {
            "date": None, "ip": None, "user_agent": None,
            "service_agreement": (tos.str("service_agreement") if tos else None) or "full",
        },
        "type": account_type or "express",
    }
    store.add(account, account=None)
    return req.render(account)


def _connected(req: Request, account_id: str) -> dict[str, Any]:
    """A connected account the caller may see: any of them for the platform, itself else."""
    account = req.store.get(account_id, kind="account")
    if account is None or (req.account is not None and req.account != account_id):
        raise resource_missing("account", account_id)
    return account


@routes.get("/v1/accounts/{id}")
def account_retrieve(req: Request) -> dict[str, Any]:
    return req.render(_connected(req, req.args["id"]))


@routes.get("/v1/account")
def account_retrieve_own(req: Request) -> dict[str, Any]:
    if req.account is None:
        return {"id": "acct_local_platform", "object": "account", "business_profile": {
            "name": "Blanket (local Stripe)"}, "charges_enabled": True, "country": "US",
            "default_currency": "usd", "details_submitted": True, "payouts_enabled": True,
            "type": "standard", "metadata": {}}
    return req.render(_connected(req, req.account))


@routes.get("/v1/accounts")
def account_list(req: Request) -> dict[str, Any]:
    items = req.store.all("account", account=None)
    return paginate(items, req.params, "/v1/accounts", req.render)


def account_changed(store: Store, account: dict[str, Any], previous: dict[str, Any]) -> None:
    store.emit("account.updated", account, account=account["id"], previous=previous)


@routes.post("/v1/accounts/{id}")
def account_update(req: Request) -> dict[str, Any]:
    account = _connected(req, req.args["id"])
    p = req.params.only("email", "metadata", "business_profile", "business_type",
                        "default_currency")
    changes: dict[str, Any] = {}
    if p.has("email"):
        changes["email"] = p.str("email")
    if p.has("business_type"):
        changes["business_type"] = p.str("business_type")
    if p.has("default_currency"):
        changes["default_currency"] = p.currency("default_currency")
    if p.has("metadata"):
        changes["metadata"] = metadata_apply(account["metadata"], p.metadata())
    profile = p.obj("business_profile")
    if profile is not None:
        profile.only("name", "url", "mcc", "product_description", "support_email")
        changes["business_profile"] = {
            **account["business_profile"],
            **{k: profile.str(k) for k in profile.data},
        }
    req.begin()
    previous = {k: public(account[k]) for k in changes if account[k] != changes[k]}
    account.update(changes)
    if previous:
        account_changed(req.store, account, previous)
    return req.render(account)


@routes.delete("/v1/accounts/{id}")
def account_delete(req: Request) -> dict[str, Any]:
    account = _connected(req, req.args["id"])
    req.begin()
    req.store.remove(account["id"])
    return {"id": account["id"], "object": "account", "deleted": True}


# -- onboarding ---------------------------------------------------------------------------------
def account_onboarding_complete(store: Store, account: dict[str, Any], *,
                                business_name: str | None = None,
                                iban: str = "DE89370400440532013000") -> None:
    previous = public({k: account[k] for k in (
        "capabilities", "charges_enabled", "details_submitted", "payouts_enabled",
        "requirements")})
    now = store.now()
    account["capabilities"] = {name: "active" for name in account["capabilities"]}
    account.update(
        details_submitted=True,
        payouts_enabled=True,
        charges_enabled=account["capabilities"].get("card_payments") == "active",
        requirements=_requirements([], None),
    )
    account["tos_acceptance"].update(date=now, ip="127.0.0.1")
    if business_name:
        account["business_profile"]["name"] = business_name
    if not account["external_accounts"]["data"]:
        digits = "".join(ch for ch in iban if ch.isdigit()) or "000000006789"
        account["external_accounts"]["data"].append({
            "id": "ba_" + random_token(), "object": "bank_account", "account": account["id"],
            "account_holder_name": business_name, "account_holder_type": "individual",
            "bank_name": "STRIPE TEST BANK", "country": account["country"],
            "currency": account["default_currency"], "default_for_currency": True,
            "fingerprint": random_token(16), "last4": digits[-4:], "metadata": {},
            "routing_number": "110000000", "status": "new",
        })
        account["external_accounts"]["total_count"] = 1
    account_changed(store, account, previous)


@routes.post("/v1/account_links")
def account_link_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("account", "type", "refresh_url", "return_url", "collect",
                        "collection_options")
    account = req.find("account", p.str("account", required=True) or "", param="account")
    link_type = p.str("type", required=True, choices=("account_onboarding", "account_update"))
    refresh_url = p.str("refresh_url", required=True)
    return_url = p.str("return_url", required=True)
    req.begin()
    token = random_token(32)
    now = store.now()
    store.account_links[token] = {
        "account": account["id"], "type": link_type, "refresh_url": refresh_url,
        "return_url": return_url, "expires_at": now + LINK_TTL, "state": "new",
    }
    return {
        "object": "account_link",
        "created": now,
        "expires_at": now + LINK_TTL,
        "url": f"{store.base_url}/connect/onboard/{account['id']}?link={token}",
    }


@routes.post("/v1/accounts/{id}/login_links")
def login_link_create(req: Request) -> dict[str, Any]:
    account = _connected(req, req.args["id"])
    req.params.only()
    if not account["details_submitted"]:
        raise invalid_request("Cannot create a login link for an account that has not "
                              "completed onboarding.", param="account")
    req.begin()
    return {"object": "login_link", "created": req.store.now(),
            "url": f"{req.store.base_url}/connect/express/{account['id']}"}


@routes.get("/connect/onboard/{id}", kind="page")
def onboarding_page(req: Request) -> Response:
    store = req.store
    token = req.query_args().get("link", "")
    link = store.account_links.get(token)
    account = store.get(req.args["id"], kind="account")
    if link is None or account is None or link["account"] != account["id"]:
        return Response.html(pages.message_page("Link invalid", "This link is not valid."), 404)
    if link["state"] != "new" or link["expires_at"] < store.now():
        link["state"] = "expired"
        return Response.redirect(link["refresh_url"], 302)
    link["state"] = "opened"
    return Response.html(pages.onboarding_page(account, token))


@routes.post("/connect/onboard/{id}", kind="page")
def onboarding_submit(req: Request) -> Response:
    store = req.store
    form = req.form()
    link = store.account_links.get(form.get("link", ""))
    account = store.get(req.args["id"], kind="account")
    if link is None or account is None or link["account"] != account["id"] \
            or link["state"] != "opened":
        return Response.html(pages.message_page("Link invalid", "This link has expired."), 410)
    link["state"] = "used"
    if form.get("action") == "submit":
        account_onboarding_complete(store, account, business_name=form.get("business_name"),
                                    iban=form.get("iban", ""))
    return Response.redirect(link["return_url"])


@routes.get("/connect/express/{id}", kind="page")
def express_dashboard(req: Request) -> Response:
    account = req.store.get(req.args["id"], kind="account")
    if account is None:
        return Response.html(pages.message_page("Not found", "No such account."), 404)
    payouts = req.store.all("payout", account=account["id"])
    return Response.html(pages.express_dashboard_page(
        account, balance_object(req.store, account["id"]), payouts))


# -- test helpers -------------------------------------------------------------------------------
def _test_account(req: Request) -> dict[str, Any]:
    account = req.store.get(req.args["id"], kind="account")
    if account is None:
        raise resource_missing("account", req.args["id"])
    return account


@routes.post("/_test/accounts/{id}/complete_onboarding", kind="test")
def account_complete_onboarding_helper(req: Request) -> dict[str, Any]:
    account = _test_account(req)
    body = req.json()
    account_onboarding_complete(req.store, account, business_name=body.get("business_name"))
    return public(account)


@routes.post("/_test/accounts/{id}/restrict", kind="test")
def account_restrict_helper(req: Request) -> dict[str, Any]:
    """``{"disabled_reason": "requirements.past_due", "currently_due": [...]}``."""
    account = _test_account(req)
    body = req.json()
    reason = body.get("disabled_reason", "requirements.past_due")
    due = body.get("currently_due") or ["individual.verification.document"]
    previous = public({k: account[k] for k in (
        "capabilities", "charges_enabled", "payouts_enabled", "requirements")})
    account["capabilities"] = {name: "inactive" for name in account["capabilities"]}
    account.update(payouts_enabled=False, charges_enabled=False,
                   requirements=_requirements(due, reason))
    account_changed(req.store, account, previous)
    return public(account)
