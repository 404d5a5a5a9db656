"""Reads for the staff review of a cycle before approval.

Everything here aggregates in the database (GROUP BY over statements, licences and suspense
items) and returns at most `LIMIT` rows per list, so the page stays fast with hundreds of
thousands of statements: nothing loads a whole allocation into Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Abs, Coalesce

from accounts.models import Organisation
from royalties.models import (
    Allocation,
    Cycle,
    CycleLicence,
    Statement,
    SuspenseItem,
    SuspenseReason,
)
from royalties.services.suspense import suspense_outstanding

LIMIT = 50
FACTOR = 10


@dataclass(frozen=True)
class Identity:
    """pool (money in) = administration fee + allocated to holders + suspense."""

    in_minor: int
    pool_minor: int
    releases_minor: int
    fee_minor: int
    holders_minor: int
    suspense_minor: int
    payable_minor: int
    carried_forward_minor: int
    statements_earned_minor: int
    suspense_items_minor: int

    @property
    def parts_minor(self) -> int:
        return self.fee_minor + self.holders_minor + self.suspense_minor

    @property
    def holds(self) -> bool:
        """The stored totals add up, and the stored rows agree with them."""
        return (
            self.in_minor == self.parts_minor
            and self.statements_earned_minor == self.holders_minor
            and self.suspense_items_minor == self.suspense_minor
        )

    @property
    def difference_minor(self) -> int:
        return self.in_minor - self.parts_minor


def cycle_list() -> QuerySet[Cycle]:
    return Cycle.objects.select_related("policy", "current_allocation", "allocated_by")


def cycle_allocations(*, cycle: Cycle) -> QuerySet[Allocation]:
    return cycle.allocations.select_related("created_by", "policy").order_by("-number")


def allocation_identity(*, allocation: Allocation) -> Identity:
    """The allocation's stored totals, checked against its statements and suspense items."""
    totals = allocation.totals or {}
    pool = int(totals.get("pool_minor", 0))
    releases = int(totals.get("releases_minor", 0))
    earned = allocation.statements.aggregate(t=Coalesce(Sum("earned_minor"), 0))["t"]
    held = allocation.suspense_items.aggregate(t=Coalesce(Sum("amount_minor"), 0))["t"]
    return Identity(
        in_minor=int(totals.get("in_minor", pool + releases)),
        pool_minor=pool,
        releases_minor=releases,
        fee_minor=int(totals.get("fee_minor", 0)),
        holders_minor=int(totals.get("holders_minor", 0)),
        suspense_minor=int(totals.get("suspense_minor", 0)),
        payable_minor=int(totals.get("payable_minor", 0)),
        carried_forward_minor=int(totals.get("carried_forward_minor", 0)),
        statements_earned_minor=int(earned),
        suspense_items_minor=int(held),
    )


def allocation_products(*, allocation: Allocation) -> list[dict]:
    """Per product: licences, recognised revenue, processing fees, pool and where it went."""
    return list(
        CycleLicence.objects.filter(allocation=allocation)
        .values("product_code")
        .annotate(
            licences=Count("id"),
            undeclared=Count("id", filter=Q(declared=False)),
            recognised_minor=Sum("recognised_minor"),
            processing_fee_minor=Sum("processing_fee_minor"),
            pool_minor=Sum("pool_minor"),
            fee_minor=Sum("fee_minor"),
            holders_minor=Sum("holders_minor"),
            suspense_minor=Sum("suspense_minor"),
        )
        .order_by("-pool_minor", "product_code")
    )


def allocation_suspense_by_reason(*, allocation: Allocation) -> list[dict]:
    """What this allocation routes to suspense, by reason."""
    labels = dict(SuspenseReason.choices)
    rows = (
        SuspenseItem.objects.filter(allocation=allocation)
        .values("reason")
        .annotate(amount_minor=Sum("amount_minor"), items=Count("id"))
        .order_by("-amount_minor", "reason")
    )
    return [{**row, "label": labels.get(row["reason"], row["reason"])} for row in rows]


def suspense_ageing(*, cycle: Cycle) -> list[dict]:
    """Money suspense holds now (booked, not released) in the cycle's currency, by reason and
    by age: the number of cycles of that currency since the one it arose in, up to ``cycle``
    (held since the previous cycle: 1)."""
    labels = dict(SuspenseReason.choices)
    starts = list(
        Cycle.objects.filter(currency=cycle.currency, period_start__lte=cycle.period_start)
        .order_by("period_start")
        .values_list("pk", flat=True)
    )
    position = {pk: i for i, pk in enumerate(starts)}
    latest = position.get(cycle.pk, len(starts))
    grouped = (
        suspense_outstanding(currency=cycle.currency)
        .values("reason", "cycle_id", "cycle__period")
        .annotate(amount_minor=Sum("amount_minor"), items=Count("id"))
        .order_by("reason", "cycle__period_start")
    )
    rows = []
    for row in grouped:
        age = latest - position[row["cycle_id"]] if row["cycle_id"] in position else 0
        rows.append(
            {
                "reason": row["reason"],
                "label": labels.get(row["reason"], row["reason"]),
                "period": row["cycle__period"],
                "cycles": age,
                "amount_minor": row["amount_minor"],
                "items": row["items"],
            }
        )
    return rows


