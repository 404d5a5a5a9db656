"""Payout cycles end to end through the services: recognition, the engine, statements, the
state machine with four eyes, re-allocation, suspense and its release, carry-forward, and the
ledger after approval.

The scenario (hand-computed): a licence of 365,000 (minor units) for the year from 2026-07-01
recognises 1,000 a day, so 92,000 in 2026-Q3 (92 days). The policy's fee is 10%.
Usage: A 600, B 300, C 100
(A and B wholly the rights holder's; C 50% rights holder, 30% co-holder, 20% unassigned).
  fee       9,200
  A         92,000 x 0.6 x 0.9 = 49,680 -> rights holder
  B         92,000 x 0.3 x 0.9 = 24,840 -> rights holder
  C         92,000 x 0.1 x 0.9 =  8,280 -> 4,140 rights holder, 2,484 co-holder, 1,656 suspense
  rights holder 78,660; co-holder 2,484; suspense 1,656; 9,200 + 78,660 + 2,484 + 1,656 = 92,000
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from config.errors import ConflictError, PermissionError_
from royalties.models import (
    CycleStatus,
    JournalEntry,
    Statement,
    SuspenseItem,
    SuspenseRelease,
)
from royalties.services import cycles as cycle_services
from royalties.services.cycles import cycle_allocate, cycle_approve, cycle_create
from royalties.services.ledger import ledger_trial_balance
from royalties.services.suspense import suspense_outstanding
from tests.licensing.declarations_support import ISBN_A, ISBN_B, ISBN_UNKNOWN
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs

ISBN_C = "9780262033848"

pytestmark = pytest.mark.django_db


@pytest.fixture
def works(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder, "Backlist")
    shares_c = [
        {"holder": rights_holder.organisation.code, "share": "50"},
        {"holder": co_holder.organisation.code, "share": "30"},
    ]
    return {
        "A": work_in(catalogue, rights_holder, "A", isbn=ISBN_A),
        "B": work_in(catalogue, rights_holder, "B", isbn=ISBN_B),
        "C": work_in(catalogue, rights_holder, "C", isbn=ISBN_C, shares=shares_c),
    }


@pytest.fixture
def scenario(operator, licensee, works):
    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(
        licensee, licence, [("isbn", ISBN_A, 600), ("isbn", ISBN_B, 300), ("isbn", ISBN_C, 100)]
    )
    return licence


def _statement(cycle, persona) -> Statement:
    return Statement.objects.get(allocation=cycle.current_allocation, holder=persona.organisation)


def test_allocation_gives_the_hand_computed_statements(
    scenario, operator, rights_holder, co_holder
):
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    totals = cycle.current_allocation.totals
    assert totals["pool_minor"] == 92_000
    assert (totals["fee_minor"], totals["holders_minor"], totals["suspense_minor"]) == (
        9_200,
        78_660 + 2_484,
        1_656,
    )
    mine = _statement(cycle, rights_holder)
    assert (mine.earned_minor, mine.payable_minor, mine.carried_forward_minor) == (
        78_660,
        78_660,
        0,
    )
    by_work = dict(mine.work_lines.values_list("work__work_ref", "amount_minor"))
    assert by_work == {"A": 49_680, "B": 24_840, "C": 4_140}
    assert _statement(cycle, co_holder).earned_minor == 2_484
    (item,) = SuspenseItem.objects.filter(allocation=cycle.current_allocation)
    assert (item.reason, item.amount_minor) == ("unassigned_share", 1_656)
    (pool,) = cycle.current_allocation.licences.all()
    assert (pool.days_in_period, pool.term_days, pool.recognised_minor) == (92, 365, 92_000)
    assert not JournalEntry.objects.filter(source_type="cycle").exists()  # nothing booked yet


def test_reallocating_before_approval_gives_the_identical_result(scenario, operator):
    first = cs.allocate(operator)
    second = cs.allocate(operator)
    assert second.current_allocation.number == 2
    a, b = first.allocations.order_by("number")
    assert a.checksum == b.checksum
    rows = lambda alloc: sorted(  # noqa: E731
        alloc.statements.values_list("holder_id", "earned_minor", "payable_minor")
    )
    assert rows(a) == rows(b)


def test_four_eyes_and_the_state_machine(scenario, operator, approver, rights_holder):
    cycle = cs.allocate(approver)  # the approver allocates it herself...
    with pytest.raises(PermissionError_) as refused:
        cs.approve(approver, cycle)  # ...so she may not approve it
    assert refused.value.code == "four_eyes"
    with pytest.raises(PermissionError_):
        cs.approve(operator, cycle)  # an operator is not an approver
    cycle = cs.allocate(operator)  # re-allocated by the operator
    cycle = cs.approve(approver, cycle)
    assert cycle.status == CycleStatus.APPROVED
    assert cycle.approved_by == approver.user
    with pytest.raises(ConflictError):
        cycle_allocate(caller=cs.staff_caller(operator), cycle=cycle)
    with pytest.raises(ConflictError):
        cs.approve(approver, cycle)
    statement = _statement(cycle, rights_holder)
    assert statement.published_at is not None


def test_holders_and_licensees_cannot_run_cycles(scenario, rights_holder, licensee):
    for persona in (rights_holder, licensee):
        with pytest.raises(PermissionError_):
            cycle_create(caller=cs.caller_of(persona), period="2026-Q3")


def test_approval_books_balanced_entries_and_holder_accounts(
    scenario, operator, approver, rights_holder, co_holder
):
    from royalties.models import LedgerAccount
    from royalties.services.ledger import ledger_account_balance

    cycle = cs.approve(approver, cs.allocate(operator))
    assert all(total == 0 for total in ledger_trial_balance().values())
    code = rights_holder.organisation.code

    def balance(name):
        return ledger_account_balance(account=LedgerAccount.objects.get(code=name))

    assert balance(f"holder_payable:{code}:EUR") == -78_660
    assert balance(f"holder:{code}:EUR") == 0  # nothing carried
    assert balance("distribution_pool:EUR") == 0
    assert balance("suspense:unassigned_share:EUR") == -1_656
    assert balance("admin_fee_income:ai-training:EUR") == -9_200
    # The licence paid 365,000 into deferred revenue; 92,000 of it is now recognised.
    assert balance("deferred_revenue:EUR") == -(365_000 - 92_000)
    keys = set(
        JournalEntry.objects.filter(source_type="cycle").values_list("idempotency_key", flat=True)
    )
    prefix = f"cycle:{cycle.pk}:allocation:1:"
    assert {f"{prefix}{n}" for n in ("recognise", "fee", "suspense", "allocate", "payable")} == keys


def test_threshold_carries_forward_into_the_next_cycle(
    operator, approver, licensee, rights_holder, co_holder, works
):
    cs.policy(operator, admin_fee_bp=1000, threshold_minor=5_000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(licensee, licence, [("isbn", ISBN_C, 100)], period="2026-Q3")
    q3 = cs.approve(approver, cs.allocate(operator, "2026-Q3"))
    # C alone: 92,000 x 0.9 = 82,800 -> co-holder 30% = 24,840, above the 5,000 threshold.
    co = _statement(q3, co_holder)
    assert co.payable_minor == co.earned_minor == 24_840
    # Raise the threshold: Q4's co-holder earnings stay below it and are carried forward.
    cs.policy(operator, threshold_minor=30_000)
    cycle_create(caller=cs.staff_caller(operator), period="2026-Q4")
    cs.usage(licensee, licence, [("isbn", ISBN_C, 100)], period="2026-Q4")
    q4 = cs.allocate(operator, "2026-Q4")
    co4 = _statement(q4, co_holder)
    assert co4.brought_forward_minor == 0
    assert (co4.earned_minor, co4.payable_minor, co4.carried_forward_minor) == (24_840, 0, 24_840)
    q4 = cs.approve(approver, q4)
    # A third cycle brings it forward and, with more earnings, pays it all out.
    cycle_create(caller=cs.staff_caller(operator), period="2027-Q1")
    later = cs.paid_licence(licensee, operator, amount=3_650_000, code="ai-training-2")
    from licensing.models import Licence

    Licence.objects.filter(pk=later.pk).update(starts_on="2027-01-01", ends_on="2027-12-31")
    later.refresh_from_db()
    cs.usage(licensee, later, [("isbn", ISBN_C, 100)], period="2027-Q1")
    q1 = cs.allocate(operator, "2027-Q1")
    co1 = _statement(q1, co_holder)
    assert co1.brought_forward_minor == 24_840
    assert co1.payable_minor == co1.brought_forward_minor + co1.earned_minor
    assert co1.carried_forward_minor == 0


def test_unmatched_money_is_held_then_released_to_the_work_registered_for_it(
    operator, approver, licensee, rights_holder, works
):
    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(licensee, licence, [("isbn", ISBN_A, 1000), ("isbn", ISBN_UNKNOWN, 1000)])
    q3 = cs.approve(approver, cs.allocate(operator, "2026-Q3"))
    (held,) = suspense_outstanding().filter(reason="unmatched")
    assert (held.ref, held.amount_minor) == (f"isbn:{ISBN_UNKNOWN}", 41_400)
    # The rights holder registers the work; the next cycle pays the held money to it.
    work_in(catalogue_for(rights_holder, "Found"), rights_holder, "U", isbn=ISBN_UNKNOWN)
    cycle_create(caller=cs.staff_caller(operator), period="2026-Q4")
    cs.usage(licensee, licence, [("isbn", ISBN_A, 1000)], period="2026-Q4")
    q4 = cs.allocate(operator, "2026-Q4")
    release = SuspenseRelease.objects.get(item=held)
    assert release.kind == "to_work"
    statement = _statement(q4, rights_holder)
    # Q4: 92 days -> 92,000 pool, 82,800 to A; plus the 41,400 released to U.
    assert statement.earned_minor == 82_800 + 41_400
    lines = dict(statement.work_lines.values_list("work__work_ref", "amount_minor"))
    assert lines == {"A": 82_800, "U": 41_400}
    q4 = cs.approve(approver, q4)
    release.refresh_from_db()
    assert release.cycle == q4
    assert not suspense_outstanding().filter(pk=held.pk).exists()
    assert all(total == 0 for total in ledger_trial_balance().values())
    from royalties.models import LedgerAccount
    from royalties.services.ledger import ledger_account_balance

    unmatched = LedgerAccount.objects.get(code="suspense:unmatched:EUR")
    assert ledger_account_balance(account=unmatched) == 0
    assert q3.status == CycleStatus.APPROVED


def test_next_cycle_waits_for_the_previous_to_be_approved(scenario, operator):
    cs.allocate(operator, "2026-Q3")
    q4 = cycle_create(caller=cs.staff_caller(operator), period="2026-Q4")
    with pytest.raises(ConflictError) as refused:
        cycle_allocate(caller=cs.staff_caller(operator), cycle=q4)
    assert refused.value.code == "previous_cycle_open"


def test_a_failing_engine_fails_the_cycle_and_writes_nothing(scenario, operator, monkeypatch):
    from royalties.engine.allocate import AllocationError

    def broken(*args, **kwargs):
        raise AllocationError("the parts do not add up")

    monkeypatch.setattr(cycle_services, "allocate", broken)
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.FAILED
    assert "do not add up" in cycle.message
    assert not cycle.allocations.exists()
    assert not Statement.objects.exists()
    monkeypatch.undo()
    cycle = cs.allocate(operator)  # allocating again is the retry
    assert cycle.status == CycleStatus.ALLOCATED


def test_run_cycle_command_allocates_approves_and_prints_the_identity(
    scenario, operator, approver, capsys
):
    call_command("run_cycle", "--period", "2026-Q3", "--allocate-as", operator.user.email)
    out = capsys.readouterr().out
    assert "identity:  in = fee + holders + suspense -> True" in out
    assert "92,000" in out
    call_command("run_cycle", "--period", "2026-Q3", "--approve-as", approver.user.email)
    assert "approved" in capsys.readouterr().out
    from royalties.models import Cycle

    assert Cycle.objects.get(period="2026-Q3").status == CycleStatus.APPROVED


def test_cycle_approve_needs_an_allocated_cycle(scenario, operator, approver):
    cycle = cycle_create(caller=cs.staff_caller(operator), period="2026-Q3")
    with pytest.raises(ConflictError):
        cycle_approve(caller=cs.staff_caller(approver), cycle=cycle)
