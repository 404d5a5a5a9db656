"""Payouts from a connected account (or the platform) to its bank account.

Mirrors https://docs.stripe.com/api/payouts. Called with ``Stripe-Account: acct_...`` a payout
moves the connected account's available funds to its bank account: it needs
``payouts_enabled`` (else ``payouts_not_allowed``) and enough available balance (else
``balance_insufficient``), starts ``pending`` with ``arrival_date`` two days out and a
``payout`` balance transaction of ``-amount``, and emits ``payout.created``.

Settling is up to the tests, as time is (``POST /_test/payouts/{id}/settle``):
- ``{"status": "paid"}``: ``pending`` -> ``paid``, ``payout.paid``;
- ``{"status": "failed", "failure_code": "account_closed"}``: ``pending`` *or* ``paid`` ->
  ``failed`` with ``failure_code``/``failure_message``, a ``payout_failure`` balance
  transaction of ``+amount`` returning the funds (``failure_balance_transaction``) and
  ``payout.failed``. Stripe documents that a payout can fail after it was reported paid, so
  ``paid`` is not final here either.

``POST /_test/accounts/{id}/payout`` plays the daily automatic payout: one ``automatic`` payout
per currency sweeping every available balance transaction not yet paid out, so that
``GET /v1/balance_transactions?payout=po_...`` lists what it carried (reconciliation).

Events for payouts of connected accounts are Connect events (``event.account`` is set).
Simplified: no ``in_transit``, instant payouts, cancelling, reversing or payout schedules.
"""

from __future__ import annotations

from typing import Any

from stripe_local.errors import StripeError, invalid_request, resource_missing
from stripe_local.money import available, balance_transaction_create
from stripe_local.router import Request, RouteTable
from stripe_local.state import Store
from stripe_local.wire import metadata_apply, paginate, public

routes = RouteTable("api")

FAILURE_MESSAGES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on either the type, or the "
                               "number, of payouts allowed.",
    "bank_ownership_changed": "The destination bank account is no longer valid because its "
                              "branch has changed ownership.",
    "could_not_process": "The bank could not process this payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
    "declined": "The bank has declined this transfer.",
    "incorrect_account_holder_name": "The bank notified us that the bank account holder name "
                                     "on file is incorrect.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is "
                              "invalid.",
    "invalid_currency": "The bank was unable to process this payout because of its currency.",
    "no_account": "The bank account details on file are probably incorrect.",
}


def _bank_account(store: Store, owner: str | None) -> str:
    if owner is None:
        return "ba_local_platform"
    account = store.get(owner, kind="account")
    data = account["external_accounts"]["data"] if account else []
    return data[0]["id"] if data else "ba_missing"


def payout_create_for(store: Store, owner: str | None, *, amount: int, currency: str,
                      automatic: bool = False, description: str | None = None,
                      metadata: dict[str, str] | None = None) -> dict[str, Any]:
    now = store.now()
    payout_id = store.new_id("po")
    txn = balance_transaction_create(store, account=owner, amount=-amount, currency=currency,
                                     type="payout", source=payout_id, description=description)
    txn["_payout"] = payout_id if automatic else None
    payout = {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": now + 2 * 86400,
        "automatic": automatic,
        "balance_transaction": txn["id"],
        "created": now,
        "currency": currency,
        "description": description or ("STRIPE PAYOUT" if automatic else None),
        "destination": _bank_account(store, owner),
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": metadata or {},
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "in_progress" if automatic else "not_applicable",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "pending",
        "trace_id": None,
        "type": "bank_account",
    }
    store.add(payout, account=owner)
    store.emit("payout.created", payout, account=owner)
    return payout


def _payouts_allowed(store: Store, owner: str | None) -> None:
    if owner is None:
        return
    account = store.get(owner, kind="account")
    if account is None or not account["payouts_enabled"]:
        raise StripeError("Payouts are not enabled for this account.",
                          code="payouts_not_allowed")


