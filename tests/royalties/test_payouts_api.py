"""The payouts API against the local Stripe server: a holder's payout account (connect, read,
settings), payouts (a holder sees its own, staff all), payout runs and reconciliations (staff),
and who may pay, resume and reconcile. Every other organisation's object is a 404. The cycle is
the hand-computed one of test_cycles (rights holder 78,660; co-holder 2,484; EUR minor units).
"""

from __future__ import annotations

import pytest

from royalties.models import CycleStatus, PayoutAccount, PayoutRun, PayoutRunStatus
from royalties.services import payouts
from tests.royalties import payouts_support as ps

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycle(operator, approver, licensee, rights_holder, co_holder):
    approved, _ = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)
    return approved


@pytest.fixture
def paid(
    payout_stripe, cycle, approver, rights_holder, co_holder, django_capture_on_commit_callbacks
):
    """Both holders connected and the cycle paid through the API by an approver."""
    ps.connect(rights_holder, payout_stripe)
    ps.connect(co_holder, payout_stripe)
    with django_capture_on_commit_callbacks(execute=True):
        response = approver.client().post(f"/api/v1/cycles/{cycle.pk}/pay/")
    assert response.status_code == 200, response.content
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID
    return cycle


def _error(response) -> str:
    return response.json()["error"]["code"]


