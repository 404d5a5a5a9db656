"""The demo society's payout cycle: a policy, then this quarter's cycle allocated by the
operator and approved by the approver (four eyes), then paid through Stripe Connect and
reconciled, through the same services staff use. Re-running the demo finds the cycle and
leaves it as it is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from accounts.models import Organisation, User
from accounts.scoping import Caller, caller_for_user
from licensing.demo_declarations import current_quarter
from licensing.services.licences import cash_account
from royalties.integrations import stripe_client
from royalties.models import (
    Cycle,
    CycleStatus,
    DistributionPolicy,
    Payout,
    PayoutAccount,
    PayoutReconciliation,
    PayoutRun,
    PayoutStatus,
)
from royalties.services.cycles import (
    cycle_allocate,
    cycle_allocate_run,
    cycle_approve,
    cycle_create,
    policy_publish,
)
from royalties.services.ledger import Line, journal_entry_post
from royalties.services.payouts import (
    payout_account_connect,
    payout_run_counts,
    payout_run_start,
)
from royalties.services.reconciliation import reconcile_cycle

# Left without a payout account, to show a held payout (its balance stays owed).
DEMO_UNCONNECTED_HOLDER = "Fjord Photo Agency"

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


def demo_payouts_run(
    *,
    cycle: Cycle,
    approver: User,
    holders: dict[str, tuple[Organisation, User]],
    stripe_control: Any,
    webhook_deliver: Callable[[Any], int],
    unconnected: str | None = None,
) -> PayoutReconciliation | None:
    """Pay the approved cycle through the local Stripe and reconcile it.

    Each rights holder (but ``unconnected``, whose payout is held to show what that looks like)
    connects a Stripe Express account and completes the hosted onboarding; the platform's card
    and invoice money becomes available and the society tops up any shortfall from the bank
    (booked Dr cash:stripe / Cr cash:bank); the approver starts the payout run; Stripe's
    webhooks come back through Blanket's webhook path; the reconciliation closes the cycle.
    Safe to run again: a paid cycle is reconciled, a closed one left as it is."""
    for name, (organisation, owner) in holders.items():
        if name == unconnected or PayoutAccount.objects.filter(organisation=organisation).exists():
            continue
        payout_account_connect(
            caller=caller_for_user(owner, organisation),
            return_url="http://127.0.0.1:8000/payouts/return/",
            refresh_url="http://127.0.0.1:8000/payouts/refresh/",
        )
        account = PayoutAccount.objects.get(organisation=organisation)
        stripe_control.account_complete_onboarding(account.stripe_account_id)
    webhook_deliver(stripe_control)  # account.updated: the accounts can receive now
    if cycle.status == CycleStatus.APPROVED:
        stripe_control.balance_release()
        needed = sum(cycle.current_allocation.statements.values_list("payable_minor", flat=True))
        shortfall = needed - stripe_client.balance_available(cycle.currency)
        if shortfall > 0:
            stripe_control.balance_fund(shortfall, cycle.currency.lower())
            journal_entry_post(
                idempotency_key=f"demo:topup:cycle:{cycle.pk}",
                lines=[
                    Line(cash_account(via="stripe", currency=cycle.currency), shortfall),
                    Line(cash_account(via="bank", currency=cycle.currency), -shortfall),
                ],
                source_type="topup",
                source_id=cycle.pk,
                description=f"{cycle.period} Stripe balance topped up from the bank for payouts",
                effective_date=timezone.localdate(),
                created_by=approver,
            )
        payout_run_start(caller=Caller(user=approver, organisation=None), cycle=cycle)
        webhook_deliver(stripe_control)  # transfer.created: confirms what is already booked
    cycle.refresh_from_db()
    if cycle.status == CycleStatus.PAID:
        return reconcile_cycle(cycle_id=cycle.pk)
    # Closed by an earlier run (whose local Stripe is gone): its reconciliation stands.
    return cycle.reconciliations.first()


def demo_payout_lines(cycle: Cycle, reconciliation: PayoutReconciliation | None) -> list[str]:
    run = PayoutRun.objects.filter(cycle=cycle).first()
    if run is None:
        return [f"Payouts {cycle.period}: not started ({cycle.status})."]
    lines = [f"Payouts {cycle.period} {cycle.currency}: run {run.status}, cycle {cycle.status}"]
    for status, row in sorted(payout_run_counts(run.pk).items()):
        lines.append(f"  {status:<9} {row['count']:>4} payouts  {row['amount_minor']:>12,} minor")
    for payout in Payout.objects.filter(run=run, status=PayoutStatus.HELD).select_related("holder"):
        lines.append(f"  held: {payout.holder.name}: {payout.held_reason}")
    if reconciliation is not None:
        found = len(reconciliation.mismatches)
        verdict = "clean" if reconciliation.clean else f"{found} mismatches"
        lines.append(
            f"  reconciliation: {verdict} ({reconciliation.checked.get('transfers', 0)} "
            f"transfers, {reconciliation.checked.get('stripe_transferred_minor', 0):,} minor "
            f"at Stripe = {reconciliation.checked.get('sent_minor', 0):,} booked)"
        )
    return lines
