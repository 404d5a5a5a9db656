"""Reads of payouts: a holder's payout account and history, a run's progress, failures and
holds, and the reconciliations of a cycle.

Everything goes through the caller's scope (`accounts.scoping`): a holder sees its own account
and payouts only; runs and reconciliations are the society's (`organisation_field = None`), so
anyone not on the staff finds none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import OrganisationKind
from accounts.scoping import Caller, get_scoped_or_404, scope
from royalties.models import (
    Cycle,
    Payout,
    PayoutAccount,
    PayoutReconciliation,
    PayoutRun,
    PayoutStatus,
    Statement,
)
from royalties.models.payouts import SETTLED

# Done for this run: settled (paid, failed, reversed) or held until the holder's account can
# receive. A run is finished, and its cycle paid, when every payout is one of these.
DONE_STATUSES = (*SETTLED, PayoutStatus.HELD)
PROBLEM_LIMIT = 200
DEFAULT_CURRENCY = "EUR"
EXPORT_COLUMNS = (
    "payout",
    "period",
    "cycle",
    "holder_code",
    "holder_name",
    "statement",
    "amount_minor",
    "currency",
    "status",
    "held_reason",
    "transfer_id",
    "destination",
    "amount_reversed_minor",
    "attempts",
    "created_at",
    "sent_at",
    "settled_at",
)


# --- payout accounts --------------------------------------------------------------------------


def payout_account_get(*, caller: Caller) -> PayoutAccount | None:
    """The payout account of the organisation the caller acts for (None when it has none, or
    the caller acts for no rights holder)."""
    organisation = caller.organisation
    if organisation is None or organisation.kind != OrganisationKind.RIGHTS_HOLDER:
        return None
    return (
        scope(PayoutAccount.objects.select_related("organisation"), caller)
        .filter(organisation=organisation)
        .first()
    )


def payout_threshold_currency(*, caller: Caller) -> str:
    """The currency a holder's personal threshold is read in. The threshold is compared with
    the payable amount of each cycle in that cycle's currency (it has no currency of its own),
    so it is shown in the currency of the holder's latest statement (EUR before any)."""
    organisation = caller.organisation
    latest = (
        Statement.objects.filter(holder=organisation).order_by("-cycle__period_start", "-pk")
        if organisation is not None
        else Statement.objects.none()
    )
    return latest.values_list("currency", flat=True).first() or DEFAULT_CURRENCY


# --- payouts ----------------------------------------------------------------------------------


def payout_list(
    *,
    caller: Caller,
    cycle: int | None = None,
    status: str | None = None,
    own: bool = False,
) -> QuerySet[Payout]:
    """The payouts the caller may read (a holder: its own; staff: all), newest first. `own`
    keeps only those of the organisation the caller acts for, staff included."""
    payouts = scope(Payout.objects.select_related("cycle", "holder", "run"), caller)
    if own:
        if caller.organisation is None:
            return payouts.none()
        payouts = payouts.filter(holder=caller.organisation)
    if cycle is not None:
        payouts = payouts.filter(cycle_id=cycle)
    if status:
        payouts = payouts.filter(status=status)
    return payouts.order_by("-created_at", "-pk")


def payout_get(*, caller: Caller, pk) -> Payout:
    return get_scoped_or_404(Payout.objects.select_related("cycle", "holder"), caller, pk=pk)


def payout_export_rows(*, payouts: QuerySet[Payout]) -> Iterator[tuple]:
    """The header and one row per payout, for a CSV export (amounts in minor units)."""
    yield EXPORT_COLUMNS
    rows = payouts.select_related(None).values_list(
        "pk",
        "cycle__period",
        "cycle_id",
        "holder__code",
        "holder__name",
        "statement_id",
        "amount_minor",
        "currency",
        "status",
        "held_reason",
        "transfer_id",
        "destination",
        "amount_reversed_minor",
        "attempts",
        "created_at",
        "sent_at",
        "settled_at",
    )
    for row in rows.iterator(chunk_size=2000):
        yield tuple(value.isoformat() if hasattr(value, "isoformat") else value for value in row)


# --- runs -------------------------------------------------------------------------------------


def payout_run_list(*, caller: Caller) -> QuerySet[PayoutRun]:
    return scope(PayoutRun.objects.select_related("cycle", "started_by"), caller).order_by(
        "-started_at", "-pk"
    )


def payout_run_get(*, caller: Caller, pk) -> PayoutRun:
    return get_scoped_or_404(payout_run_list(caller=caller), caller, pk=pk)


def payout_run_of_cycle(*, cycle: Cycle) -> PayoutRun | None:
    return PayoutRun.objects.select_related("cycle", "started_by").filter(cycle=cycle).first()


def payout_run_progress(*, run: PayoutRun) -> dict[str, Any]:
    """Counts and amounts by status (every status, zeros included), the totals, and the
    percent of payouts done for this run (settled or held)."""
    rows = (
        Payout.objects.filter(run=run)
        .values("status")
        .annotate(n=Count("id"), amount=Sum("amount_minor"))
    )
    found = {row["status"]: (row["n"], row["amount"] or 0) for row in rows}
    counts = {
        status: {
            "count": found.get(status, (0, 0))[0],
            "amount_minor": found.get(status, (0, 0))[1],
        }
        for status in PayoutStatus.values
    }
    total = sum(c["count"] for c in counts.values())
    done = sum(counts[s]["count"] for s in DONE_STATUSES)
    return {
        "run": run.pk,
        "cycle": run.cycle_id,
        "status": run.status,
        "pause_reason": run.pause_reason,
        "currency": run.cycle.currency,
        "counts": counts,
        "total_count": total,
        "total_minor": sum(c["amount_minor"] for c in counts.values()),
        "done_count": done,
        "percent_settled": 100 if total == 0 else (done * 100) // total,
    }


def payout_run_failures(*, run: PayoutRun) -> QuerySet[Payout]:
    """Failed and reversed payouts, and submissions Stripe answered with an error (retrying)."""
    failing = Q(status__in=(PayoutStatus.FAILED, PayoutStatus.REVERSED)) | (
        Q(status=PayoutStatus.SUBMITTING) & ~Q(last_error="")
    )
    return (
        Payout.objects.filter(failing, run=run)
        .select_related("holder")
        .order_by("pk")[:PROBLEM_LIMIT]
    )


def payout_run_holds(*, run: PayoutRun) -> QuerySet[Payout]:
    return (
        Payout.objects.filter(run=run, status=PayoutStatus.HELD)
        .select_related("holder")
        .order_by("pk")[:PROBLEM_LIMIT]
    )


def payout_run_chart(*, progress: dict[str, Any]) -> dict[str, Any]:
    """Amounts by status for the monitor's chart (major units as strings: display only)."""
    labels = [label for _, label in PayoutStatus.choices]
    return {
        "currency": progress["currency"],
        "labels": labels,
        "statuses": list(PayoutStatus.values),
        "amounts_minor": [progress["counts"][s]["amount_minor"] for s in PayoutStatus.values],
    }


# --- reconciliations --------------------------------------------------------------------------


def reconciliation_list(*, caller: Caller, cycle: int | None = None) -> QuerySet:
    reconciliations = scope(PayoutReconciliation.objects.select_related("cycle"), caller)
    if cycle is not None:
        reconciliations = reconciliations.filter(cycle_id=cycle)
    return reconciliations.order_by("-ran_at", "-pk")


def reconciliation_latest(*, cycle: Cycle) -> PayoutReconciliation | None:
    return PayoutReconciliation.objects.filter(cycle=cycle).order_by("-ran_at", "-pk").first()
