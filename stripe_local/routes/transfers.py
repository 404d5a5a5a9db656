"""Transfers to connected accounts and their reversals.

Mirrors https://docs.stripe.com/api/transfers (separate charges and transfers):

- create with ``amount``, ``currency``, ``destination``, ``transfer_group``, ``metadata``,
  ``description`` and optionally ``source_transaction``. The platform's *available* balance in
  that currency must cover the amount, or the request fails with Stripe's
  ``invalid_request_error`` / code ``balance_insufficient`` (HTTP 400; the SDK raises
  ``InvalidRequestError``). A destination whose ``transfers`` capability is not active fails
  with ``insufficient_capabilities_for_transfer``. Both failures happen after execution begins,
  so, like a card decline, they are saved under the idempotency key: retrying with the same
  key after topping up returns the same error (use a new key once you know no transfer
  exists). With ``source_transaction`` the available balance is not checked (Stripe ties the
  transfer to that charge's funds) but the charge must cover it.
- effects: a ``transfer`` balance transaction of ``-amount`` on the platform; on the destination
  a ``py_`` payment (a Charge with ``source_transfer``) and a ``payment`` balance transaction of
  ``+amount``; event ``transfer.created`` (a platform event).
- list filters ``destination``, ``transfer_group``, ``created``; update ``metadata`` /
  ``description`` (``transfer.updated``).
- reversals (``POST /v1/transfers/{id}/reversals``, full by default or partial): a
  ``transfer_refund`` balance transaction of ``+amount`` on the platform, a ``payment_refund`` of
  ``-amount`` on the destination (its balance may go negative), ``amount_reversed``/``reversed``
  on the transfer and event ``transfer.reversed``.

Simplified: funds reach the destination's balance as available at once; no cross-border or
currency-conversion rules; no ``transfer_data``/destination charges.
"""

from __future__ import annotations

from typing import Any

from stripe_local.errors import StripeError, invalid_request, resource_missing
from stripe_local.money import available, balance_transaction_create
from stripe_local.router import Request, RouteTable
from stripe_local.state import Store, sub_list
from stripe_local.wire import metadata_apply, paginate, public

routes = RouteTable("api")


def _destination_payment(store: Store, transfer: dict[str, Any], pending: bool) -> str:
    destination = transfer["destination"]
    payment_id = store.new_id("py")
    txn = balance_transaction_create(
        store, account=destination, amount=transfer["amount"], currency=transfer["currency"],
        type="payment", source=payment_id, pending=pending)
    store.add({
        "id": payment_id, "object": "charge", "amount": transfer["amount"],
        "amount_captured": transfer["amount"], "amount_refunded": 0,
        "balance_transaction": txn["id"], "captured": True, "created": store.now(),
        "currency": transfer["currency"], "customer": None, "description": None,
        "failure_code": None, "failure_message": None, "livemode": False, "metadata": {},
        "paid": True, "payment_intent": None, "refunded": False,
        "source_transfer": transfer["id"], "status": "succeeded",
        "transfer_group": transfer["transfer_group"],
    }, account=destination)
    return payment_id


@routes.post("/v1/transfers")
def transfer_create(req: Request) -> dict[str, Any]:
    store = req.store
    p = req.params.only("amount", "currency", "destination", "transfer_group", "metadata",
                        "description", "source_transaction", "source_type")
    if req.account is not None:
        raise invalid_request("stripe_local: transfers are made by the platform; drop the "
                              "Stripe-Account header.")
    amount = p.int("amount", required=True, minimum=1)
    currency = p.currency()
    destination_id = p.str("destination", required=True)
    assert amount is not None and currency is not None and destination_id is not None
    destination = store.get(destination_id, kind="account")
    if destination is None:
        raise StripeError(f"No such destination: '{destination_id}'", code="resource_missing",
                          param="destination")
    source_charge = None
    if p.str("source_transaction"):
        source_charge = req.find("charge", p.str("source_transaction") or "",
                                 param="source_transaction")
        already = sum(t["amount"] for t in store.all(
            "transfer", where=lambda t: t["source_transaction"] == source_charge["id"]))
        room = source_charge["amount"] - source_charge["amount_refunded"] - already
        if source_charge["status"] != "succeeded" or amount > room:
            raise invalid_request(
                f"The transfer amount ({amount}) exceeds what charge {source_charge['id']} can "
                f"still fund ({max(room, 0)}).", param="amount")
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    if destination["capabilities"].get("transfers") != "active":
        raise StripeError(
            "Your destination account needs to have at least one of the following capabilities "
            "enabled: transfers, crypto_transfers, legacy_payments",
            code="insufficient_capabilities_for_transfer", param="destination")
    if source_charge is None and available(store, None, currency) < amount:
        raise StripeError(
            "You have insufficient available funds in your Stripe account. Try adding funds "
            "directly to your available balance by creating Charges using the 4000000000000077 "
            "test card. See: https://stripe.com/docs/testing#available-balance",
            code="balance_insufficient")
    pending = False
    if source_charge is not None:
        charge_txn = store.get(source_charge["balance_transaction"] or "")
        pending = bool(charge_txn and charge_txn["status"] == "pending")
    transfer_id = store.new_id("tr")
    txn = balance_transaction_create(
        store, account=None, amount=-amount, currency=currency, type="transfer",
        source=transfer_id, pending=pending)
    transfer: dict[str, Any] = {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": txn["id"],
        "created": store.now(),
        "currency": currency,
        "description": p.str("description"),
        "destination": destination_id,
        "destination_payment": None,
        "livemode": False,
        "metadata": metadata,
        "reversals": sub_list([], f"/v1/transfers/{transfer_id}/reversals"),
        "reversed": False,
        "source_transaction": source_charge["id"] if source_charge else None,
        "source_type": "card",
        "transfer_group": p.str("transfer_group"),
    }
    store.add(transfer, account=None)
    transfer["destination_payment"] = _destination_payment(store, transfer, pending)
    store.emit("transfer.created", transfer)
    return req.render(transfer)


