"""Refunds: full or partial, of a PaymentIntent's charge or a Charge.

Mirrors https://docs.stripe.com/api/refunds: ``amount`` defaults to what is left unrefunded;
more than that is refused (``amount_too_large``), a fully refunded charge is refused
(``charge_already_refunded``). The refund succeeds at once, adds a ``refund`` balance
transaction of ``-amount`` (Stripe keeps the original processing fee, so ``fee`` is 0), raises
the charge's ``amount_refunded`` (``refunded`` once it is all refunded) and emits
``refund.created`` and ``charge.refunded``.

Simplified: no pending/failed refunds, no ``refund.updated``, no ``reverse_transfer`` or
``refund_application_fee``, no cancelling.
"""

from __future__ import annotations

from typing import Any

from stripe_local.errors import invalid_request
from stripe_local.money import balance_transaction_create
from stripe_local.router import Request, RouteTable
from stripe_local.wire import metadata_apply, paginate

routes = RouteTable("api")

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


@routes.post("/v1/refunds")
def refund_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("payment_intent", "charge", "amount", "reason", "metadata",
                        "instructions_email")
    intent_id, charge_id = p.str("payment_intent"), p.str("charge")
    if not intent_id and not charge_id:
        raise invalid_request("One of the following params should be provided for this "
                              "request: payment_intent or charge.", param="payment_intent")
    if intent_id:
        intent = req.find("payment_intent", intent_id, param="payment_intent")
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise invalid_request(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent", code="charge_not_refundable")
        charge_id = intent["latest_charge"]
    assert charge_id is not None
    charge = req.find("charge", charge_id, param="charge")
    if charge["status"] != "succeeded":
        raise invalid_request("This charge cannot be refunded because it failed.",
                              code="charge_not_refundable", param="charge")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid_request(f"Charge {charge['id']} has already been refunded.",
                              code="charge_already_refunded", param="charge")
    amount = p.int("amount", minimum=1, default=remaining)
    assert amount is not None
    if amount > remaining:
        raise invalid_request(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge "
            f"({remaining})", code="amount_too_large", param="amount")
    reason = p.str("reason", choices=REASONS)
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    refund_id = store.new_id("re")
    txn = balance_transaction_create(
        store, account=charge["_account"], amount=-amount, currency=charge["currency"],
        type="refund", source=refund_id, description="REFUND FOR CHARGE")
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": txn["id"],
        "charge": charge["id"],
        "created": store.now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"reference_status": "pending", "type": "refund"},
                                "type": "card"},
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    store.add(refund, account=charge["_account"])
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    store.emit("refund.created", refund, account=charge["_account"])
    store.emit("charge.refunded", charge, account=charge["_account"], previous=previous)
    return req.render(refund)


@routes.get("/v1/refunds/{id}")
def refund_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("refund", req.args["id"]))


@routes.get("/v1/refunds")
def refund_list(req: Request) -> dict[str, Any]:
    charge = req.params.str("charge")
    intent = req.params.str("payment_intent")
    items = req.store.all(
        "refund", account=req.account,
        where=lambda r: (charge is None or r["charge"] == charge)
        and (intent is None or r["payment_intent"] == intent),
    )
    return paginate(items, req.params, "/v1/refunds", req.render)
