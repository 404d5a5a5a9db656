"""The payout pages (Django test client, local Stripe): a holder's payout account, settings,
history and CSV; the staff payout run monitor, its progress JSON, start, resume, reconcile and
CSV. Holders see only their own payouts; the monitor is a 404 for anyone not on the staff; only
approvers see and may use the start and resume buttons."""

from __future__ import annotations

import csv
import io

import pytest

from royalties.models import (
    CycleStatus,
    PayoutAccount,
    PayoutReconciliation,
    PayoutRun,
    PayoutRunStatus,
)
from royalties.services import payouts
from tests.royalties import payouts_support as ps

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle(operator, approver, licensee, rights_holder, co_holder):
    approved, _ = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)
    return approved


@pytest.fixture
def paid(payout_stripe, cycle, approver, rights_holder, django_capture_on_commit_callbacks):
    """The rights holder connected, the co-holder not (held); paid from the monitor page."""
    ps.connect(rights_holder, payout_stripe)
    with django_capture_on_commit_callbacks(execute=True):
        response = approver.client().post(f"/cycles/{cycle.pk}/payouts/start/")
    assert response.status_code == 302
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID
    return cycle


def _text(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode("utf-8-sig")


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_text(response))))


# --- holders ----------------------------------------------------------------------------------


def test_a_holder_sees_only_its_own_payout_history(paid, rights_holder, co_holder, outsider):
    mine, theirs = ps.payout_of(rights_holder, paid), ps.payout_of(co_holder, paid)
    page = _text(rights_holder.client().get("/payouts/"))
    assert f'data-payout="{mine.pk}" data-status="paid"' in page
    assert mine.transfer_id in page and "786.60 EUR" in page
    assert f'data-payout="{theirs.pk}"' not in page and "24.84 EUR" not in page
    assert 'data-state="active"' in page

    # The co-holder's payout is held, and the page says why.
    page = _text(co_holder.client().get("/payouts/"))
    assert f'data-payout="{theirs.pk}" data-status="held"' in page
    assert "No payout account is connected yet" in page
    assert 'data-state="not_connected"' in page and "Connect with Stripe" in page
    assert f'data-payout="{mine.pk}"' not in page

    page = _text(outsider.client().get("/payouts/"))
    assert "No payouts yet" in page and "786.60" not in page and "24.84" not in page


def test_the_payout_history_exports_as_csv_with_formula_cells_defused(paid, rights_holder):
    organisation = rights_holder.organisation
    organisation.name = '=HYPERLINK("http://evil.example")'
    organisation.save(update_fields=["name"])
    rows = _csv(rights_holder.client().get("/payouts/payouts.csv"))
    assert len(rows) == 1
    mine = ps.payout_of(rights_holder, paid)
    assert int(rows[0]["payout"]) == mine.pk
    assert int(rows[0]["amount_minor"]) == ps.RIGHTS_HOLDER_OWED
    assert rows[0]["status"] == "paid" and rows[0]["transfer_id"] == mine.transfer_id
    assert rows[0]["holder_name"].startswith("'=")


def test_payouts_page_is_for_rights_holders_only(licensee, operator):
    assert licensee.client().get("/payouts/").status_code == 404
    assert licensee.client().post("/payouts/connect/").status_code == 404
    assert operator.client().get("/payouts/").status_code == 404


def test_a_holder_connects_through_stripe_and_the_return_page_syncs_the_account(
    payout_stripe, rights_holder
):
    client = rights_holder.client()
    assert client.get("/payouts/connect/").status_code == 405
    started = client.post("/payouts/connect/")
    assert started.status_code == 302
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert f"/connect/onboard/{account.stripe_account_id}?link=" in started["Location"]
    page = _text(client.get("/payouts/"))
    assert 'data-state="onboarding"' in page and "Continue onboarding" in page

    # Returning before finishing changes nothing and says what is missing.
    back = client.get("/payouts/return/", follow=True)
    assert "Finish connecting" in _text(back)
    # The refresh URL (an expired link) makes a fresh one.
    fresh = client.get("/payouts/refresh/")
    assert fresh.status_code == 302 and fresh["Location"] != started["Location"]
    assert f"/connect/onboard/{account.stripe_account_id}?link=" in fresh["Location"]

    payout_stripe.account_complete_onboarding(account.stripe_account_id)
    back = client.get("/payouts/return/", follow=True)
    assert "Your payout account is active" in _text(back)
    account.refresh_from_db()
    assert account.can_receive and account.state == "active"
    assert 'data-state="active"' in _text(back) and 'id="connect"' not in _text(back)


def test_a_restricted_account_shows_the_reason_and_what_stripe_needs(payout_stripe, rights_holder):
    account = ps.connect(rights_holder, payout_stripe)
    payout_stripe.account_restrict(
        account.stripe_account_id,
        disabled_reason="requirements.past_due",
        currently_due=["individual.verification.document"],
    )
    page = _text(rights_holder.client().get("/payouts/return/", follow=True))
    assert 'data-state="restricted"' in page
    assert "requirements.past_due" in page and "individual.verification.document" in page
    assert "Continue onboarding" in page


