"""Claims on the unmatched pool (service and API), staff review, bulk match and dismissal."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from config.errors import DomainError
from licensing.models import ClaimStatus, UnmatchedClaim, UnmatchedDismissal, WorkIdentifier
from licensing.services.claims import (
    unmatched_bulk_match,
    unmatched_claim_accept,
    unmatched_claim_create,
    unmatched_claim_reject,
    unmatched_dismiss,
)
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    declare,
    repertoire,
    usage_by_work,
)
from tests.licensing.factories import caller_of, catalogue_for

pytestmark = pytest.mark.django_db

ISBN_OTHER = "9780262033848"


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def declarations(licensee, works):
    """Two accepted declarations (two models) holding ISBN_UNKNOWN unmatched."""
    licence = active_licence(licensee)
    first = declare(
        licensee,
        licence,
        csv_file([("isbn", ISBN_A, 5), ("isbn", "978-1-86197-271-2", 30), ("isbn", ISBN_OTHER, 4)]),
    )
    second = declare(licensee, licence, csv_file([("isbn", ISBN_UNKNOWN, 11)]), model="beth")
    return first, second


def _conserved(declaration) -> bool:
    return (
        declaration.matched_quantity
        + declaration.unmatched_quantity
        + declaration.reserved_quantity
        == declaration.declared_quantity
    )


def test_an_accepted_claim_moves_the_usage_exactly(rights_holder, operator, declarations, works):
    claim = unmatched_claim_create(
        caller=caller_of(rights_holder), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["b"]
    )
    assert claim.status == ClaimStatus.PENDING and claim.identifier == ISBN_UNKNOWN
    moved = unmatched_claim_accept(caller=caller_of(operator), claim=claim)
    first, second = declarations
    assert sorted(moved) == sorted([first.pk, second.pk])
    for declaration in declarations:
        declaration.refresh_from_db()
        assert _conserved(declaration)
    assert (first.matched_quantity, first.unmatched_quantity) == (35, 4)
    assert usage_by_work(first)[works["b"].pk] == (30, 1, False)
    assert (second.matched_quantity, second.unmatched_quantity) == (11, 0)
    assert usage_by_work(second) == {works["b"].pk: (11, 1, False)}
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.ACCEPTED and claim.reviewed_by == operator.user
    assert WorkIdentifier.objects.filter(work=works["b"], value=ISBN_UNKNOWN).exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"unmatched_claim.create", "unmatched_claim.accept"} <= actions
    with pytest.raises(DomainError):  # reviewed once
        unmatched_claim_reject(caller=caller_of(operator), claim=claim, reason="late")


def test_a_rejected_claim_moves_nothing(rights_holder, operator, declarations, works):
    claim = unmatched_claim_create(
        caller=caller_of(rights_holder), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["b"]
    )
    with pytest.raises(DomainError):
        unmatched_claim_reject(caller=caller_of(operator), claim=claim, reason=" ")
    unmatched_claim_reject(caller=caller_of(operator), claim=claim, reason="Not your book.")
    claim.refresh_from_db()
    assert (claim.status, claim.review_note) == (ClaimStatus.REJECTED, "Not your book.")
    first, second = declarations
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.unmatched_quantity, second.unmatched_quantity) == (34, 11)
    assert not WorkIdentifier.objects.filter(value=ISBN_UNKNOWN).exists()
    assert AuditEvent.objects.filter(action="unmatched_claim.reject").exists()


def test_a_claim_may_register_a_new_work(rights_holder, operator, declarations):
    catalogue = catalogue_for(rights_holder, "Claims")
    claim = unmatched_claim_create(
        caller=caller_of(rights_holder),
        scheme="isbn",
        identifier="978-1-86197-271-2",
        new_work={
            "catalogue": catalogue,
            "work_ref": "N1",
            "title": "Found",
            "identifiers": [{"scheme": "doi", "value": "10.1000/found"}],
        },
    )
    assert claim.work.catalogue == catalogue and claim.work.title == "Found"
    assert not WorkIdentifier.objects.filter(value=ISBN_UNKNOWN).exists()  # not before review
    unmatched_claim_accept(caller=caller_of(operator), claim=claim)
    assert WorkIdentifier.objects.filter(work=claim.work, value=ISBN_UNKNOWN).exists()


def test_claims_are_refused_for_others_works_and_unknown_identifiers(
    rights_holder, co_holder, licensee, declarations, works
):
    with pytest.raises(DomainError):  # not the co-holder's work
        unmatched_claim_create(
            caller=caller_of(co_holder), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["b"]
        )
    with pytest.raises(DomainError):  # matched, not in the pool
        unmatched_claim_create(
            caller=caller_of(rights_holder), scheme="isbn", identifier=ISBN_A, work=works["b"]
        )
    unmatched_claim_create(
        caller=caller_of(rights_holder), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["b"]
    )
    with pytest.raises(DomainError):  # one pending claim per identifier and claimant
        unmatched_claim_create(
            caller=caller_of(rights_holder), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["a"]
        )
    with pytest.raises(DomainError):  # only staff review
        unmatched_claim_accept(caller=caller_of(licensee), claim=UnmatchedClaim.objects.get())


def test_bulk_match_moves_every_identifier_and_dismiss_sets_aside(
    operator, licensee, declarations, works
):
    moved = unmatched_bulk_match(
        caller=caller_of(operator),
        identifiers=[("isbn", ISBN_UNKNOWN), ("isbn", ISBN_OTHER)],
        work=works["a"],
    )
    first, second = declarations
    assert moved == sorted([first.pk, second.pk])
    first.refresh_from_db()
    assert (first.matched_quantity, first.unmatched_quantity) == (39, 0)
    assert usage_by_work(first)[works["a"].pk] == (39, 3, False)
    assert _conserved(first)
    assert unmatched_dismiss(caller=caller_of(operator), identifiers=[("isbn", "x")]) == 1
    assert UnmatchedDismissal.objects.filter(identifier="x").exists()
    with pytest.raises(DomainError):
        unmatched_dismiss(caller=caller_of(licensee), identifiers=[("isbn", "y")])


def test_claims_api_scopes_to_claimant_and_staff(
    rights_holder, co_holder, outsider, operator, declarations, works
):
    response = rights_holder.client().post(
        "/api/v1/unmatched-claims/",
        {"scheme": "isbn", "identifier": ISBN_UNKNOWN, "work": works["b"].pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    url = f"/api/v1/unmatched-claims/{pk}/"
    assert rights_holder.client().get(url).status_code == 200
    assert len(rights_holder.client().get("/api/v1/unmatched-claims/").json()["results"]) == 1
    for persona in (co_holder, outsider):
        assert persona.client().get(url).status_code == 404
        assert persona.client().post(f"{url}accept/").status_code == 404
        assert persona.client().get("/api/v1/unmatched-claims/").json()["results"] == []
    assert rights_holder.client().post(f"{url}accept/").status_code == 403
    staff = operator.client()
    assert staff.get(url).status_code == 200
    assert staff.post(f"{url}reject/", {}, format="json").status_code == 400
    response = staff.post(f"{url}accept/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "accepted"
    assert staff.post(f"{url}accept/").status_code == 409
    second = declarations[1]
    second.refresh_from_db()
    assert second.unmatched_quantity == 0 and _conserved(second)


def test_claims_api_refuses_someone_elses_work(outsider, declarations, works):
    response = outsider.client().post(
        "/api/v1/unmatched-claims/",
        {"scheme": "isbn", "identifier": ISBN_UNKNOWN, "work": works["b"].pk},
        format="json",
    )
    assert response.status_code == 400


def test_a_rights_holder_claims_on_the_page_and_staff_accept(
    rights_holder, co_holder, outsider, operator, declarations, works
):
    client = rights_holder.client()
    page = client.get("/unmatched/?q=186197")
    assert page.status_code == 200 and ISBN_UNKNOWN in page.content.decode()
    response = client.post(
        "/unmatched/", {"scheme": "isbn", "identifier": ISBN_UNKNOWN, "work_id": works["b"].pk}
    )
    assert response.status_code == 302, response.content
    claim = UnmatchedClaim.objects.get()
    url = f"/unmatched/claims/{claim.pk}/"
    assert ISBN_UNKNOWN in client.get("/unmatched/").content.decode()  # my claims
    assert client.get(url).status_code == 200
    assert client.post(url, {"decision": "accept"}).status_code == 403
    for persona in (co_holder, outsider):
        assert persona.client().get(url).status_code == 404
        assert persona.client().get("/declarations/unmatched/claims/").status_code == 403
    assert (
        co_holder.client()
        .post("/unmatched/", {"scheme": "isbn", "identifier": ISBN_OTHER, "work_id": works["b"].pk})
        .status_code
        == 400
    )  # not the co-holder's work

    staff = operator.client()
    assert f"#{claim.pk}" in staff.get("/declarations/unmatched/claims/").content.decode()
    assert staff.post(url, {"decision": "reject", "reason": ""}).status_code == 400
    assert staff.post(url, {"decision": "accept"}).status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.ACCEPTED
    second = declarations[1]
    second.refresh_from_db()
    assert second.unmatched_quantity == 0 and _conserved(second)


def test_staff_bulk_match_and_dismiss_on_the_queue(operator, declarations, works):
    staff = operator.client()
    assert ISBN_OTHER in staff.get("/declarations/unmatched/").content.decode()
    response = staff.post(
        "/declarations/unmatched/",
        {"operation": "dismiss", "selected": [f"isbn:{ISBN_OTHER}"], "reason": "noise"},
    )
    assert response.status_code == 302
    queue = staff.get("/declarations/unmatched/").content.decode()
    assert ISBN_OTHER not in queue and ISBN_UNKNOWN in queue
    response = staff.post(
        "/declarations/unmatched/",
        {"operation": "match", "selected": [f"isbn:{ISBN_UNKNOWN}"], "work_id": works["a"].pk},
    )
    assert response.status_code == 302
    first, second = declarations
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.matched_quantity, first.unmatched_quantity) == (35, 4) and _conserved(first)
    assert (second.matched_quantity, second.unmatched_quantity) == (11, 0) and _conserved(second)
    response = staff.post(
        "/declarations/unmatched/", {"operation": "match", "selected": ["isbn:1"]}
    )
    assert response.status_code == 400  # no work named


def test_a_claim_on_the_page_may_register_a_new_work(rights_holder, declarations):
    catalogue = catalogue_for(rights_holder, "Found works")
    response = rights_holder.client().post(
        "/unmatched/",
        {
            "scheme": "isbn",
            "identifier": ISBN_OTHER,
            "catalogue": catalogue.pk,
            "work_ref": "F-1",
            "title": "A found book",
            "own_scheme": "doi",
            "own_identifier": "10.1000/found-1",
        },
    )
    assert response.status_code == 302, response.content
    claim = UnmatchedClaim.objects.get()
    assert (claim.work.catalogue, claim.work.title, claim.identifier) == (
        catalogue,
        "A found book",
        ISBN_OTHER,
    )