@routes.get("/v1/transfers/{id}")
def transfer_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("transfer", req.args["id"]))


@routes.get("/v1/transfers")
def transfer_list(req: Request) -> dict[str, Any]:
    destination = req.params.str("destination")
    group = req.params.str("transfer_group")
    items = req.store.all(
        "transfer", account=req.account,
        where=lambda t: (destination is None or t["destination"] == destination)
        and (group is None or t["transfer_group"] == group),
    )
    return paginate(items, req.params, "/v1/transfers", req.render)


@routes.post("/v1/transfers/{id}")
def transfer_update(req: Request) -> dict[str, Any]:
    transfer = req.find("transfer", req.args["id"])
    p = req.params.only("metadata", "description")
    changes: dict[str, Any] = {}
    if p.has("metadata"):
        changes["metadata"] = metadata_apply(transfer["metadata"], p.metadata())
    if p.has("description"):
        changes["description"] = p.str("description")
    req.begin()
    previous = {k: transfer[k] for k in changes if transfer[k] != changes[k]}
    transfer.update(changes)
    if previous:
        req.store.emit("transfer.updated", transfer, previous=previous)
    return req.render(transfer)


@routes.post("/v1/transfers/{id}/reversals")
def transfer_reversal_create(req: Request) -> dict[str, Any]:
    store = req.store
    transfer = req.find("transfer", req.args["id"])
    p = req.params.only("amount", "description", "metadata", "refund_application_fee")
    remaining = transfer["amount"] - transfer["amount_reversed"]
    if remaining <= 0:
        raise invalid_request(f"Transfer {transfer['id']} has already been fully reversed.",
                              param="id")
    amount = p.int("amount", minimum=1, default=remaining)
    assert amount is not None
    if amount > remaining:
        raise invalid_request(
            f"Reversal amount ({amount}) is greater than the transfer's unreversed amount "
            f"({remaining}).", param="amount")
    metadata = metadata_apply({}, p.metadata())
    req.begin()
    destination = transfer["destination"]
    reversal_id = store.new_id("trr")
    refund_id = store.new_id("pyr")
    txn = balance_transaction_create(
        store, account=None, amount=amount, currency=transfer["currency"],
        type="transfer_refund", source=reversal_id)
    balance_transaction_create(
        store, account=destination, amount=-amount, currency=transfer["currency"],
        type="payment_refund", source=refund_id)
    store.add({
        "id": refund_id, "object": "refund", "amount": amount, "balance_transaction": None,
        "charge": transfer["destination_payment"], "created": store.now(),
        "currency": transfer["currency"], "metadata": {}, "payment_intent": None,
        "reason": None, "status": "succeeded", "source_transfer_reversal": reversal_id,
        "transfer_reversal": None,
    }, account=destination)
    reversal = {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": txn["id"],
        "created": store.now(),
        "currency": transfer["currency"],
        "destination_payment_refund": refund_id,
        "metadata": metadata,
        "source_refund": None,
        "transfer": transfer["id"],
    }
    store.add(reversal, account=None)
    previous = {"amount_reversed": transfer["amount_reversed"], "reversed": transfer["reversed"]}
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
    transfer["reversals"]["data"].insert(0, reversal)
    transfer["reversals"]["total_count"] += 1
    store.emit("transfer.reversed", transfer, previous=previous)
    return req.render(reversal)


@routes.get("/v1/transfers/{id}/reversals")
def transfer_reversal_list(req: Request) -> dict[str, Any]:
    transfer = req.find("transfer", req.args["id"])
    return paginate(list(transfer["reversals"]["data"]), req.params,
                    f"/v1/transfers/{transfer['id']}/reversals", req.render)


@routes.get("/v1/transfers/{transfer}/reversals/{id}")
def transfer_reversal_retrieve(req: Request) -> dict[str, Any]:
    reversal = req.store.get(req.args["id"], kind="transfer_reversal", account=req.account)
    if reversal is None or reversal["transfer"] != req.args["transfer"]:
        raise resource_missing("transfer_reversal", req.args["id"])
    return req.render(reversal)


__all__ = ["public", "routes"]