def test_a_holder_sets_its_threshold_in_major_units(payout_stripe, rights_holder):
    ps.connect(rights_holder, payout_stripe)
    client = rights_holder.client()
    saved = client.post("/payouts/settings/", {"threshold": "25.50", "payout_currency": "EUR"})
    assert saved.status_code == 302
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert (account.threshold_minor, account.payout_currency) == (2_550, "EUR")
    assert 'value="25.50"' in _text(client.get("/payouts/"))
    for bad in ("12.345", "-1", "lots", ""):
        refused = client.post("/payouts/settings/", {"threshold": bad, "payout_currency": "EUR"})
        assert refused.status_code == 400, bad
    refused = client.post("/payouts/settings/", {"threshold": "1", "payout_currency": "XYZ"})
    assert refused.status_code == 400 and "One of EUR" in _text(refused)
    account.refresh_from_db()
    assert (account.threshold_minor, account.payout_currency) == (2_550, "EUR")


# --- staff: the monitor -----------------------------------------------------------------------


def test_the_monitor_shows_counts_amounts_holds_and_exports_the_run(paid, operator, co_holder):
    client = operator.client()
    page = _text(client.get(f"/cycles/{paid.pk}/payouts/"))
    assert 'data-status="done"' in page and 'data-testid="run-percent">100%' in page
    assert 'data-testid="count-paid">1<' in page and 'data-testid="count-held">1<' in page
    assert 'data-testid="amount-paid">786.60 EUR<' in page
    assert 'data-testid="amount-held">24.84 EUR<' in page
    held = ps.payout_of(co_holder, paid)
    assert f'<tr data-payout="{held.pk}">' in page and "No payout account is connected" in page
    assert 'id="chart-run"' in page and "payout-run-chart" in page
    assert 'id="start-run"' not in page and 'id="resume-run"' not in page
    assert 'id="reconcile"' in page

    progress = client.get(f"/cycles/{paid.pk}/payouts/progress/").json()
    assert (progress["status"], progress["percent_settled"], progress["cycle_status"]) == (
        "done",
        100,
        "paid",
    )
    assert progress["counts"]["paid"] == {"count": 1, "amount_minor": ps.RIGHTS_HOLDER_OWED}

    rows = _csv(client.get(f"/cycles/{paid.pk}/payouts/payouts.csv"))
    assert sorted(int(r["amount_minor"]) for r in rows) == [
        ps.CO_HOLDER_OWED,
        ps.RIGHTS_HOLDER_OWED,
    ]
    assert {r["status"] for r in rows} == {"paid", "held"}


def test_reconciling_from_the_monitor_shows_clean_and_closes_the_cycle(paid, operator):
    client = operator.client()
    page = _text(client.post(f"/cycles/{paid.pk}/payouts/reconcile/", follow=True))
    assert 'data-clean="true"' in page and "Clean" in page
    paid.refresh_from_db()
    assert paid.status == CycleStatus.CLOSED


def test_the_monitor_lists_each_mismatch_of_a_reconciliation(paid, operator):
    PayoutReconciliation.objects.create(
        cycle=paid,
        clean=False,
        checked={"payouts": 2},
        mismatches=[
            {"kind": "transfer_unknown", "transfer": "tr_dup", "payout": "7", "stripe_amount": 500},
            {"kind": "unsettled", "payout": 8, "status": "sent"},
        ],
    )
    page = _text(operator.client().get(f"/cycles/{paid.pk}/payouts/"))
    assert 'data-clean="false"' in page and "2 mismatches" in page
    assert '<tr data-kind="transfer_unknown">' in page and "tr_dup" in page
    assert '<tr data-kind="unsettled">' in page and "status: sent" in page


def test_only_an_approver_sees_and_uses_the_start_button(cycle, operator, approver):
    assert 'id="start-run"' not in _text(operator.client().get(f"/cycles/{cycle.pk}/payouts/"))
    refused = operator.client().post(f"/cycles/{cycle.pk}/payouts/start/", follow=True)
    assert "approver group" in _text(refused)
    assert not PayoutRun.objects.exists()
    assert 'id="start-run"' in _text(approver.client().get(f"/cycles/{cycle.pk}/payouts/"))
    detail = _text(approver.client().get(f"/cycles/{cycle.pk}/"))
    assert f'href="/cycles/{cycle.pk}/payouts/"' in detail


def test_only_an_approver_sees_and_uses_the_resume_button(
    payout_stripe, cycle, operator, approver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        approver.client().post(f"/cycles/{cycle.pk}/payouts/start/")
    run = PayoutRun.objects.get(cycle=cycle)
    payouts.payout_run_pause(run_id=run.pk, reason="Stripe: insufficient available balance.")
    page = _text(operator.client().get(f"/cycles/{cycle.pk}/payouts/"))
    assert 'id="pause-banner"' in page and "insufficient available balance" in page
    assert 'id="resume-run"' not in page
    operator.client().post(f"/cycles/{cycle.pk}/payouts/resume/")
    run.refresh_from_db()
    assert run.status == PayoutRunStatus.PAUSED
    page = _text(approver.client().get(f"/cycles/{cycle.pk}/payouts/"))
    assert 'id="resume-run"' in page
    with django_capture_on_commit_callbacks(execute=True):
        approver.client().post(f"/cycles/{cycle.pk}/payouts/resume/")
    run.refresh_from_db()
    assert run.status == PayoutRunStatus.DONE  # nobody connected: both held, the run is done


def test_the_monitor_is_a_404_for_anyone_not_on_the_staff(paid, rights_holder, licensee):
    for persona in (rights_holder, licensee):
        client = persona.client()
        for path in ("", "progress/", "payouts.csv"):
            assert client.get(f"/cycles/{paid.pk}/payouts/{path}").status_code == 404
        for action in ("start", "resume", "reconcile"):
            assert client.post(f"/cycles/{paid.pk}/payouts/{action}/").status_code == 404
    paid.refresh_from_db()
    assert paid.status == CycleStatus.PAID
