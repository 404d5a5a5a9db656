"""The balance and balance transactions (reconciliation's source of truth).

Mirrors https://docs.stripe.com/api/balance and /api/balance_transactions: ``GET /v1/balance``
(with ``Stripe-Account`` for a connected account) shows ``available`` and ``pending`` per
currency, derived from the balance transactions. Transactions list newest first and filter by
``type``, ``source``, ``currency``, ``created`` and ``payout`` (the transactions an automatic
payout carried, plus the payout's own; Stripe can only say this for automatic payouts).

Test helpers: ``POST /_test/balance/fund`` (``{"amount", "currency", "account"?}``) adds
available funds with a ``topup`` transaction, and ``POST /_test/balance/release``
(``{"account"?}``) makes every pending transaction available - the two days Stripe would wait.
"""

from __future__ import annotations

from typing import Any

from stripe_local.errors import invalid_request, resource_missing
from stripe_local.money import balance_object, balance_transaction_create, release_pending
from stripe_local.router import Request, RouteTable
from stripe_local.wire import paginate, public

routes = RouteTable("api")


@routes.get("/v1/balance")
def balance_retrieve(req: Request) -> dict[str, Any]:
    return balance_object(req.store, req.account)


@routes.get("/v1/balance_transactions/{id}")
def balance_transaction_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("balance_transaction", req.args["id"]))


@routes.get("/v1/balance_transactions")
def balance_transaction_list(req: Request) -> dict[str, Any]:
    p = req.params
    payout, kind, source = p.str("payout"), p.str("type"), p.str("source")
    currency = p.currency(required=False)
    if payout is not None:
        payout_obj = req.store.get(payout, kind="payout", account=req.account)
        if payout_obj is None:
            raise resource_missing("payout", payout, param="payout")
        if not payout_obj["automatic"]:
            raise invalid_request(
                "Balance transaction history can only be filtered on automatic transfers, not "
                "manual.", param="payout")
    items = req.store.all(
        "balance_transaction", account=req.account,
        where=lambda t: (payout is None or t["_payout"] == payout)
        and (kind is None or t["type"] == kind)
        and (source is None or t["source"] == source)
        and (currency is None or t["currency"] == currency),
    )
    return paginate(items, p, "/v1/balance_transactions", req.render)


@routes.post("/_test/balance/fund", kind="test")
def balance_fund_helper(req: Request) -> dict[str, Any]:
    body = req.json()
    amount, currency = body.get("amount"), str(body.get("currency", "")).lower()
    if not isinstance(amount, int) or amount <= 0 or len(currency) != 3:
        raise invalid_request('Send {"amount": <positive int>, "currency": "eur"}')
    account = body.get("account")
    if account is not None and req.store.get(account, kind="account") is None:
        raise resource_missing("account", account)
    txn = balance_transaction_create(
        req.store, account=account, amount=amount, currency=currency, type="topup",
        source=None, description="stripe_local funding")
    return public(txn)


@routes.post("/_test/balance/release", kind="test")
def balance_release_helper(req: Request) -> dict[str, Any]:
    body = req.json()
    account = body.get("account", ...)  # absent: every account; null: the platform
    return {"released": release_pending(req.store, account)}