def test_a_holder_connects_reads_and_changes_its_payout_account(
    payout_stripe, rights_holder, deliver
):
    api = rights_holder.client()
    missing = api.get("/api/v1/payout-account/")
    assert missing.status_code == 404 and _error(missing) == "payout_account_missing"

    linked = api.post(
        "/api/v1/payout-account/connect/",
        {
            "return_url": "https://holder.example/back",
            "refresh_url": "https://holder.example/again",
        },
        format="json",
    )
    assert linked.status_code == 200, linked.content
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert f"/connect/onboard/{account.stripe_account_id}?link=" in linked.json()["url"]
    body = api.get("/api/v1/payout-account/").json()
    assert body["state"] == "onboarding" and body["can_receive"] is False
    assert "Finish connecting" in body["why_not"]
    assert body["stripe_account_id"] == account.stripe_account_id

    # Without URLs the defaults are Blanket's own return and refresh pages.
    assert api.post("/api/v1/payout-account/connect/", {}, format="json").status_code == 200
    assert PayoutAccount.objects.count() == 1

    payout_stripe.account_complete_onboarding(account.stripe_account_id)
    assert set(deliver()) == {200}
    body = api.get("/api/v1/payout-account/").json()
    assert body["state"] == "active" and body["can_receive"] is True and body["why_not"] == ""

    changed = api.patch(
        "/api/v1/payout-account/",
        {"threshold_minor": 2_500, "payout_currency": "GBP"},
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert (changed.json()["threshold_minor"], changed.json()["payout_currency"]) == (2_500, "GBP")
    only_one = api.patch("/api/v1/payout-account/", {"threshold_minor": 0}, format="json")
    assert only_one.json()["payout_currency"] == "GBP" and only_one.json()["threshold_minor"] == 0
    for bad in ({"threshold_minor": -1}, {"payout_currency": "XYZ"}, {"threshold_minor": "ten"}):
        refused = api.patch("/api/v1/payout-account/", bad, format="json")
        assert refused.status_code == 400, bad
        assert _error(refused) == "invalid" and set(refused.json()["error"]["details"]) == set(bad)
    account.refresh_from_db()
    assert (account.threshold_minor, account.payout_currency) == (0, "GBP")


def test_a_connect_url_must_be_a_web_address(payout_stripe, rights_holder):
    refused = rights_holder.client().post(
        "/api/v1/payout-account/connect/", {"return_url": "javascript:alert(1)"}, format="json"
    )
    assert refused.status_code == 400 and "return_url" in refused.json()["error"]["details"]
    assert not PayoutAccount.objects.exists()


def test_a_licensee_cannot_connect_a_payout_account(payout_stripe, licensee):
    refused = licensee.client().post("/api/v1/payout-account/connect/", {}, format="json")
    assert refused.status_code == 403 and _error(refused) == "not_a_rights_holder"
    assert licensee.client().get("/api/v1/payout-account/").status_code == 404
    assert not PayoutAccount.objects.exists()


def test_a_member_without_management_rights_cannot_connect_or_change_settings(
    payout_stripe, rights_holder
):
    from accounts.models import Role
    from accounts.services import membership_add
    from tests.factories import UserFactory

    ps.connect(rights_holder, payout_stripe)
    member = UserFactory()
    membership_add(organisation=rights_holder.organisation, user=member, role=Role.MEMBER)
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_login(member)
    assert api.get("/api/v1/payout-account/").status_code == 200  # may read
    assert api.post("/api/v1/payout-account/connect/", {}, format="json").status_code == 403
    refused = api.patch("/api/v1/payout-account/", {"threshold_minor": 9}, format="json")
    assert refused.status_code == 403
    assert PayoutAccount.objects.get(organisation=rights_holder.organisation).threshold_minor == 0


def test_payouts_and_payout_settings_are_hidden_from_other_organisations(
    paid, rights_holder, co_holder, outsider, licensee, api_client_for
):
    mine = ps.payout_of(rights_holder, paid)
    theirs = ps.payout_of(co_holder, paid)
    # The holder sees its own payout and only that.
    own = rights_holder.client().get("/api/v1/payouts/").json()
    assert [p["id"] for p in own["results"]] == [mine.pk]
    detail = rights_holder.client().get(f"/api/v1/payouts/{mine.pk}/").json()
    assert (detail["amount_minor"], detail["status"]) == (ps.RIGHTS_HOLDER_OWED, "paid")
    assert detail["transfer_id"].startswith("tr_")
    # Another holder of the same cycle, an outsider and a licensee: 404 on the payout, by
    # session and by API key; their lists hold nothing of it.
    for api in (
        co_holder.client(),
        outsider.client(),
        licensee.client(),
        api_client_for(outsider.organisation),
    ):
        assert api.get(f"/api/v1/payouts/{mine.pk}/").status_code == 404
        listed = [p["id"] for p in api.get("/api/v1/payouts/").json()["results"]]
        assert mine.pk not in listed
    assert [p["id"] for p in co_holder.client().get("/api/v1/payouts/").json()["results"]] == [
        theirs.pk
    ]
    # Payout settings: the outsider has no account of its own, and cannot reach the holder's.
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    for api in (outsider.client(), api_client_for(outsider.organisation)):
        assert api.get("/api/v1/payout-account/").status_code == 404
        changed = api.patch("/api/v1/payout-account/", {"threshold_minor": 1}, format="json")
        assert changed.status_code == 404
    # The co-holder changes its own settings, never the holder's.
    co_api = co_holder.client()
    assert co_api.get("/api/v1/payout-account/").json()["stripe_account_id"] != (
        account.stripe_account_id
    )
    co_api.patch("/api/v1/payout-account/", {"threshold_minor": 77}, format="json")
    account.refresh_from_db()
    assert account.threshold_minor == 0
    assert account.stripe_account_id not in str(co_api.get("/api/v1/payout-account/").content)


def test_staff_see_every_payout_and_filter_by_cycle_and_status(paid, operator, rights_holder):
    api = operator.client()
    everything = api.get("/api/v1/payouts/").json()
    assert everything["count"] == 2
    assert sum(p["amount_minor"] for p in everything["results"]) == (
        ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED
    )
    assert api.get(f"/api/v1/payouts/?cycle={paid.pk}&status=paid").json()["count"] == 2
    assert api.get("/api/v1/payouts/?status=held").json()["count"] == 0
    unknown = api.get(f"/api/v1/payouts/?cycle={paid.pk + 1000}")
    assert unknown.status_code == 400 and "cycle" in unknown.json()["error"]["details"]
    mine = ps.payout_of(rights_holder, paid)
    assert api.get(f"/api/v1/payouts/{mine.pk}/").json()["holder_code"] == (
        rights_holder.organisation.code
    )


def test_staff_follow_a_run_and_reconcile_it(paid, operator, approver, rights_holder):
    run = PayoutRun.objects.get(cycle=paid)
    api = operator.client()
    listed = api.get("/api/v1/payout-runs/").json()
    assert [r["id"] for r in listed["results"]] == [run.pk]
    body = api.get(f"/api/v1/payout-runs/{run.pk}/").json()
    assert (body["cycle"], body["status"], body["pause_reason"]) == (paid.pk, "done", "")
    assert body["counts"]["paid"] == {
        "count": 2,
        "amount_minor": ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED,
    }
    assert body["counts"]["held"] == {"count": 0, "amount_minor": 0}
    assert (body["total_count"], body["percent_settled"]) == (2, 100)
    assert body["started_by"] == approver.user.email

    assert api.get(f"/api/v1/reconciliations/?cycle={paid.pk}").json()["count"] == 0
    result = api.post(f"/api/v1/cycles/{paid.pk}/reconcile/")
    assert result.status_code == 201, result.content
    assert result.json()["clean"] is True and result.json()["mismatches"] == []
    assert result.json()["cycle_status"] == "closed"
    assert result.json()["checked"]["sent_minor"] == ps.RIGHTS_HOLDER_OWED + ps.CO_HOLDER_OWED
    listed = api.get(f"/api/v1/reconciliations/?cycle={paid.pk}").json()
    assert [r["id"] for r in listed["results"]] == [result.json()["id"]]


def test_runs_and_reconciliations_are_404_for_holders(
    paid, rights_holder, outsider, licensee, api_client_for
):
    run = PayoutRun.objects.get(cycle=paid)
    for api in (
        rights_holder.client(),
        outsider.client(),
        licensee.client(),
        api_client_for(rights_holder.organisation),
    ):
        assert api.get("/api/v1/payout-runs/").status_code == 404
        assert api.get(f"/api/v1/payout-runs/{run.pk}/").status_code == 404
        assert api.post(f"/api/v1/payout-runs/{run.pk}/resume/").status_code == 404
        assert api.get(f"/api/v1/reconciliations/?cycle={paid.pk}").status_code == 404
        assert api.post(f"/api/v1/cycles/{paid.pk}/reconcile/").status_code == 404
    paid.refresh_from_db()
    assert paid.status == CycleStatus.PAID  # nobody reconciled it


def test_only_an_approver_pays_and_resumes(
    payout_stripe, cycle, operator, approver, rights_holder, django_capture_on_commit_callbacks
):
    ps.connect(rights_holder, payout_stripe)
    refused = operator.client().post(f"/api/v1/cycles/{cycle.pk}/pay/")
    assert refused.status_code == 403 and _error(refused) == "forbidden_role"
    assert rights_holder.client().post(f"/api/v1/cycles/{cycle.pk}/pay/").status_code == 404
    assert not PayoutRun.objects.exists()

    # Pay with the tasks held, pause the run as an insufficient balance would.
    with django_capture_on_commit_callbacks(execute=False):
        paying = approver.client().post(f"/api/v1/cycles/{cycle.pk}/pay/")
    assert paying.status_code == 200 and paying.json()["status"] == "paying"
    run = PayoutRun.objects.get(cycle=cycle)
    payouts.payout_run_pause(run_id=run.pk, reason="Stripe: insufficient available balance.")
    body = operator.client().get(f"/api/v1/payout-runs/{run.pk}/").json()
    assert body["status"] == "paused" and "insufficient" in body["pause_reason"]
    assert body["counts"]["pending"]["count"] == 2 and body["percent_settled"] == 0

    refused = operator.client().post(f"/api/v1/payout-runs/{run.pk}/resume/")
    assert refused.status_code == 403 and _error(refused) == "forbidden_role"
    run.refresh_from_db()
    assert run.status == PayoutRunStatus.PAUSED

    with django_capture_on_commit_callbacks(execute=True):
        resumed = approver.client().post(f"/api/v1/payout-runs/{run.pk}/resume/")
    assert resumed.status_code == 200, resumed.content
    body = approver.client().get(f"/api/v1/payout-runs/{run.pk}/").json()
    # The rights holder is paid; the co-holder, with no account, is held: the run is done.
    assert body["status"] == "done" and body["percent_settled"] == 100
    assert body["counts"]["paid"] == {"count": 1, "amount_minor": ps.RIGHTS_HOLDER_OWED}
    assert body["counts"]["held"] == {"count": 1, "amount_minor": ps.CO_HOLDER_OWED}
    again = approver.client().post(f"/api/v1/payout-runs/{run.pk}/resume/")
    assert again.status_code == 409 and _error(again) == "payout_run_not_paused"
