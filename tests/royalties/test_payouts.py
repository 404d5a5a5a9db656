"""Payouts through the real Stripe SDK against the local Stripe server: connecting accounts,
exactly-once transfers, holds, pauses, failures and their returns, webhooks replayed and
reordered, reconciliation. The cycle is the hand-computed one of test_cycles (rights holder
78,660; co-holder 2,484; EUR minor units)."""

from __future__ import annotations

import pytest
from django.core import mail

from config.errors import ConflictError, PermissionError_
from royalties.models import (
    CycleStatus,
    JournalEntry,
    PayoutAccount,
    PayoutReturn,
    PayoutRunStatus,
    PayoutStatus,
    Statement,
)
from royalties.services import payouts, reconciliation
from royalties.services.ledger import ledger_trial_balance
from tests.royalties import cycles_support as cs
from tests.royalties import payouts_support as ps

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle(operator, approver, licensee, rights_holder, co_holder):
    approved, _ = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)
    return approved


def _balance(code: str) -> int:
    from royalties.models import LedgerAccount
    from royalties.services.ledger import ledger_account_balance

    account = LedgerAccount.objects.filter(code=code).first()
    return ledger_account_balance(account=account) if account else 0


def _pay(approver, cycle, capture):
    with capture(execute=True):
        return payouts.payout_run_start(caller=cs.staff_caller(approver), cycle=cycle)


def _sweep(capture) -> dict:
    from royalties.tasks_payouts import payouts_sweep_task

    with capture(execute=True):
        return payouts_sweep_task()


def test_a_connected_account_follows_stripe_onboarding(payout_stripe, rights_holder, deliver):
    url = payouts.payout_account_connect(
        caller=ps.holder_caller(rights_holder),
        return_url="http://testserver/payouts/return/",
        refresh_url="http://testserver/payouts/refresh/",
    )
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert f"/connect/onboard/{account.stripe_account_id}" in url
    assert account.stripe_account_id.startswith("acct_")
    assert not account.can_receive and account.state == "onboarding"
    assert "Finish connecting" in account.why_not
    # Connecting again reuses the account (same idempotency key, same row).
    payouts.payout_account_connect(
        caller=ps.holder_caller(rights_holder), return_url="http://x/", refresh_url="http://x/"
    )
    assert PayoutAccount.objects.count() == 1
    payout_stripe.account_complete_onboarding(account.stripe_account_id)
    codes = deliver()
    assert codes and set(codes) == {200}
    account.refresh_from_db()
    assert account.can_receive and account.details_submitted and account.state == "active"
    assert account.requirements_due == []


def test_only_rights_holders_connect_payout_accounts(payout_stripe, licensee):
    with pytest.raises(PermissionError_):
        payouts.payout_account_connect(
            caller=ps.holder_caller(licensee), return_url="http://x/", refresh_url="http://x/"
        )


