"""The demo society's payout cycle: a policy, then this quarter's cycle allocated by the
operator and approved by the approver (four eyes), through the same services staff use.
Re-running the demo finds the approved cycle and leaves it as it is."""

from __future__ import annotations

from accounts.models import User
from accounts.scoping import Caller
from licensing.demo_declarations import current_quarter
from royalties.models import Cycle, CycleStatus, DistributionPolicy
from royalties.services.cycles import (
    cycle_allocate,
    cycle_allocate_run,
    cycle_approve,
    cycle_create,
    policy_publish,
)

DEMO_POLICY = {
    "admin_fee_bp": 1200,  # 12% administration fee
    "fee_bp_by_media": {"image": 1500},
    "media_weight_bp": {"text": 10_000, "audio": 12_000, "image": 8_000},
    "threshold_minor": 2_500,  # 25.00 minimum payout; smaller balances are carried forward
    "suspense_hold_cycles": 4,
    "note": "Demo society policy",
}


def demo_cycle_run(*, operator: User, approver: User, currency: str = "EUR") -> Cycle:
    allocator = Caller(user=operator, organisation=None)
    if not DistributionPolicy.objects.exists():
        policy_publish(caller=allocator, **DEMO_POLICY)
    period = current_quarter()
    cycle = Cycle.objects.filter(period=period, currency=currency).first()
    if cycle is None:
        cycle = cycle_create(caller=allocator, period=period, currency=currency)
    if cycle.status in (CycleStatus.DRAFT, CycleStatus.FAILED):
        cycle = cycle_allocate(caller=allocator, cycle=cycle)
        if cycle.status == CycleStatus.ALLOCATING:  # eager Celery has run it already otherwise
            cycle = cycle_allocate_run(cycle_id=cycle.pk)
    if cycle.status == CycleStatus.ALLOCATED:
        cycle = cycle_approve(caller=Caller(user=approver, organisation=None), cycle=cycle)
    return cycle
