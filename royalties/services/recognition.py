"""Revenue recognition: how much of each licence's money belongs to a period.

A licence's fee is paid up front and recognised day by day over its term: a period gets
what was collected x (days elapsed by its last day) / term days, less the same for the day
before it starts, each rounded down, so consecutive periods telescope and nothing drifts. The
period holding the term's last day takes whatever is still deferred, so over the whole term the
periods add up to exactly what was collected, even when a true-up or a refund changed that
mid-term. A period is never given more than is still deferred. Processing fees are recognised
the same way; the pool is the difference (revenue net of processing fees).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, Q, Sum

from licensing.models import Licence, LicenceStatus, Payment, PaymentStatus
from royalties.models import CycleLicence, CycleStatus

COLLECTED = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
BOOKED_STATUSES = (CycleStatus.APPROVED, CycleStatus.PAYING, CycleStatus.PAID, CycleStatus.CLOSED)


@dataclass(frozen=True)
class LicencePool:
    licence_id: int
    product_code: str
    term_days: int
    days_in_period: int
    collected_minor: int
    recognised_minor: int
    processing_fee_minor: int

    @property
    def pool_minor(self) -> int:
        return self.recognised_minor - self.processing_fee_minor


def recognised_to(*, amount_minor: int, starts_on: date, ends_on: date, through: date) -> int:
    """What of ``amount_minor`` is recognised from ``starts_on`` through ``through`` (inclusive),
    daily pro rata over the inclusive term, rounded down (integers only)."""
    term_days = (ends_on - starts_on).days + 1
    elapsed = min(max((min(through, ends_on) - starts_on).days + 1, 0), term_days)
    return amount_minor * elapsed // term_days


def _in_period(licence, amount: int, prior: int, start: date, end: date) -> int:
    remaining = max(amount - prior, 0)
    if end >= licence.ends_on:
        return remaining
    term = {"amount_minor": amount, "starts_on": licence.starts_on, "ends_on": licence.ends_on}
    share = recognised_to(**term, through=end) - recognised_to(
        **term, through=start - timedelta(days=1)
    )
    return min(max(share, 0), remaining)


def licence_pools(
    *, period_start: date, period_end: date, currency: str, exclude_cycle_id: int | None = None
) -> list[LicencePool]:
    """The pool of every licence in ``currency`` whose term overlaps the period and that has
    collected money, in licence order. Earlier recognition is read from the current
    allocations of approved (or later) cycles, never from this one."""
    licences = (
        Licence.objects.filter(
            currency=currency,
            starts_on__lte=period_end,
            ends_on__gte=period_start,
            status__in=(LicenceStatus.ACTIVE, LicenceStatus.EXPIRED, LicenceStatus.CANCELLED),
        )
        .select_related("product")
        .order_by("pk")
    )
    money = {
        row["licence_id"]: row
        for row in Payment.objects.filter(
            licence__in=licences, status__in=COLLECTED, currency=currency
        )
        .values("licence_id")
        .annotate(paid=Sum("amount_minor"), refunded=Sum("refunded_minor"), fees=Sum("fee_minor"))
    }
    earlier = CycleLicence.objects.filter(
        licence__in=licences,
        allocation__cycle__status__in=BOOKED_STATUSES,
        allocation__cycle__current_allocation=F("allocation_id"),
        allocation__cycle__period_end__lt=period_start,
    )
    if exclude_cycle_id is not None:
        earlier = earlier.filter(~Q(allocation__cycle_id=exclude_cycle_id))
    before = {
        row["licence_id"]: row
        for row in earlier.values("licence_id").annotate(
            revenue=Sum("recognised_minor"), fees=Sum("processing_fee_minor")
        )
    }
    pools = []
    for licence in licences:
        paid = money.get(licence.pk)
        if paid is None:
            continue
        collected = int(paid["paid"]) - int(paid["refunded"])
        fees = int(paid["fees"])
        prior = before.get(licence.pk, {"revenue": 0, "fees": 0})
        revenue = _in_period(licence, collected, int(prior["revenue"]), period_start, period_end)
        fee = _in_period(licence, fees, int(prior["fees"]), period_start, period_end)
        fee = min(fee, revenue)  # a pool is never negative
        overlap_start = max(licence.starts_on, period_start)
        overlap_end = min(licence.ends_on, period_end)
        pools.append(
            LicencePool(
                licence_id=licence.pk,
                product_code=licence.product.code,
                term_days=(licence.ends_on - licence.starts_on).days + 1,
                days_in_period=(overlap_end - overlap_start).days + 1,
                collected_minor=collected,
                recognised_minor=revenue,
                processing_fee_minor=fee,
            )
        )
    return pools