def test_paying_a_cycle_transfers_each_payable_statement_once_and_books_it(
    payout_stripe,
    cycle,
    approver,
    operator,
    rights_holder,
    co_holder,
    stripe_client,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    ps.connect(co_holder, payout_stripe)
    with pytest.raises(PermissionError_):
        payouts.payout_run_start(caller=cs.staff_caller(operator), cycle=cycle)
    run = _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine, theirs = ps.payout_of(rights_holder, cycle), ps.payout_of(co_holder, cycle)
    assert (mine.amount_minor, theirs.amount_minor) == (ps.RIGHTS_HOLDER_OWED, ps.CO_HOLDER_OWED)
    assert mine.status == theirs.status == PayoutStatus.PAID
    cycle.refresh_from_db()
    run.refresh_from_db()
    assert cycle.status == CycleStatus.PAID and run.status == PayoutRunStatus.DONE
    assert ps.transfers_by_payout(stripe_client) == {str(mine.pk): 1, str(theirs.pk): 1}
    remote = stripe_client.v1.transfers.retrieve(mine.transfer_id)
    assert remote.amount == ps.RIGHTS_HOLDER_OWED and remote.currency == "eur"
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert remote.destination == account.stripe_account_id
    # Ledger: balanced; what was payable is now out of Stripe cash.
    assert set(ledger_trial_balance().values()) == {0}
    code = rights_holder.organisation.code
    assert _balance(f"holder_payable:{code}:EUR") == 0
    assert _balance("cash:stripe:EUR") == -(ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED)
    with pytest.raises(ConflictError):
        payouts.payout_run_start(caller=cs.staff_caller(approver), cycle=cycle)
    # Reconciled clean, the cycle closes.
    result = reconciliation.reconcile_cycle(cycle_id=cycle.pk)
    assert result.clean, result.mismatches
    assert result.checked["stripe_transferred_minor"] == ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED


def test_a_restricted_account_is_held_without_a_stripe_call_then_paid_when_enabled(
    payout_stripe,
    cycle,
    approver,
    rights_holder,
    co_holder,
    stripe_client,
    deliver,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    restricted = ps.connect(co_holder, payout_stripe)
    payout_stripe.account_restrict(restricted.stripe_account_id)
    deliver()
    restricted.refresh_from_db()
    assert not restricted.can_receive
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    held = ps.payout_of(co_holder, cycle)
    assert held.status == PayoutStatus.HELD
    assert "restricted" in held.held_reason
    assert held.attempts == 1 and held.transfer_id == ""
    calls = payout_stripe.requests(path="/v1/transfers", method="POST")
    assert len(calls) == 1  # only the rights holder's
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID  # every payout settled or held
    # Held money stays payable to the holder.
    assert _balance(f"holder_payable:{co_holder.organisation.code}:EUR") == -ps.CO_HOLDER_OWED
    # The holder finishes what Stripe asks; account.updated releases the held payout.
    payout_stripe.account_complete_onboarding(restricted.stripe_account_id)
    with django_capture_on_commit_callbacks(execute=True):
        deliver()
    held.refresh_from_db()
    assert held.status == PayoutStatus.PAID
    assert ps.transfers_by_payout(stripe_client)[str(held.pk)] == 1
    assert reconciliation.reconcile_cycle(cycle_id=cycle.pk).clean
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED


def test_a_payout_released_after_the_cycle_closed_reopens_it_until_reconciled(
    payout_stripe,
    cycle,
    approver,
    rights_holder,
    co_holder,
    stripe_client,
    deliver,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    assert reconciliation.reconcile_cycle(cycle_id=cycle.pk).clean
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED  # the co-holder's payout is held
    with django_capture_on_commit_callbacks(execute=True):
        ps.connect(co_holder, payout_stripe)  # its account can receive: the held one goes
    assert ps.payout_of(co_holder, cycle).status == PayoutStatus.PAID
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID  # reopened, not silently closed
    assert reconciliation.payouts_reconcile_due() == 1
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED
    latest = cycle.reconciliations.first()
    assert latest.clean and latest.checked["transfers"] == 2


def test_a_holder_without_an_account_is_held_and_told_why(
    payout_stripe, cycle, approver, rights_holder, co_holder, django_capture_on_commit_callbacks
):
    ps.connect(rights_holder, payout_stripe)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    held = ps.payout_of(co_holder, cycle)
    assert held.status == PayoutStatus.HELD
    assert "connect one" in held.held_reason
    assert payout_stripe.requests(path="/v1/transfers", method="POST")[0]["status"] == 200
    assert len(payout_stripe.requests(path="/v1/transfers", method="POST")) == 1


def test_insufficient_platform_balance_pauses_the_run_alerts_and_resumes(
    stripe_control,
    settings,
    cycle,
    approver,
    rights_holder,
    co_holder,
    stripe_client,
    django_capture_on_commit_callbacks,
):
    settings.PAYOUT_BACKOFF_SECONDS = 0
    settings.PAYOUT_STUCK_SECONDS = 0
    settings.ADMINS = [("Treasury", "treasury@society.example")]
    stripe_control.balance_fund(10_000, "eur")  # covers the co-holder only
    ps.connect(rights_holder, stripe_control)
    ps.connect(co_holder, stripe_control)
    run = _pay(approver, cycle, django_capture_on_commit_callbacks)
    run.refresh_from_db()
    mine = ps.payout_of(rights_holder, cycle)
    assert run.status == PayoutRunStatus.PAUSED
    assert "insufficient available balance" in run.pause_reason
    assert mine.status == PayoutStatus.PENDING and mine.generation == 1
    assert any("paused" in m.subject for m in mail.outbox)
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAYING
    # Still short: the sweeper keeps it paused.
    _sweep(django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert run.status == PayoutRunStatus.PAUSED
    stripe_control.balance_fund(100_000, "eur")
    _sweep(django_capture_on_commit_callbacks)
    run.refresh_from_db()
    mine.refresh_from_db()
    assert run.status == PayoutRunStatus.DONE and mine.status == PayoutStatus.PAID
    assert set(ps.transfers_by_payout(stripe_client).values()) == {1}
    assert len(ps.transfers_by_payout(stripe_client)) == 2
    assert reconciliation.reconcile_cycle(cycle_id=cycle.pk).clean


@pytest.mark.parametrize(
    ("failure", "made"),
    [
        ({"status": 500, "after_effect": False}, False),
        ({"status": 500, "after_effect": True}, True),
        ({"status": "timeout", "after_effect": False, "hang_seconds": 3}, False),
        ({"status": "timeout", "after_effect": True, "hang_seconds": 3}, True),
    ],
    ids=["500-nothing-made", "500-answer-lost", "timeout-never-arrived", "timeout-answer-lost"],
)
def test_a_lost_or_failed_answer_is_looked_up_never_sent_twice(
    payout_stripe,
    settings,
    cycle,
    approver,
    rights_holder,
    stripe_client,
    failure,
    made,
    django_capture_on_commit_callbacks,
):
    settings.STRIPE_TIMEOUT_SECONDS = 1
    ps.connect(rights_holder, payout_stripe)
    # Every try of the SDK (1 + 2 retries) fails the same way.
    payout_stripe.failure_add("/v1/transfers", method="POST", count=3, **failure)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine = ps.payout_of(rights_holder, cycle)
    assert mine.status == PayoutStatus.SUBMITTING, mine.last_error
    assert mine.last_error
    assert ps.transfers_by_payout(stripe_client).get(str(mine.pk), 0) == (1 if made else 0)
    payout_stripe.failures_clear()
    _sweep(django_capture_on_commit_callbacks)  # looks up, then (if none) a new generation
    _sweep(django_capture_on_commit_callbacks)
    mine.refresh_from_db()
    assert mine.status == PayoutStatus.PAID
    assert mine.generation == (0 if made else 1)
    assert ps.transfers_by_payout(stripe_client)[str(mine.pk)] == 1
    assert ps.executed_transfer_keys(payout_stripe)[str(mine.pk)] == 1
    assert JournalEntry.objects.filter(idempotency_key=f"payout:{mine.pk}:sent").count() == 1


def test_a_refused_transfer_fails_and_returns_the_money_to_the_holder_balance(
    payout_stripe,
    cycle,
    approver,
    rights_holder,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    payout_stripe.failure_add(
        "/v1/transfers",
        method="POST",
        status=400,
        error={"type": "invalid_request_error", "code": "account_invalid", "message": "Nope."},
    )
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine = ps.payout_of(rights_holder, cycle)
    assert mine.status == PayoutStatus.FAILED
    code = rights_holder.organisation.code
    assert _balance(f"holder_payable:{code}:EUR") == 0
    assert _balance(f"holder:{code}:EUR") == -ps.RIGHTS_HOLDER_OWED
    assert PayoutReturn.objects.get(payout=mine).amount_minor == ps.RIGHTS_HOLDER_OWED


def test_a_reversed_transfer_restores_the_balance_and_the_next_cycle_brings_it_forward(
    payout_stripe,
    cycle,
    approver,
    operator,
    licensee,
    rights_holder,
    co_holder,
    stripe_client,
    deliver,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    ps.connect(co_holder, payout_stripe)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    deliver()  # transfer.created etc.: nothing changes
    mine = ps.payout_of(rights_holder, cycle)
    stripe_client.v1.transfers.reversals.create(mine.transfer_id, {"amount": 10_000})
    with django_capture_on_commit_callbacks(execute=True):
        deliver()
    mine.refresh_from_db()
    assert mine.status == PayoutStatus.PAID and mine.amount_reversed_minor == 10_000
    code = rights_holder.organisation.code
    assert _balance(f"holder:{code}:EUR") == -10_000
    assert _balance("cash:stripe:EUR") == -(ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED - 10_000)
    assert set(ledger_trial_balance().values()) == {0}
    # Replayed and reordered deliveries of the same events change nothing.
    entries = JournalEntry.objects.count()
    stripe_client.v1.transfers.reversals.create(mine.transfer_id)  # the rest
    deliver(order="reverse", duplicate=True)
    mine.refresh_from_db()
    assert mine.status == PayoutStatus.REVERSED
    assert mine.amount_reversed_minor == ps.RIGHTS_HOLDER_OWED
    assert JournalEntry.objects.count() == entries + 1
    assert _balance(f"holder:{code}:EUR") == -ps.RIGHTS_HOLDER_OWED
    assert reconciliation.reconcile_cycle(cycle_id=cycle.pk).clean
    # The next cycle brings the reversed money forward.
    q4 = cs.allocate(operator, "2026-Q4")
    statement = Statement.objects.get(
        allocation=q4.current_allocation, holder=rights_holder.organisation
    )
    assert statement.brought_forward_minor == ps.RIGHTS_HOLDER_OWED
    cs.approve(approver, q4)
    assert set(PayoutReturn.objects.values_list("cycle", flat=True)) == {q4.pk}


def test_reconciliation_reports_a_transfer_the_ledger_does_not_know(
    payout_stripe,
    cycle,
    approver,
    rights_holder,
    co_holder,
    stripe_client,
    django_capture_on_commit_callbacks,
):
    ps.connect(rights_holder, payout_stripe)
    ps.connect(co_holder, payout_stripe)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine = ps.payout_of(rights_holder, cycle)
    stripe_client.v1.transfers.create(
        {
            "amount": 500,
            "currency": "eur",
            "destination": mine.destination,
            "metadata": {"cycle_id": str(cycle.pk), "payout_id": str(mine.pk)},
        }
    )
    result = reconciliation.reconcile_cycle(cycle_id=cycle.pk)
    assert not result.clean
    assert [m["kind"] for m in result.mismatches] == ["transfer_unknown"]
    assert result.mismatches[0]["stripe_amount"] == 500
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID  # not closed while it does not reconcile


def test_a_holder_threshold_above_the_society_minimum_carries_the_balance(
    payout_stripe, operator, approver, licensee, rights_holder, co_holder
):
    ps.connect(co_holder, payout_stripe)
    payouts.payout_account_settings_update(
        caller=ps.holder_caller(co_holder), threshold_minor=5_000, payout_currency="EUR"
    )
    cycle, _ = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)
    statement = Statement.objects.get(
        allocation=cycle.current_allocation, holder=co_holder.organisation
    )
    assert statement.payable_minor == 0
    assert statement.carried_forward_minor == ps.CO_HOLDER_OWED


def test_a_retry_after_the_idempotency_window_still_finds_the_transfer(
    payout_stripe,
    settings,
    cycle,
    approver,
    rights_holder,
    stripe_client,
    django_capture_on_commit_callbacks,
):
    """Stripe forgets keys after 24 hours: the look-up, not the key, prevents the duplicate."""
    ps.connect(rights_holder, payout_stripe)
    payout_stripe.failure_add(
        "/v1/transfers", method="POST", status=500, after_effect=True, count=3
    )
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine = ps.payout_of(rights_holder, cycle)
    assert mine.status == PayoutStatus.SUBMITTING
    payout_stripe.failures_clear()
    assert payout_stripe.idempotency_expire() >= 1  # a day later
    _sweep(django_capture_on_commit_callbacks)
    mine.refresh_from_db()
    assert mine.status == PayoutStatus.PAID
    assert ps.transfers_by_payout(stripe_client) == {str(mine.pk): 1}


def test_retries_are_bounded_then_the_payout_fails_and_the_money_returns(
    payout_stripe,
    settings,
    cycle,
    approver,
    rights_holder,
    stripe_client,
    django_capture_on_commit_callbacks,
):
    settings.PAYOUT_MAX_ATTEMPTS = 3
    ps.connect(rights_holder, payout_stripe)
    payout_stripe.failure_add("/v1/transfers", method="POST", status=500, count=1000)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    mine = ps.payout_of(rights_holder, cycle)
    for _ in range(10):
        _sweep(django_capture_on_commit_callbacks)
        mine.refresh_from_db()
        if mine.status == PayoutStatus.FAILED:
            break
    assert mine.status == PayoutStatus.FAILED
    assert mine.attempts == 3 and mine.generation == 2
    assert "No transfer after 3 attempts" in mine.last_error
    assert ps.transfers_by_payout(stripe_client) == {}
    assert PayoutReturn.objects.get(payout=mine).amount_minor == ps.RIGHTS_HOLDER_OWED
    assert set(ledger_trial_balance().values()) == {0}


def test_backoff_grows_and_is_capped():
    from datetime import timedelta

    from royalties.services.payouts import BACKOFF_CAP, _backoff

    steps = [_backoff(n) for n in range(1, 12)]
    assert steps == sorted(steps) and steps[0] == timedelta(seconds=30)
    assert steps[-1] == BACKOFF_CAP


def test_a_worker_stalled_past_the_stuck_age_leaves_its_payout_to_the_sweeper(
    payout_stripe,
    cycle,
    approver,
    rights_holder,
    stripe_client,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    """A worker claims the payout, then stalls before calling Stripe; meanwhile the sweeper
    takes the stale claim over, finds no transfer and another worker pays the next
    generation. When the stalled worker wakes it must not call Stripe under its old key."""
    from config import failpoints

    ps.connect(rights_holder, payout_stripe)
    mine = {}
    original = failpoints.hit

    def stall_then_take_over(name, key=None):
        if name == "payout.before_call" and not mine:
            mine["pk"] = key
            assert payouts.payout_resolve(payout_id=key) == PayoutStatus.PENDING
            assert payouts.payout_submit(payout_id=key) == PayoutStatus.PAID
        original(name, key)

    monkeypatch.setattr(failpoints, "hit", stall_then_take_over)
    _pay(approver, cycle, django_capture_on_commit_callbacks)
    payout = ps.payout_of(rights_holder, cycle)
    assert payout.pk == mine["pk"]
    assert payout.status == PayoutStatus.PAID and payout.generation == 1
    assert ps.transfers_by_payout(stripe_client)[str(payout.pk)] == 1
    assert ps.executed_transfer_keys(payout_stripe)[str(payout.pk)] == 1
