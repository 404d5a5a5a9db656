"""Reads for the staff dashboard: collected vs distributed per cycle, suspense ageing, match
rate per licensee, top works, and distribution deadlines per financial year.

Every figure is an aggregate in the database (GROUP BY over cycle licences, statements,
statement lines, suspense items, declarations, payouts); lists are capped at `LIMIT` rows.
Amounts are integer minor units; the chart data converts to major units for display only.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from licensing.models import DeclarationStatus, UsageDeclaration, Work
from licensing.templatetags.money import ZERO_DECIMAL
from royalties.models import Cycle, CycleLicence, Payout, PayoutStatus, Statement, StatementWorkLine
from royalties.services.annual_report import distribution_deadline, financial_year_of
from royalties.services.recognition import BOOKED_STATUSES
from royalties.services.suspense import suspense_outstanding

LIMIT = 20
PAID = (PayoutStatus.SENT, PayoutStatus.PAID)


def dashboard_currencies() -> list[str]:
    found = sorted(set(Cycle.objects.values_list("currency", flat=True)))
    return found or ["EUR"]


def _allocated_cycles(currency: str):
    return (
        Cycle.objects.filter(currency=currency, current_allocation__isnull=False)
        .select_related("current_allocation")
        .order_by("period_start")
    )


def dashboard_cycles(*, currency: str) -> list[dict]:
    """Per cycle (current allocation): collected (revenue recognised), the pool after
    processing fees, the fee, distributed to holders, held in suspense, and paid out."""
    cycles = list(_allocated_cycles(currency))
    allocation_ids = [c.current_allocation_id for c in cycles]
    licences = {
        row["allocation_id"]: row
        for row in CycleLicence.objects.filter(allocation_id__in=allocation_ids)
        .values("allocation_id")
        .annotate(recognised=Sum("recognised_minor"), pool=Sum("pool_minor"))
    }
    earned = dict(
        Statement.objects.filter(allocation_id__in=allocation_ids)
        .values("allocation_id")
        .annotate(t=Sum("earned_minor"))
        .values_list("allocation_id", "t")
    )
    paid = dict(
        Payout.objects.filter(cycle__in=cycles, status__in=PAID)
        .values("cycle_id")
        .annotate(t=Sum(F("amount_minor") - F("amount_reversed_minor")))
        .values_list("cycle_id", "t")
    )
    rows = []
    for cycle in cycles:
        totals = cycle.current_allocation.totals or {}
        money = licences.get(cycle.current_allocation_id, {})
        rows.append(
            {
                "cycle_id": cycle.pk,
                "period": cycle.period,
                "period_end": cycle.period_end,
                "status": cycle.status,
                "booked": cycle.status in BOOKED_STATUSES,
                "collected_minor": int(money.get("recognised") or 0),
                "pool_minor": int(money.get("pool") or 0),
                "fee_minor": int(totals.get("fee_minor", 0)),
                "distributed_minor": int(earned.get(cycle.current_allocation_id) or 0),
                "suspense_minor": int(totals.get("suspense_minor", 0)),
                "paid_minor": int(paid.get(cycle.pk) or 0),
            }
        )
    return rows


def dashboard_suspense_ageing(*, currency: str) -> list[dict]:
    """Suspense held now (booked, not released), by reason and age in cycles."""
    booked = list(
        Cycle.objects.filter(currency=currency, status__in=BOOKED_STATUSES)
        .order_by("period_start")
        .values_list("pk", flat=True)
    )
    position = {pk: i for i, pk in enumerate(booked)}
    latest = len(booked) - 1
    grouped = (
        suspense_outstanding(currency=currency)
        .values("reason", "cycle_id")
        .annotate(amount_minor=Sum("amount_minor"), items=Count("id"))
    )
    ages: dict[tuple[str, int], dict] = {}
    for row in grouped:
        age = latest - position.get(row["cycle_id"], latest)
        key = (row["reason"], age)
        slot = ages.setdefault(
            key, {"reason": row["reason"], "cycles": age, "amount_minor": 0, "items": 0}
        )
        slot["amount_minor"] += int(row["amount_minor"])
        slot["items"] += row["items"]
    return sorted(ages.values(), key=lambda r: (r["reason"], r["cycles"]))


def dashboard_match_rates(*, limit: int = LIMIT) -> list[dict]:
    """Per licensee, over its accepted declarations: declared, matched, reserved and
    unmatched quantities and the match rate (matched / declared), lowest rate first."""
    rows = (
        UsageDeclaration.objects.filter(status=DeclarationStatus.ACCEPTED)
        .values("licence__licensee_id", "licence__licensee__code", "licence__licensee__name")
        .annotate(
            declarations=Count("id"),
            declared=Coalesce(Sum("declared_quantity"), 0),
            matched=Coalesce(Sum("matched_quantity"), 0),
            reserved=Coalesce(Sum("reserved_quantity"), 0),
            unmatched=Coalesce(Sum("unmatched_quantity"), 0),
        )
        .order_by("licence__licensee__code")
    )
    found = []
    for row in rows:
        declared = int(row["declared"])
        found.append(
            {
                "licensee_id": row["licence__licensee_id"],
                "code": row["licence__licensee__code"],
                "name": row["licence__licensee__name"],
                "declarations": row["declarations"],
                "declared": declared,
                "matched": int(row["matched"]),
                "reserved": int(row["reserved"]),
                "unmatched": int(row["unmatched"]),
                # Basis points, exact integer arithmetic (display divides by 100).
                "rate_bp": (int(row["matched"]) * 10_000 // declared) if declared else None,
            }
        )
    for row in found:
        bp = row["rate_bp"]
        row["rate_text"] = "—" if bp is None else f"{bp // 100}.{bp % 100:02d} %"
    found.sort(key=lambda r: (r["rate_bp"] is None, r["rate_bp"] or 0, r["code"]))
    return found[:limit]


def dashboard_top_works(*, currency: str, limit: int = LIMIT) -> list[dict]:
    """The works that earned most over the current allocations of booked cycles."""
    rows = list(
        StatementWorkLine.objects.filter(
            statement__currency=currency,
            statement__cycle__status__in=BOOKED_STATUSES,
            statement__allocation_id=F("statement__cycle__current_allocation"),
            work_id__isnull=False,
        )
        .values("work_id")
        .annotate(
            amount_minor=Sum("amount_minor"), holders=Count("statement__holder_id", distinct=True)
        )
        .order_by("-amount_minor", "work_id")[:limit]
    )
    works = {
        w.pk: w
        for w in Work.objects.filter(pk__in=[r["work_id"] for r in rows]).select_related(
            "catalogue__owner"
        )
    }
    for row in rows:
        work = works.get(row["work_id"])
        row["title"] = work.title if work else f"Work {row['work_id']}"
        row["work_ref"] = work.work_ref if work else ""
        row["media_type"] = work.media_type if work else ""
        row["owner"] = work.catalogue.owner.code if work else ""
    return rows


def dashboard_deadlines(
    *, currency: str, today: date | None = None, start_month: int = 1
) -> list[dict]:
    """Per financial year of the cycles (the year holding each period's end): collected
    (revenue recognised), distributed to holders, held in suspense, paid, and the days left to
    the deadline (nine months after the year's end; negative: past it). The deadline is met
    when everything distributed to holders is paid; suspense waits for identification or
    matching, the directive's objective reasons, and is shown beside it."""
    today = today or timezone.localdate()
    years: dict[int, dict] = defaultdict(
        lambda: {
            "collected_minor": 0,
            "distributed_minor": 0,
            "suspense_minor": 0,
            "paid_minor": 0,
            "periods": [],
        }
    )
    for row in dashboard_cycles(currency=currency):
        year = years[financial_year_of(row["period_end"], start_month)]
        year["periods"].append(row["period"])
        year["collected_minor"] += row["collected_minor"]
        if row["booked"]:
            year["distributed_minor"] += row["distributed_minor"]
            year["suspense_minor"] += row["suspense_minor"]
        year["paid_minor"] += row["paid_minor"]
    result = []
    for fy, row in sorted(years.items()):
        deadline = distribution_deadline(fy, start_month)
        unpaid = row["distributed_minor"] - row["paid_minor"]
        days_left = (deadline - today).days
        if unpaid <= 0:
            state = "met"
        elif days_left < 0:
            state = "overdue"
        elif days_left <= 60:
            state = "due soon"
        else:
            state = "open"
        result.append(
            {
                "year": fy,
                "deadline": deadline,
                "days_left": days_left,
                "state": state,
                "unpaid_minor": unpaid,
                **row,
            }
        )
    return result


def dashboard_summary(*, currency: str) -> dict:
    held = suspense_outstanding(currency=currency).aggregate(
        t=Coalesce(Sum("amount_minor"), 0), n=Count("id")
    )
    pending_declarations = UsageDeclaration.objects.filter(
        Q(status=DeclarationStatus.SUBMITTED) | Q(status=DeclarationStatus.PROCESSING)
    ).count()
    return {
        "suspense_minor": int(held["t"]),
        "suspense_items": held["n"],
        "pending_declarations": pending_declarations,
    }


def dashboard_chart_data(
    *,
    currency: str,
    cycles: list[dict],
    ageing: list[dict],
    rates: list[dict],
    works: list[dict],
    deadlines: list[dict],
) -> dict:
    """JSON for the dashboard's charts, in major units (display only)."""
    unit = 1 if currency.upper() in ZERO_DECIMAL else 100
    reasons = sorted({r["reason"] for r in ageing})
    ages = sorted({r["cycles"] for r in ageing})
    by = {(r["reason"], r["cycles"]): r["amount_minor"] for r in ageing}
    return {
        "currency": currency,
        "cycles": {
            "labels": [c["period"] for c in cycles],
            "collected": [c["collected_minor"] / unit for c in cycles],
            "distributed": [c["distributed_minor"] / unit for c in cycles],
            "suspense": [c["suspense_minor"] / unit for c in cycles],
            "paid": [c["paid_minor"] / unit for c in cycles],
        },
        "ageing": {
            "labels": [f"{a} cycle(s)" for a in ages],
            "datasets": [
                {"label": reason, "data": [by.get((reason, a), 0) / unit for a in ages]}
                for reason in reasons
            ],
        },
        "rates": {
            "labels": [r["code"] for r in rates],
            "matched": [(r["rate_bp"] or 0) / 100 for r in rates],
        },
        "works": {
            "labels": [w["title"][:40] for w in works[:10]],
            "amounts": [w["amount_minor"] / unit for w in works[:10]],
        },
        "deadlines": {
            "labels": [str(d["year"]) for d in deadlines],
            "collected": [d["collected_minor"] / unit for d in deadlines],
            "distributed": [d["distributed_minor"] / unit for d in deadlines],
            "paid": [d["paid_minor"] / unit for d in deadlines],
        },
    }
