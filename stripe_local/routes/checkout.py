"""Checkout Sessions (mode=payment) and the hosted Checkout page.

Mirrors https://docs.stripe.com/api/checkout/sessions for one-off payments:

- create with ``line_items[][price_data]`` (currency, unit_amount, product_data[name]) and
  ``quantity``, ``customer`` or ``customer_email`` (not both), ``success_url``/``cancel_url``,
  ``client_reference_id``, ``metadata``, ``payment_intent_data[metadata|description|
  transfer_group|receipt_email]``, ``expires_at``; the session is ``open``/``unpaid`` with a
  ``url`` to the hosted page and, as on Stripe since 2022-08-01, no PaymentIntent yet;
- the hosted page ``GET /pay/cs_...`` (also ``POST /_test/checkout_sessions/{id}/pay``) creates
  the PaymentIntent on the first attempt and charges the card (``payment_intent_attempt``). On
  success the session becomes ``complete``/``paid``, ``url`` becomes null,
  ``checkout.session.completed`` is emitted and the browser is sent (303) to ``success_url``
  with ``{CHECKOUT_SESSION_ID}`` replaced. A declined card leaves the session ``open`` (the
  customer may try again; the same PaymentIntent is reused) and emits
  ``payment_intent.payment_failed``. Cancel sends the browser to ``cancel_url`` and changes
  nothing, as on Stripe;
- ``expire`` (open sessions only; cancels the intent if one exists), ``line_items`` list and
  ``expand[]=line_items``.

Simplified: payment mode and card only; no Prices/Products API (``price`` ids are refused),
no discounts, tax, shipping, adaptive pricing or customer creation; sessions do not expire on
their own at ``expires_at``; the minimum charge is 50 minor units in every currency.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from stripe_local import pages
from stripe_local.cards import DECLINE_MESSAGES, card_for
from stripe_local.errors import StripeError, card_error, invalid_request, resource_missing
from stripe_local.router import Request, Response, RouteTable
from stripe_local.routes.payments import payment_intent_attempt, payment_intent_create
from stripe_local.state import Store, random_token
from stripe_local.wire import Params, list_object, metadata_apply, paginate, public

routes = RouteTable("api")

MINIMUM_AMOUNT = 50


def _url(p: Params, key: str) -> str | None:
    value = p.str(key, max_length=5000)
    if value is not None:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise invalid_request("Not a valid URL", param=key, code="url_invalid")
    return value


def _line_item(store: Store, p: Params) -> dict[str, Any]:
    p.only("price", "price_data", "quantity")
    if p.has("price"):
        raise resource_missing("price", p.str("price") or "", param=p.name("price"))
    pd = p.obj("price_data", required=True)
    assert pd is not None
    pd.only("currency", "unit_amount", "product_data", "tax_behavior")
    currency = pd.currency()
    unit_amount = pd.int("unit_amount", required=True, minimum=0)
    product = pd.obj("product_data", required=True)
    assert product is not None
    product.only("name", "description", "metadata", "images")
    name = product.str("name", required=True)
    quantity = p.int("quantity", required=True, minimum=1)
    assert currency is not None and unit_amount is not None and quantity is not None
    total = unit_amount * quantity
    created = store.now()
    return {
        "id": "li_" + random_token(),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": total,
        "amount_tax": 0,
        "amount_total": total,
        "currency": currency,
        "description": name,
        "metadata": {},
        "price": {
            "id": "price_" + random_token(), "object": "price", "active": False,
            "billing_scheme": "per_unit", "created": created, "currency": currency,
            "custom_unit_amount": None, "livemode": False, "lookup_key": None, "metadata": {},
            "nickname": None, "product": "prod_" + random_token(14), "recurring": None,
            "tax_behavior": pd.str("tax_behavior") or "unspecified", "tiers_mode": None,
            "transform_quantity": None, "type": "one_time", "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def _line_items_list(store: Store, session: dict[str, Any]) -> dict[str, Any]:
    return list_object(session["_items"], f"/v1/checkout/sessions/{session['id']}/line_items")


def register_includables(store: Store) -> None:
    store.includables[("checkout.session", "line_items")] = _line_items_list


@routes.post("/v1/checkout/sessions")
def checkout_session_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only(
        "mode", "line_items", "customer", "customer_email", "success_url", "cancel_url",
        "client_reference_id", "metadata", "payment_intent_data", "expires_at",
        "payment_method_types", "locale", "submit_type", "ui_mode",
    )
    mode = p.str("mode", required=True)
    if mode != "payment":
        raise invalid_request("stripe_local supports only mode=payment", param="mode")
    if p.str("ui_mode", default="hosted") != "hosted":
        raise invalid_request("stripe_local supports only ui_mode=hosted", param="ui_mode")
    for method in p.strings("payment_method_types"):
        if method != "card":
            raise invalid_request(f"Invalid payment_method_types: {method}",
                                  param="payment_method_types")
    raw_items = p.items("line_items", required=True)
    items = [_line_item(store, item) for item in raw_items]
    currencies = {i["currency"] for i in items}
    if len(currencies) > 1:
        raise invalid_request("All line items must have the same currency.",
                              param="line_items")
    currency = currencies.pop()
    total = sum(i["amount_total"] for i in items)
    if total < MINIMUM_AMOUNT:
        raise invalid_request(
            f"The Checkout Session's total amount due must add up to at least "
            f"{MINIMUM_AMOUNT} minor units of {currency}", code="amount_too_small",
            param="line_items")
    customer_id = p.str("customer")
    customer_email = p.str("customer_email")
    if customer_id and customer_email:
        raise invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email")
    customer = req.find("customer", customer_id, param="customer") if customer_id else None
    pi_data = p.obj("payment_intent_data") or Params({}, "payment_intent_data")
    pi_data.only("metadata", "description", "transfer_group", "receipt_email")
    now = store.now()
    expires_at = p.int("expires_at", default=now + 86400)
    assert expires_at is not None
    if not now + 1800 <= expires_at <= now + 86400:
        raise invalid_request(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            param="expires_at")
    session_id = "cs_test_" + random_token(56)
    session: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": _url(p, "cancel_url"),
        "client_reference_id": p.str("client_reference_id", max_length=200),
        "client_secret": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {"after_submit": None, "shipping_address": None, "submit": None,
                        "terms_of_service_acceptance": None},
        "customer": customer["id"] if customer else None,
        "customer_creation": None if customer else "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "expires_at": expires_at,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": p.str("locale"),
        "metadata": metadata_apply({}, p.metadata()),
        "mode": "payment",
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": p.str("submit_type"),
        "subscription": None,
        "success_url": _url(p, "success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"{store.base_url}/pay/{session_id}",
        "_items": items,
        "_pi_data": {
            "metadata": metadata_apply({}, pi_data.metadata()),
            "description": pi_data.str("description"),
            "transfer_group": pi_data.str("transfer_group"),
            "receipt_email": pi_data.str("receipt_email"),
        },
    }
    req.begin()
    store.add(session, account=req.account)
    return req.render(session)


@routes.get("/v1/checkout/sessions/{id}")
def checkout_session_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("checkout.session", req.args["id"]))


@routes.get("/v1/checkout/sessions")
def checkout_session_list(req: Request) -> dict[str, Any]:
    intent = req.params.str("payment_intent")
    customer = req.params.str("customer")
    status = req.params.str("status")
    items = req.store.all(
        "checkout.session", account=req.account,
        where=lambda s: (intent is None or s["payment_intent"] == intent)
        and (customer is None or s["customer"] == customer)
        and (status is None or s["status"] == status),
    )
    return paginate(items, req.params, "/v1/checkout/sessions", req.render)


@routes.get("/v1/checkout/sessions/{id}/line_items")
def checkout_session_line_items(req: Request) -> dict[str, Any]:
    session = req.find("checkout.session", req.args["id"])
    return paginate(list(session["_items"]), req.params,
                    f"/v1/checkout/sessions/{session['id']}/line_items")


@routes.post("/v1/checkout/sessions/{id}/expire")
def checkout_session_expire(req: Request) -> dict[str, Any]:
    session = req.find("checkout.session", req.args["id"])
    req.params.only()
    if session["status"] != "open":
        raise invalid_request(
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".', param="session")
    req.begin()
    checkout_session_expire_now(req.store, session)
    return req.render(session)


def checkout_session_expire_now(store: Store, session: dict[str, Any]) -> None:
    account = session["_account"]
    session.update(status="expired", url=None)
    if session["payment_intent"]:
        intent = store.get(session["payment_intent"])
        if intent and intent["status"] != "succeeded":
            intent.update(status="canceled", canceled_at=store.now(),
                          cancellation_reason="abandoned")
            store.emit("payment_intent.canceled", intent, account=account)
    store.emit("checkout.session.expired", session, account=account)


def _redirect_target(session: dict[str, Any]) -> str | None:
    url = session["success_url"]
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def checkout_session_pay(store: Store, session: dict[str, Any], card_number: str, *,
                         email: str | None = None) -> dict[str, Any]:
    """The customer presses Pay: returns the Charge, or raises a ``card_error``."""
    if session["status"] != "open":
        raise invalid_request(f"This Checkout Session is {session['status']}.",
                              code="checkout_session_inactive")
    card = card_for(card_number)
    if card.decline_code == "incorrect_number":
        # Checkout validates the number in the browser: nothing reaches the API.
        raise card_error(DECLINE_MESSAGES["incorrect_number"], code="incorrect_number")
    account = session["_account"]
    customer = store.get(session["customer"]) if session["customer"] else None
    email = email or session["customer_email"] or (customer or {}).get("email")
    if session["payment_intent"] is None:
        pi_data = session["_pi_data"]
        intent = payment_intent_create(
            store, amount=session["amount_total"], currency=session["currency"],
            customer=session["customer"], metadata=pi_data["metadata"],
            description=pi_data["description"], transfer_group=pi_data["transfer_group"],
            receipt_email=pi_data["receipt_email"], account=account)
        session["payment_intent"] = intent["id"]
    else:
        intent = store.get(session["payment_intent"])
        assert intent is not None
    charge = payment_intent_attempt(store, intent, card, email=email)
    if charge["status"] != "succeeded":
        raise card_error(charge["failure_message"], code=charge["failure_code"],
                         decline_code=charge["outcome"]["reason"],
                         extra={"charge": charge["id"], "payment_intent": public(intent)})
    session.update(
        status="complete", payment_status="paid", url=None,
        customer_details={"address": None, "email": email, "name": None, "phone": None,
                          "tax_exempt": "none", "tax_ids": []},
    )
    store.emit("checkout.session.completed", session, account=account)
    return charge


def _hosted_session(req: Request) -> dict[str, Any] | None:
    return req.store.get(req.args["id"], kind="checkout.session")


@routes.get("/pay/{id}", kind="page")
def checkout_page(req: Request) -> Response:
    session = _hosted_session(req)
    if session is None:
        return Response.html(pages.message_page("Not found", "No such Checkout Session."), 404)
    if session["status"] == "complete":
        return Response.html(pages.message_page("Paid", "This payment is complete.", ok=True))
    if session["status"] != "open":
        return Response.html(pages.message_page(
            "Session expired", "This Checkout Session is no longer active."), 410)
    return Response.html(pages.checkout_page(session, session["_items"]))


@routes.post("/pay/{id}", kind="page")
def checkout_page_submit(req: Request) -> Response:
    session = _hosted_session(req)
    if session is None or session["status"] != "open":
        return checkout_page(req)
    form = req.form()
    if form.get("action") == "cancel":
        if session["cancel_url"]:
            return Response.redirect(session["cancel_url"])
        return Response.html(pages.message_page("Cancelled", "You cancelled the payment."))
    card = form.get("card", "4242424242424242")
    try:
        checkout_session_pay(req.store, session, card, email=form.get("email") or None)
    except StripeError as exc:
        if exc.type != "card_error":
            raise
        message = "Your card was declined." if exc.decline_code else exc.message
        if exc.decline_code and exc.decline_code != "generic_decline":
            message = f"{exc.message} (declined: {exc.decline_code})"
        return Response.html(pages.checkout_page(session, session["_items"], error=message,
                                                 card=card), 402)
    target = _redirect_target(session)
    if target:
        return Response.redirect(target)
    return Response.html(pages.message_page("Paid", "Thank you, payment complete.", ok=True))


@routes.post("/_test/checkout_sessions/{id}/pay", kind="test")
def checkout_session_pay_helper(req: Request) -> Response:
    """``{"card": "4000 0000 0000 0002", "email": ...}`` - what the Pay button does."""
    session = req.store.get(req.args["id"], kind="checkout.session")
    if session is None:
        raise resource_missing("checkout.session", req.args["id"])
    body = req.json()
    try:
        charge = checkout_session_pay(req.store, session, str(body.get("card", "4242424242424242")),
                                      email=body.get("email"))
    except StripeError as exc:
        if exc.type != "card_error":
            raise
        result = exc.body()
        result.update(status="declined", checkout_session=public(session))
        return Response.json(result, 402)
    return Response.json({
        "status": "succeeded", "checkout_session": public(session),
        "payment_intent": session["payment_intent"], "charge": charge["id"],
        "redirect_url": _redirect_target(session),
    })
