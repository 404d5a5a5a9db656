"""PaymentIntents and Charges: read-only over the API, created by Checkout and invoices.

Mirrors https://docs.stripe.com/api/payment_intents and /api/charges. A payment attempt
(``payment_intent_attempt``) works as a confirmed card PaymentIntent does: one Charge per
attempt; on success the charge gets a ``charge`` balance transaction (fee and net, see
``money.py``) and the intent becomes ``succeeded`` with ``latest_charge``; on a decline the
charge is ``failed`` with ``failure_code``/``outcome`` and the intent returns to
``requires_payment_method`` with ``last_payment_error``, so the customer can try another card.
Events in Stripe's order: ``charge.succeeded`` then ``payment_intent.succeeded``, or
``charge.failed`` then ``payment_intent.payment_failed``.

Simplified: no creating or confirming intents through the API (Blanket only reads them), no
3-D Secure / ``requires_action``, no manual capture, ``payment_method`` is an id that cannot be
retrieved, no ``receipt_url``.
"""

from __future__ import annotations

from typing import Any

from stripe_local.cards import DECLINE_MESSAGES, Card
from stripe_local.money import balance_transaction_create, fee_amount
from stripe_local.router import Request, RouteTable
from stripe_local.state import Store, random_token, sub_list
from stripe_local.wire import paginate

routes = RouteTable("api")


def payment_intent_create(store: Store, *, amount: int, currency: str, customer: str | None,
                          metadata: dict[str, str], description: str | None = None,
                          transfer_group: str | None = None, receipt_email: str | None = None,
                          account: str | None = None) -> dict[str, Any]:
    pi_id = store.new_id("pi")
    intent = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": f"{pi_id}_secret_{random_token()}",
        "confirmation_method": "automatic",
        "created": store.now(),
        "currency": currency,
        "customer": customer,
        "description": description,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": transfer_group,
    }
    store.add(intent, account=account)
    store.emit("payment_intent.created", intent, account=account)
    return intent


def _card_details(card: Card) -> dict[str, Any]:
    return {
        "type": "card",
        "card": {
            "brand": card.brand, "country": "US", "exp_month": 12, "exp_year": 2034,
            "fingerprint": "local" + card.number[-8:], "funding": card.funding,
            "last4": card.last4, "network": card.brand, "three_d_secure": None,
            "checks": {"address_line1_check": None, "address_postal_code_check": None,
                       "cvc_check": "pass"},
        },
    }


def payment_intent_attempt(store: Store, intent: dict[str, Any], card: Card, *,
                           email: str | None = None) -> dict[str, Any]:
    """Charge ``card`` for ``intent``; returns the Charge (``status`` says how it went)."""
    account = intent["_account"]
    ok = card.succeeds
    pm_id = store.new_id("pm")
    charge = {
        "id": store.new_id("ch"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if ok else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": {"city": None, "country": None, "line1": None, "line2": None,
                        "postal_code": None, "state": None},
            "email": email, "name": None, "phone": None, "tax_id": None,
        },
        "calculated_statement_descriptor": "BLANKET",
        "captured": ok,
        "created": store.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if ok else card.error_code,
        "failure_message": None if ok else DECLINE_MESSAGES[card.decline_code or ""],
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "network_advice_code": None, "network_decline_code": None,
            "network_status": "approved_by_network" if ok else "declined_by_network",
            "reason": None if ok else card.decline_code,
            "risk_level": "normal", "risk_score": 20,
            "seller_message": "Payment complete." if ok else
            "The bank did not return any further details with this decline.",
            "type": "authorized" if ok else "issuer_declined",
        },
        "paid": ok,
        "payment_intent": intent["id"],
        "payment_method": pm_id,
        "payment_method_details": _card_details(card),
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if ok else "failed",
        "transfer_data": None,
        "transfer_group": intent["transfer_group"],
    }
    store.add(charge, account=account)
    intent["latest_charge"] = charge["id"]
    intent["payment_method"] = pm_id
    if ok:
        txn = balance_transaction_create(
            store, account=account, amount=charge["amount"], currency=charge["currency"],
            type="charge", source=charge["id"], fee=fee_amount(charge["amount"]),
            pending=not card.bypass_pending,
        )
        charge["balance_transaction"] = txn["id"]
        intent.update(status="succeeded", amount_received=intent["amount"],
                      last_payment_error=None)
        store.emit("charge.succeeded", charge, account=account)
        store.emit("payment_intent.succeeded", intent, account=account)
    else:
        intent.update(status="requires_payment_method", last_payment_error={
            "type": "card_error", "code": card.error_code, "decline_code": card.decline_code,
            "message": charge["failure_message"], "charge": charge["id"],
            "doc_url": f"https://stripe.com/docs/error-codes/{card.error_code.replace('_', '-')}",
            "payment_method": {"id": pm_id, "object": "payment_method", "type": "card",
                               **_card_details(card)},
        })
        store.emit("charge.failed", charge, account=account)
        store.emit("payment_intent.payment_failed", intent, account=account)
    return charge


def _charge_refunds(store: Store, charge: dict[str, Any]) -> dict[str, Any]:
    refunds = store.all("refund", where=lambda r: r["charge"] == charge["id"])
    return sub_list(refunds, f"/v1/charges/{charge['id']}/refunds")


def register_includables(store: Store) -> None:
    store.includables[("charge", "refunds")] = _charge_refunds


@routes.get("/v1/payment_intents/{id}")
def payment_intent_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("payment_intent", req.args["id"]))


@routes.get("/v1/payment_intents")
def payment_intent_list(req: Request) -> dict[str, Any]:
    customer = req.params.str("customer")
    items = req.store.all("payment_intent", account=req.account,
                          where=lambda o: customer is None or o["customer"] == customer)
    return paginate(items, req.params, "/v1/payment_intents", req.render)


@routes.get("/v1/charges/{id}")
def charge_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("charge", req.args["id"]))


@routes.get("/v1/charges")
def charge_list(req: Request) -> dict[str, Any]:
    customer = req.params.str("customer")
    intent = req.params.str("payment_intent")
    transfer_group = req.params.str("transfer_group")
    items = req.store.all(
        "charge", account=req.account,
        where=lambda o: (customer is None or o["customer"] == customer)
        and (intent is None or o["payment_intent"] == intent)
        and (transfer_group is None or o["transfer_group"] == transfer_group),
    )
    return paginate(items, req.params, "/v1/charges", req.render)
