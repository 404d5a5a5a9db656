"""Reconciliation of a cycle's payouts: the ledger and Stripe, compared both ways.

From Stripe: every transfer whose metadata names the cycle, and the platform's balance
transactions of type `transfer` and `transfer_refund`. From Blanket: the cycle's `Payout` rows
and the journal entries booked for them (`payout:<id>:sent`, `…:reversal:<trr>`, `…:failed`).
Every difference is one mismatch with a kind, the payout and transfer it concerns, and both
sides' figures:

- `transfer_unknown`      a transfer for the cycle that no payout records (e.g. a duplicate)
- `transfer_missing`      a payout recorded as sent whose transfer Stripe does not have
- `amount_differs`        the transfer's amount is not the payout's
- `destination_differs`   the transfer went to another account than the payout's
- `not_booked`            a transfer with no `sent` entry in the ledger
- `booked_without_transfer` a `sent` entry for a payout with no transfer
- `reversal_differs`      Stripe's reversed amount differs from the reversals booked
- `balance_transaction_differs` the platform balance moved by another amount than the transfer
  (or its reversals)
- `unsettled`             a payout still pending, submitting or sent
- `ledger_unbalanced`     the ledger's postings do not sum to zero

A clean result closes a `paid` cycle.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import PermissionError_
from licensing.services.licences import cash_account
from royalties.integrations import stripe_client
from royalties.models import (
    Cycle,
    CycleStatus,
    JournalEntry,
    Payout,
    PayoutReconciliation,
    PayoutStatus,
    Posting,
)
from royalties.services.ledger import ledger_trial_balance


def _ledger_by_payout(payout_ids: list[int], currency: str) -> dict[int, dict[str, int]]:
    """Per payout: what the ledger says left (`sent`) and came back to (`reversed`) cash."""
    cash = cash_account(via="stripe", currency=currency)
    out: dict[int, dict[str, int]] = defaultdict(lambda: {"sent": 0, "reversed": 0, "fee": 0})
    for start in range(0, len(payout_ids), 5000):
        rows = Posting.objects.filter(
            account=cash,
            entry__source_type="payout",
            entry__source_id__in=[str(pk) for pk in payout_ids[start : start + 5000]],
        ).values_list("entry__source_id", "entry__idempotency_key", "amount_minor")
        for source_id, key, amount in rows:
            kind = key.split(":")[2]
            bucket = {"sent": "sent", "reversal": "reversed", "fee": "fee"}.get(kind)
            if bucket:
                out[int(source_id)][bucket] += -amount if bucket != "reversed" else amount
    return out


def reconcile_cycle(*, cycle_id: int, caller: Caller | None = None) -> PayoutReconciliation:
    if caller is not None and not caller.in_staff_group("operator", "approver"):
        raise PermissionError_("Only society staff may reconcile payouts.", code="forbidden_role")
    cycle = Cycle.objects.get(pk=cycle_id)
    payouts = {p.pk: p for p in Payout.objects.filter(cycle=cycle)}
    ledger = _ledger_by_payout(list(payouts), cycle.currency)
    transfers = [
        t
        for t in stripe_client.transfers_list()
        if str((t.get("metadata") or {}).get("cycle_id")) == str(cycle.pk)
    ]
    moves = {
        t["source"]: t["amount"]
        for kind in ("transfer", "transfer_refund")
        for t in stripe_client.balance_transactions_list(type=kind)
    }
    mismatches: list[dict[str, Any]] = []

    def report(kind: str, **facts) -> None:
        mismatches.append({"kind": kind, **facts})

    by_transfer = {p.transfer_id: p for p in payouts.values() if p.transfer_id}
    seen: set[str] = set()
    for t in transfers:
        seen.add(t["id"])
        payout = by_transfer.get(t["id"])
        if payout is None:
            report(
                "transfer_unknown",
                transfer=t["id"],
                payout=(t.get("metadata") or {}).get("payout_id"),
                stripe_amount=t["amount"],
            )
            continue
        if t["amount"] != payout.amount_minor:
            report(
                "amount_differs",
                payout=payout.pk,
                transfer=t["id"],
                stripe_amount=t["amount"],
                ledger_amount=payout.amount_minor,
            )
        if payout.destination and t["destination"] != payout.destination:
            report(
                "destination_differs",
                payout=payout.pk,
                transfer=t["id"],
                stripe=t["destination"],
                blanket=payout.destination,
            )
        booked = ledger.get(payout.pk, {"sent": 0, "reversed": 0})
        if booked["sent"] == 0:
            report("not_booked", payout=payout.pk, transfer=t["id"], stripe_amount=t["amount"])
        elif booked["sent"] != t["amount"]:
            report(
                "amount_differs",
                payout=payout.pk,
                transfer=t["id"],
                stripe_amount=t["amount"],
                ledger_amount=booked["sent"],
            )
        if booked["reversed"] != t.get("amount_reversed", 0):
            report(
                "reversal_differs",
                payout=payout.pk,
                transfer=t["id"],
                stripe_amount=t.get("amount_reversed", 0),
                ledger_amount=booked["reversed"],
            )
        moved = moves.get(t["id"])
        if moved != -t["amount"]:
            report(
                "balance_transaction_differs",
                payout=payout.pk,
                transfer=t["id"],
                stripe_amount=moved,
                expected=-t["amount"],
            )
        for reversal in (t.get("reversals") or {}).get("data") or []:
            if moves.get(reversal["id"]) != reversal["amount"]:
                report(
                    "balance_transaction_differs",
                    payout=payout.pk,
                    transfer=t["id"],
                    reversal=reversal["id"],
                    stripe_amount=moves.get(reversal["id"]),
                    expected=reversal["amount"],
                )
    for payout in payouts.values():
        booked = ledger.get(payout.pk, {"sent": 0})
        if payout.transfer_id and payout.transfer_id not in seen:
            report("transfer_missing", payout=payout.pk, transfer=payout.transfer_id)
        if booked["sent"] and not payout.transfer_id:
            report("booked_without_transfer", payout=payout.pk, ledger_amount=booked["sent"])
        if payout.status in (PayoutStatus.PENDING, PayoutStatus.SUBMITTING, PayoutStatus.SENT):
            report("unsettled", payout=payout.pk, status=payout.status)
    unbalanced = {c: total for c, total in ledger_trial_balance().items() if total}
    if unbalanced:
        report("ledger_unbalanced", totals=unbalanced)

    checked = {
        "payouts": len(payouts),
        "transfers": len(transfers),
        "sent_minor": sum(v["sent"] for v in ledger.values()),
        "reversed_minor": sum(v["reversed"] for v in ledger.values()),
        "stripe_transferred_minor": sum(t["amount"] for t in transfers),
        "stripe_reversed_minor": sum(t.get("amount_reversed", 0) for t in transfers),
        "held": sum(1 for p in payouts.values() if p.status == PayoutStatus.HELD),
        "held_minor": sum(
            p.amount_minor for p in payouts.values() if p.status == PayoutStatus.HELD
        ),
    }
    with transaction.atomic():
        result = PayoutReconciliation.objects.create(
            cycle=cycle, clean=not mismatches, checked=checked, mismatches=mismatches
        )
        closed = False
        if not mismatches:
            closed = bool(
                Cycle.objects.filter(pk=cycle.pk, status=CycleStatus.PAID).update(
                    status=CycleStatus.CLOSED, stage="closed", updated_at=timezone.now()
                )
            )
        audit_record(
            action="payouts.reconciled",
            caller=caller,
            obj=cycle,
            details={"clean": not mismatches, "mismatches": len(mismatches), "closed": closed},
        )
    return result


def payouts_reconcile_due() -> int:
    """Reconcile every paid cycle (the periodic job); returns how many it ran."""
    ids = list(Cycle.objects.filter(status=CycleStatus.PAID).values_list("pk", flat=True))
    for pk in ids:
        reconcile_cycle(cycle_id=pk)
    return len(ids)


def payout_entries(payout_id: int) -> list[JournalEntry]:
    return list(
        JournalEntry.objects.filter(source_type="payout", source_id=str(payout_id)).order_by(
            "posted_at", "id"
        )
    )


def payout_totals(cycle: Cycle) -> dict[str, int]:
    rows = Payout.objects.filter(cycle=cycle).values("status").annotate(total=Sum("amount_minor"))
    return {row["status"]: row["total"] for row in rows}