def _earned_in(allocation_id: int | None):
    return Coalesce(
        Sum(
            Case(
                When(allocation_id=allocation_id, then=F("earned_minor")),
                default=Value(0),
                output_field=BigIntegerField(),
            )
        ),
        Value(0),
        output_field=BigIntegerField(),
    )


def _side_by_side(before_id: int | None, after_id: int) -> QuerySet:
    """One row per holder of either allocation: earned before and after, and the change.
    Grouped by holder id only (names are looked up for the rows shown, see `_named`)."""
    ids = [after_id] + ([before_id] if before_id else [])
    return (
        Statement.objects.filter(allocation_id__in=ids)
        .values("holder_id")
        .annotate(before_minor=_earned_in(before_id), after_minor=_earned_in(after_id))
        .annotate(change_minor=F("after_minor") - F("before_minor"))
        .annotate(size=Abs(F("change_minor")))
    )


def _named(rows) -> list[dict]:
    """The rows (at most `LIMIT`), with their holder's code and name."""
    rows = list(rows)
    names = {
        pk: (code, name)
        for pk, code, name in Organisation.objects.filter(
            pk__in=[row["holder_id"] for row in rows]
        ).values_list("pk", "code", "name")
    }
    for row in rows:
        row["holder__code"], row["holder__name"] = names.get(row["holder_id"], ("", ""))
    return rows


def _paid_only_in(allocation_id: int, *, other_id: int) -> int:
    """Holders paid in one allocation and not in the other (index lookups, no grouping)."""
    paid_there = Statement.objects.filter(
        allocation_id=other_id, holder_id=OuterRef("holder_id"), earned_minor__gt=0
    )
    return (
        Statement.objects.filter(allocation_id=allocation_id, earned_minor__gt=0)
        .exclude(Exists(paid_there))
        .count()
    )


def previous_cycle(*, cycle: Cycle) -> Cycle | None:
    return (
        Cycle.objects.filter(
            currency=cycle.currency,
            period_end__lt=cycle.period_start,
            current_allocation__isnull=False,
        )
        .select_related("current_allocation")
        .order_by("-period_start")
        .first()
    )


def cycle_holder_changes(*, cycle: Cycle, limit: int = LIMIT) -> dict:
    """The largest changes of earnings per holder against the previous cycle, and the holders
    whose earnings moved by more than a factor of ten (among those paid in both cycles)."""
    previous = previous_cycle(cycle=cycle)
    if cycle.current_allocation_id is None or previous is None:
        return {"previous": previous, "largest": [], "tenfold": [], "new": 0, "gone": 0}
    before_id, after_id = previous.current_allocation_id, cycle.current_allocation_id
    rows = _side_by_side(before_id, after_id)
    largest = _named(rows.exclude(change_minor=0).order_by("-size", "holder_id")[:limit])
    both = rows.filter(before_minor__gt=0, after_minor__gt=0)
    tenfold = _named(
        both.filter(
            Q(after_minor__gt=F("before_minor") * FACTOR)
            | Q(before_minor__gt=F("after_minor") * FACTOR)
        ).order_by("-size", "holder_id")[:limit]
    )
    counts = {
        "new": _paid_only_in(after_id, other_id=before_id),
        "gone": _paid_only_in(before_id, other_id=after_id),
    }
    return {"previous": previous, "largest": largest, "tenfold": tenfold, **counts}


def allocation_diff(*, cycle: Cycle, first: int, second: int, limit: int = LIMIT) -> dict | None:
    """Holders whose earnings differ between allocations number ``first`` and ``second`` of
    the cycle (largest differences first), and whether the two checksums are equal."""
    found = {a.number: a for a in cycle.allocations.filter(number__in=[first, second])}
    if first not in found or second not in found:
        return None
    a, b = found[first], found[second]
    differing = _side_by_side(a.pk, b.pk).exclude(change_minor=0)
    return {
        "first": a,
        "second": b,
        "same_checksum": a.checksum == b.checksum,
        "differing": differing.count() if a.pk != b.pk else 0,
        "rows": _named(differing.order_by("-size", "holder_id")[:limit]) if a.pk != b.pk else [],
    }
