import pytest

from licensing.errors import LicensingError
from licensing.models import Conflict, Work, WorkIdentifier
from licensing.services.conflicts import conflict_resolve
from licensing.services.repertoire import work_shares_set
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db


def test_same_identifier_claimed_over_100_percent_by_two_holders_is_a_conflict(
    rights_holder, co_holder
):
    a = work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    b = work_in(catalogue_for(co_holder), co_holder, "B", isbn="0-439-02348-3")
    conflict = Conflict.objects.get()
    assert (conflict.scheme, conflict.value, conflict.claimed_ppm) == (
        "isbn",
        "9780439023481",
        2_000_000,
    )
    assert set(conflict.claimants.all()) == {rights_holder.organisation, co_holder.organisation}
    for work in (a, b):
        work.refresh_from_db()
        assert work.status == "disputed"


def test_co_owners_registering_their_halves_separately_is_no_conflict(rights_holder, co_holder):
    work_in(
        catalogue_for(rights_holder),
        rights_holder,
        "A",
        isbn="9780439023481",
        shares=[{"share": "50"}],
    )
    work_in(
        catalogue_for(co_holder), co_holder, "B", isbn="9780439023481", shares=[{"share": "50"}]
    )
    assert not Conflict.objects.exists()
    assert set(Work.objects.values_list("status", flat=True)) == {"active"}


def test_both_claimants_and_staff_see_the_conflict_but_outsiders_do_not(
    rights_holder, co_holder, outsider, operator
):
    work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")
    conflict = Conflict.objects.get()
    for persona in (rights_holder, co_holder, operator):
        assert persona.client().get(f"/api/v1/conflicts/{conflict.pk}/").status_code == 200
    assert outsider.client().get(f"/api/v1/conflicts/{conflict.pk}/").status_code == 404
    assert outsider.client().get("/api/v1/conflicts/").json()["count"] == 0


def test_staff_resolve_by_rejecting_a_claim_and_the_works_are_released(
    rights_holder, co_holder, operator
):
    a = work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    b = work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")
    conflict = Conflict.objects.get()
    response = operator.client().post(
        f"/api/v1/conflicts/{conflict.pk}/resolve/",
        {"resolution": "B's claim is a data-entry error", "reject_work_ids": [b.pk]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "resolved"
    assert not WorkIdentifier.objects.filter(work=b, value="9780439023481").exists()
    assert set(Work.objects.values_list("status", flat=True)) == {"active"}
    from accounts.models import AuditEvent

    assert AuditEvent.objects.filter(action="conflict.resolve", actor=operator.user).exists()
    assert a.identifiers.filter(value="9780439023481").exists()


def test_resolving_while_still_over_claimed_is_refused(rights_holder, co_holder, operator):
    work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")
    conflict = Conflict.objects.get()
    with pytest.raises(LicensingError, match=r"still add up to 200\.0000%"):
        conflict_resolve(caller=caller_of(operator), conflict=conflict, resolution="looked")


def test_resolving_after_adjusting_shares(rights_holder, co_holder, operator):
    a = work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    b = work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")
    work_shares_set(caller=caller_of(rights_holder), work=a, shares=[{"share": "30"}])
    work_shares_set(caller=caller_of(co_holder), work=b, shares=[{"share": "70"}])
    conflict = conflict_resolve(
        caller=caller_of(operator), conflict=Conflict.objects.get(), resolution="agreed 30/70"
    )
    assert conflict.status == "resolved"


def test_only_staff_resolve(rights_holder, co_holder):
    work_in(catalogue_for(rights_holder), rights_holder, "A", isbn="9780439023481")
    work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")
    conflict = Conflict.objects.get()
    response = rights_holder.client().post(
        f"/api/v1/conflicts/{conflict.pk}/resolve/", {"resolution": "mine"}, format="json"
    )
    assert response.status_code == 403
    conflict.refresh_from_db()
    assert conflict.status == "open"


def test_one_detection_opens_every_over_claimed_identifier_with_its_works_and_audit(
    rights_holder, co_holder
):
    """Several over-claimed identifiers found at once (as after an import): each gets its own
    conflict with exactly its works and claimants and one audit row; an identifier already
    in an open conflict gains the new work instead of a second conflict."""
    from accounts.models import AuditEvent
    from licensing.services.conflicts import conflict_detect

    ours, other = catalogue_for(rights_holder), catalogue_for(co_holder)
    isbns = ["9780439023481", "9780306406157", "9781861972712"]
    mine = [work_in(ours, rights_holder, f"A{i}", url=f"https://a.org/{i}") for i in range(3)]
    theirs = [work_in(other, co_holder, f"B{i}", url=f"https://b.org/{i}") for i in range(3)]
    for work, isbn in zip(mine + theirs, isbns + isbns, strict=True):  # no detection yet
        WorkIdentifier.objects.create(work=work, scheme="isbn", value=isbn)
    opened = conflict_detect(work_ids=[w.pk for w in mine + theirs])

    assert sorted(c.value for c in opened) == sorted(isbns)
    for conflict, (a, b) in zip(
        sorted(opened, key=lambda c: isbns.index(c.value)),
        zip(mine, theirs, strict=True),
        strict=True,
    ):
        assert set(conflict.works.all()) == {a, b}
        assert set(conflict.claimants.all()) == {rights_holder.organisation, co_holder.organisation}
        assert conflict.claimed_ppm == 2_000_000
    audits = AuditEvent.objects.filter(action="conflict.open")
    assert sorted(a.details["value"] for a in audits) == sorted(isbns)
    assert {a.object_id for a in audits} == {str(c.pk) for c in opened}
    assert set(Work.objects.values_list("status", flat=True)) == {"disputed"}

    third = work_in(ours, rights_holder, "C", url="https://c.org/")
    WorkIdentifier.objects.create(work=third, scheme="isbn", value=isbns[0])
    assert conflict_detect(work_ids=[third.pk]) == []
    conflict = Conflict.objects.get(value=isbns[0])
    assert set(conflict.works.all()) == {mine[0], theirs[0], third}
    assert Conflict.objects.count() == 3
    assert AuditEvent.objects.filter(action="conflict.open").count() == 3
