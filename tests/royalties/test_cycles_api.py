"""The cycles, policies and statements API: staff drive cycles, holders read only their own
published statements, and everyone else's objects are 404s."""

from __future__ import annotations

import pytest

from royalties.models import Cycle, CycleStatus, Statement
from tests.licensing.declarations_support import ISBN_A, ISBN_B
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs

pytestmark = pytest.mark.django_db


@pytest.fixture
def declared(operator, licensee, rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder, "Backlist")
    work_in(catalogue, rights_holder, "A", isbn=ISBN_A)
    work_in(
        catalogue_for(co_holder, "Songs"),
        co_holder,
        "B",
        isbn=ISBN_B,
    )
    cs.policy(operator, admin_fee_bp=1500)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(licensee, licence, [("isbn", ISBN_A, 700), ("isbn", ISBN_B, 300)])
    return licence


def _run(client, cycle_id, action, capture):
    with capture(execute=True):  # the Celery job runs when the request's transaction commits
        return client.post(f"/api/v1/cycles/{cycle_id}/{action}/")


def test_staff_drive_a_cycle_through_the_api(
    declared, operator, approver, django_capture_on_commit_callbacks
):
    staff = operator.client()
    created = staff.post("/api/v1/cycles/", {"period": "2026-Q3"}, format="json")
    assert created.status_code == 201, created.content
    cycle_id = created.json()["id"]
    response = _run(staff, cycle_id, "allocate", django_capture_on_commit_callbacks)
    assert response.status_code == 202
    body = staff.get(f"/api/v1/cycles/{cycle_id}/").json()
    assert body["status"] == "allocated", body["message"]
    totals = body["current_allocation"]["totals"]
    assert totals["in_minor"] == 92_000
    assert (
        totals["in_minor"]
        == totals["fee_minor"] + totals["holders_minor"] + totals["suspense_minor"]
    )
    refused = operator.client().post(f"/api/v1/cycles/{cycle_id}/approve/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden_role"
    approved = approver.client().post(f"/api/v1/cycles/{cycle_id}/approve/")
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == approver.user.email
    not_theirs = operator.client().post(f"/api/v1/cycles/{cycle_id}/pay/")
    assert not_theirs.status_code == 403
    assert not_theirs.json()["error"]["code"] == "forbidden_role"
    paying = approver.client().post(f"/api/v1/cycles/{cycle_id}/pay/")
    assert paying.status_code == 200, paying.content
    assert paying.json()["status"] == "paying"
    again = approver.client().post(f"/api/v1/cycles/{cycle_id}/pay/")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "cycle_not_payable"


def test_the_allocator_cannot_approve(declared, approver, django_capture_on_commit_callbacks):
    staff = approver.client()
    cycle_id = staff.post("/api/v1/cycles/", {"period": "2026-Q3"}, format="json").json()["id"]
    _run(staff, cycle_id, "allocate", django_capture_on_commit_callbacks)
    refused = staff.post(f"/api/v1/cycles/{cycle_id}/approve/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "four_eyes"
    assert Cycle.objects.get(pk=cycle_id).status == CycleStatus.ALLOCATED


def test_cycles_and_policies_are_invisible_to_holders_and_licensees(
    declared, operator, rights_holder, licensee, api_client_for
):
    cycle = cs.allocate(operator)
    for client in (
        rights_holder.client(),
        licensee.client(),
        api_client_for(rights_holder.organisation),
    ):
        assert client.get("/api/v1/cycles/").json()["results"] == []
        assert client.get(f"/api/v1/cycles/{cycle.pk}/").status_code == 404
        assert client.post(f"/api/v1/cycles/{cycle.pk}/allocate/").status_code == 404
        assert client.post(f"/api/v1/cycles/{cycle.pk}/approve/").status_code == 404
        assert client.get("/api/v1/policies/").json()["results"] == []
        made = client.post("/api/v1/cycles/", {"period": "2026-Q4"}, format="json")
        assert made.status_code == 403
        assert (
            client.post("/api/v1/policies/", {"admin_fee_bp": 0}, format="json").status_code == 403
        )


def test_holders_read_only_their_own_published_statements(
    declared, operator, approver, rights_holder, co_holder, outsider, api_client_for
):
    cycle = cs.allocate(operator)
    mine = Statement.objects.get(
        allocation=cycle.current_allocation, holder=rights_holder.organisation
    )
    theirs = Statement.objects.get(
        allocation=cycle.current_allocation, holder=co_holder.organisation
    )
    # Before approval a statement is a draft: only staff see it.
    assert rights_holder.client().get(f"/api/v1/statements/{mine.pk}/").status_code == 404
    assert operator.client().get(f"/api/v1/statements/{mine.pk}/").status_code == 200
    cs.approve(approver, cycle)
    for client in (rights_holder.client(), api_client_for(rights_holder.organisation)):
        listed = client.get("/api/v1/statements/").json()["results"]
        assert [s["id"] for s in listed] == [mine.pk]
        detail = client.get(f"/api/v1/statements/{mine.pk}/").json()
        # 92,000 x 0.85 x 0.7 = 54,740
        assert detail["earned_minor"] == 54_740
        assert sum(line["amount_minor"] for line in detail["sources"]) == 54_740
        works = client.get(f"/api/v1/statements/{mine.pk}/works/").json()["results"]
        assert [(w["title"], w["amount_minor"]) for w in works] == [("Work A", 54_740)]
        for path in ("", "works/"):
            assert client.get(f"/api/v1/statements/{theirs.pk}/{path}").status_code == 404
    for client in (outsider.client(), api_client_for(outsider.organisation)):
        assert client.get("/api/v1/statements/").json()["results"] == []
        assert client.get(f"/api/v1/statements/{mine.pk}/").status_code == 404


def test_staff_see_held_money_and_release_it_to_a_work(
    operator, approver, licensee, rights_holder, outsider
):
    from tests.licensing.declarations_support import ISBN_UNKNOWN

    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    work_in(catalogue_for(rights_holder, "Backlist"), rights_holder, "A", isbn=ISBN_A)
    cs.usage(licensee, licence, [("isbn", ISBN_A, 500), ("isbn", ISBN_UNKNOWN, 500)])
    # Before approval nothing is held yet (nothing is booked).
    assert operator.client().get("/api/v1/suspense/").json()["results"] == []
    cs.approve(approver, cs.allocate(operator))
    (held,) = operator.client().get("/api/v1/suspense/?reason=unmatched").json()["results"]
    assert (held["ref"], held["amount_minor"]) == (f"isbn:{ISBN_UNKNOWN}", 41_400)
    # A holder, its API key and an outsider find nothing and release nothing.
    for client in (rights_holder.client(), outsider.client()):
        assert client.get("/api/v1/suspense/").json()["results"] == []
        response = client.post(
            f"/api/v1/suspense/{held['id']}/release/", {"work": 1, "reason": "mine"}
        )
        assert response.status_code == 404
    # Staff decide the identifier is the rights holder's other edition of work A.
    work_a = rights_holder.organisation.catalogues.get().works.get()
    released = operator.client().post(
        f"/api/v1/suspense/{held['id']}/release/",
        {"work": work_a.pk, "reason": "ISBN of the paperback edition of A"},
        format="json",
    )
    assert released.status_code == 201, released.content
    assert released.json()["released"] == "to_work"
    again = operator.client().post(
        f"/api/v1/suspense/{held['id']}/release/", {"work": work_a.pk, "reason": "twice"}
    )
    assert again.status_code == 404  # no longer held
    cycle = cs.allocate(operator, "2026-Q4")  # Q4: no declarations -> no_usage; plus the release
    statement = Statement.objects.get(
        allocation=cycle.current_allocation, holder=rights_holder.organisation
    )
    assert statement.earned_minor == 41_400