@routes.post("/v1/payouts")
def payout_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("amount", "currency", "description", "metadata", "method",
                        "statement_descriptor", "source_type")
    amount = p.int("amount", required=True, minimum=1)
    currency = p.currency()
    assert amount is not None and currency is not None
    if p.str("method", default="standard") != "standard":
        raise invalid_request("stripe_local supports only method=standard", param="method")
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    _payouts_allowed(store, req.account)
    if available(store, req.account, currency) < amount:
        raise StripeError(
            "You have insufficient funds in your Stripe account for this transfer. Your card "
            "balance is too low. You can use the /v1/balance endpoint to view your Stripe "
            "balance (for more details, see stripe.com/docs/api#balance).",
            code="balance_insufficient")
    payout = payout_create_for(store, req.account, amount=amount, currency=currency,
                               description=p.str("description"), metadata=metadata)
    return req.render(payout)


@routes.get("/v1/payouts/{id}")
def payout_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("payout", req.args["id"]))


@routes.get("/v1/payouts")
def payout_list(req: Request) -> dict[str, Any]:
    status = req.params.str("status")
    items = req.store.all("payout", account=req.account,
                          where=lambda o: status is None or o["status"] == status)
    return paginate(items, req.params, "/v1/payouts", req.render)


@routes.post("/_test/payouts/{id}/settle", kind="test")
def payout_settle_helper(req: Request) -> dict[str, Any]:
    """``{"status": "paid"}`` or ``{"status": "failed", "failure_code": ..., ...}``."""
    store = req.store
    payout = store.get(req.args["id"], kind="payout")
    if payout is None:
        raise resource_missing("payout", req.args["id"])
    body = req.json()
    status = body.get("status")
    owner = payout["_account"]
    previous = {"status": payout["status"]}
    if status == "paid":
        if payout["status"] != "pending":
            raise invalid_request(f"Payout {payout['id']} is {payout['status']}, not pending.")
        payout["status"] = "paid"
        if payout["automatic"]:
            payout["reconciliation_status"] = "completed"
        store.emit("payout.paid", payout, account=owner, previous=previous)
    elif status == "failed":
        if payout["status"] not in ("pending", "paid"):
            raise invalid_request(f"Payout {payout['id']} is {payout['status']}; only pending "
                                  "or paid payouts can fail.")
        code = body.get("failure_code", "could_not_process")
        if code not in FAILURE_MESSAGES:
            raise invalid_request(f"Unknown failure_code {code!r}; one of "
                                  f"{', '.join(sorted(FAILURE_MESSAGES))}", param="failure_code")
        txn = balance_transaction_create(
            store, account=owner, amount=payout["amount"], currency=payout["currency"],
            type="payout_failure", source=payout["id"])
        payout.update(status="failed", failure_code=code,
                      failure_message=body.get("failure_message") or FAILURE_MESSAGES[code],
                      failure_balance_transaction=txn["id"])
        store.emit("payout.failed", payout, account=owner, previous=previous)
    else:
        raise invalid_request('status must be "paid" or "failed"', param="status")
    return public(payout)


@routes.post("/_test/accounts/{id}/payout", kind="test")
def account_automatic_payout_helper(req: Request) -> dict[str, Any]:
    """The daily automatic payout of a connected account: sweep what is available."""
    store = req.store
    account = store.get(req.args["id"], kind="account")
    if account is None:
        raise resource_missing("account", req.args["id"])
    _payouts_allowed(store, account["id"])
    swept: dict[str, list[dict[str, Any]]] = {}
    for txn in store.all("balance_transaction", account=account["id"]):
        if txn["status"] == "available" and txn["_payout"] is None and txn["type"] != "payout":
            swept.setdefault(txn["currency"], []).append(txn)
    payouts = []
    for currency, txns in sorted(swept.items()):
        amount = sum(t["net"] for t in txns)
        if amount <= 0 or available(store, account["id"], currency) < amount:
            continue
        payout = payout_create_for(store, account["id"], amount=amount, currency=currency,
                                   automatic=True)
        for txn in txns:
            txn["_payout"] = payout["id"]
        payouts.append(public(payout))
    return {"payouts": payouts}
