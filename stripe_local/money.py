"""Balance transactions, fees and balances - the money side of the local Stripe.

Mirrors https://docs.stripe.com/api/balance_transactions: every movement of funds in an
account's Stripe balance is one balance transaction with ``amount`` (gross, signed, minor
units), ``fee``, ``fee_details``, ``net = amount - fee``, ``type``, ``source``, ``status``
(``pending`` until ``available_on``) and ``reporting_category``. The balance is derived from
them (``available`` = sum of ``net`` of available transactions, ``pending`` likewise): there is
no second counter to drift.

Simplified:
- Card fee: 1.5% + 25 minor units, whatever the card or currency (Stripe's real price varies by
  country and card). ``fee_amount`` rounds half up to the minor unit.
- Charges land in ``pending`` with ``available_on`` two days out, as in test mode; the test card
  4000 0000 0000 0077 lands them straight in ``available`` (Stripe's "bypass pending" card).
  Time does not pass by itself: ``POST /_test/balance/release`` makes pending funds available.
- Refunds, transfers and payouts draw on ``available`` immediately; a refund may push it
  negative (Stripe would debit pending funds or the bank account instead).
- No currency conversion: each currency is its own balance, ``exchange_rate`` is always null.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from stripe_local.state import Store

PENDING_DAYS = 2

REPORTING_CATEGORY = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "transfer": "transfer",
    "transfer_refund": "transfer_reversal",
    "payout": "payout",
    "payout_failure": "payout_reversal",
    "adjustment": "other_adjustment",
    "topup": "topup",
}

ZERO_DECIMAL = {
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
}
THREE_DECIMAL = {"bhd", "jod", "kwd", "omr", "tnd"}


def fee_amount(amount: int) -> int:
    """1.5% + 25 minor units, 1.5% rounded half up: 10000 -> 175, 1999 -> 55."""
    return (amount * 15 + 500) // 1000 + 25


def format_amount(amount: int, currency: str) -> str:
    """Minor units for people: ``format_amount(123456, "eur") == "1,234.56 EUR"``."""
    digits = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    text = f"{whole:,}" + (f".{frac:0{digits}d}" if digits else "")
    return f"{sign}{text} {currency.upper()}"


def balance_transaction_create(
    store: Store,
    *,
    account: str | None,
    amount: int,
    currency: str,
    type: str,
    source: str | None,
    fee: int = 0,
    pending: bool = False,
    description: str | None = None,
) -> dict[str, Any]:
    created = store.now()
    fee_details = []
    if fee:
        fee_details.append({
            "amount": fee, "application": None, "currency": currency,
            "description": "Stripe processing fees", "type": "stripe_fee",
        })
    txn = {
        "id": store.new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + (PENDING_DAYS * 86400 if pending else 0),
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": REPORTING_CATEGORY.get(type, "other_adjustment"),
        "source": source,
        "status": "pending" if pending else "available",
        "type": type,
        "_payout": None,  # set when an automatic payout sweeps this transaction
    }
    return store.add(txn, account=account)


def balances(store: Store, account: str | None) -> dict[str, dict[str, int]]:
    """``{"available": {"eur": 1234}, "pending": {...}}`` for one account."""
    result: dict[str, dict[str, int]] = {"available": defaultdict(int), "pending": defaultdict(int)}
    for txn in store.all("balance_transaction", account=account):
        result[txn["status"]][txn["currency"]] += txn["net"]
    return {k: dict(v) for k, v in result.items()}


def available(store: Store, account: str | None, currency: str) -> int:
    return balances(store, account)["available"].get(currency, 0)


def balance_object(store: Store, account: str | None) -> dict[str, Any]:
    sums = balances(store, account)
    currencies = sorted(set(sums["available"]) | set(sums["pending"])) or ["usd"]

    def entries(kind: str) -> list[dict[str, Any]]:
        return [
            {"amount": sums[kind].get(c, 0), "currency": c,
             "source_types": {"card": sums[kind].get(c, 0)}}
            for c in currencies
        ]

    return {
        "object": "balance",
        "available": entries("available"),
        "connect_reserved": [{"amount": 0, "currency": c} for c in currencies],
        "livemode": False,
        "pending": entries("pending"),
    }


def release_pending(store: Store, account: Any = ...) -> int:
    """Make every pending transaction available now (time passing); returns how many."""
    released = 0
    for txn in store.all("balance_transaction", account=account):
        if txn["status"] == "pending":
            txn["status"] = "available"
            txn["available_on"] = store.now()
            released += 1
    return released
