"""Suspense: money held by reason until someone is found for it, and its release.

Items are booked when their cycle is approved (`suspense:<reason>` ledger accounts). A release
is decided between cycles and paid by the next allocation, as a new balanced entry there:

- to a work's holders, when an unmatched identifier now names exactly one work (after a claim
  or a manual match) or a disputed work is resolved; staff may also release an item by hand;
- after the policy's hold (in cycles): redistributed pro rata to the cycle's paid holders, or
  retained for the policy's stated purpose.
Disputed and reserved money is never released by age: it waits for a resolution.
"""

from __future__ import annotations

from django.db import transaction

from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import ConflictError, PermissionError_
from licensing.models import Work, WorkIdentifier, WorkStatus
from royalties.models import (
    Cycle,
    HoldExpiry,
    SuspenseItem,
    SuspenseReason,
    SuspenseRelease,
)
from royalties.services.recognition import BOOKED_STATUSES

EXPIRES_BY_AGE = (
    SuspenseReason.UNMATCHED,
    SuspenseReason.UNASSIGNED_SHARE,
    SuspenseReason.NO_USAGE,
    SuspenseReason.UNDISTRIBUTABLE,
)


def suspense_outstanding(*, currency: str | None = None, allocation_ids: list[int] | None = None):
    """Booked items not yet released (the money suspense holds now): the items of the current
    allocations of booked cycles. Lazy (a queryset): the allocations are a subquery unless
    ``allocation_ids`` (``booked_allocation_ids()``) is given."""
    current = (
        allocation_ids
        if allocation_ids is not None
        else Cycle.objects.filter(
            status__in=BOOKED_STATUSES, current_allocation__isnull=False
        ).values("current_allocation_id")
    )
    items = SuspenseItem.objects.filter(allocation_id__in=current, release__isnull=True)
    if currency:
        items = items.filter(currency=currency)
    return items


def booked_allocation_ids() -> list[int]:
    """The current allocations of booked cycles, read now. For the allocation's own reads of
    the outstanding suspense: selected by these ids (a few), the items' allocation index is
    used; given the subquery, PostgreSQL cannot tell how many items it selects and scans the
    table - the items of a cycle's earlier allocations stay (history), 2.5-3 s a query at 34M
    items, eight times an allocation, while the site waited behind it."""
    return list(
        Cycle.objects.filter(
            status__in=BOOKED_STATUSES, current_allocation__isnull=False
        ).values_list("current_allocation_id", flat=True)
    )


def _release(item: SuspenseItem, *, kind: str, work_id: int | None, reason: str, user=None):
    release, _ = SuspenseRelease.objects.get_or_create(
        item=item,
        defaults={"kind": kind, "work_id": work_id, "reason": reason[:300], "created_by": user},
    )
    return release


def suspense_releases_prepare(*, cycle: Cycle) -> list[SuspenseRelease]:
    """Decide the automatic releases due before ``cycle`` allocates, and return every release
    this cycle pays out (to a work or pro rata; retained money is booked at approval)."""
    with transaction.atomic():
        booked = booked_allocation_ids()
        outstanding = suspense_outstanding(currency=cycle.currency, allocation_ids=booked).exclude(
            cycle=cycle
        )
        for item in outstanding.filter(reason=SuspenseReason.UNMATCHED):
            scheme, _, value = item.ref.partition(":")
            works = list(
                WorkIdentifier.objects.filter(scheme=scheme, value=value)
                .values_list("work_id", flat=True)
                .distinct()[:2]
            )
            if len(works) == 1:
                _release(
                    item,
                    kind=SuspenseRelease.Kind.TO_WORK,
                    work_id=works[0],
                    reason=f"{item.ref} now names work {works[0]}",
                )
        for item in outstanding.filter(reason=SuspenseReason.DISPUTED):
            work = Work.objects.filter(pk=int(item.ref)).only("status").first()
            if work is not None and work.status != WorkStatus.DISPUTED:
                _release(
                    item,
                    kind=SuspenseRelease.Kind.TO_WORK,
                    work_id=work.pk,
                    reason=f"the dispute on work {work.pk} is resolved",
                )
        policy = cycle.policy
        earlier = list(
            Cycle.objects.filter(currency=cycle.currency, period_end__lt=cycle.period_start)
            .order_by("-period_start")
            .values_list("pk", flat=True)
        )
        expired_cycles = earlier[max(policy.suspense_hold_cycles - 1, 0) :]
        expired = suspense_outstanding(currency=cycle.currency, allocation_ids=booked).filter(
            reason__in=EXPIRES_BY_AGE, cycle_id__in=expired_cycles
        )
        for item in expired:
            if policy.hold_expiry == HoldExpiry.RETAIN:
                _release(
                    item,
                    kind=SuspenseRelease.Kind.RETAIN,
                    work_id=None,
                    reason=f"held {policy.suspense_hold_cycles} cycles; retained for "
                    f"{policy.retain_purpose}",
                )
            else:
                _release(
                    item,
                    kind=SuspenseRelease.Kind.REDISTRIBUTE,
                    work_id=None,
                    reason=f"held {policy.suspense_hold_cycles} cycles unclaimed",
                )
    return suspense_releases_pending(currency=cycle.currency)


def suspense_releases_pending(*, currency: str) -> list[SuspenseRelease]:
    return list(
        SuspenseRelease.objects.filter(cycle__isnull=True, item__currency=currency)
        .select_related("item")
        .order_by("pk")
    )


def suspense_release_to_work(
    *, caller: Caller, item: SuspenseItem, work: Work, reason: str
) -> SuspenseRelease:
    """Staff release held money to a work's holders (paid by the next cycle)."""
    if not caller.in_staff_group("operator", "approver"):
        raise PermissionError_("Only society staff release suspense.", code="forbidden_role")
    if not reason.strip():
        raise ConflictError("Say why the money is released.", code="invalid")
    with transaction.atomic():
        if not suspense_outstanding().filter(pk=item.pk).exists():
            raise ConflictError(
                "This item is not held (not booked yet, or released already).",
                code="not_outstanding",
            )
        release = _release(
            item,
            kind=SuspenseRelease.Kind.TO_WORK,
            work_id=work.pk,
            reason=reason,
            user=caller.user,
        )
        audit_record(
            action="suspense.release",
            caller=caller,
            obj=release,
            details={"item": item.pk, "work": work.pk, "amount_minor": item.amount_minor},
        )
    return release
