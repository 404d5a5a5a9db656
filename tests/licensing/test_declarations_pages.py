"""The declaration pages: upload with progress and match report; the staff unmatched queue."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from licensing.models import DeclarationStatus, UsageDeclaration, WorkIdentifier
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    declare,
    repertoire,
    usage_by_work,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee):
    return active_licence(licensee)


def test_a_licensee_uploads_and_reads_the_match_report(
    licensee, licence, works, django_capture_on_commit_callbacks
):
    client = licensee.client()
    page = client.get(f"/licences/{licence.pk}/declarations/")
    assert page.status_code == 200 and b"File a declaration" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/licences/{licence.pk}/declarations/",
            {
                "period": "2026-Q3",
                "model_name": "aleph",
                "model_version": "1",
                "file": csv_file([("isbn", ISBN_A, 40), ("isbn", ISBN_UNKNOWN, 10)]),
            },
        )
    assert response.status_code == 302
    detail = client.get(response["Location"])
    html = detail.content.decode()
    assert 'data-testid="declaration-status">Accepted' in html
    assert 'data-testid="matched-quantity">40<' in html
    assert 'data-testid="unmatched-quantity">10<' in html
    assert ISBN_UNKNOWN in html
    declaration = UsageDeclaration.objects.get()
    progress = client.get(f"/declarations/{declaration.pk}/progress/")
    assert progress.status_code == 200 and b"hx-get" not in progress.content  # finished
    download = client.get(f"/declarations/{declaration.pk}/unmatched.csv")
    assert ISBN_UNKNOWN in b"".join(download.streaming_content).decode()
    history = client.get(f"/licences/{licence.pk}/declarations/").content.decode()
    assert f'data-declaration="{declaration.pk}"' in history


def test_a_period_outside_the_term_is_shown_on_the_form(licensee, licence):
    response = licensee.client().post(
        f"/licences/{licence.pk}/declarations/",
        {"period": "2031-Q1", "model_name": "aleph", "model_version": "1", "nil": "on"},
    )
    assert response.status_code == 400
    assert b"outside the licence term" in response.content


def test_declaration_pages_are_404_for_outsiders(licensee, outsider, licence, works):
    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]))
    client = outsider.client()
    for url in (
        f"/licences/{licence.pk}/declarations/",
        f"/declarations/{declaration.pk}/",
        f"/declarations/{declaration.pk}/progress/",
        f"/declarations/{declaration.pk}/unmatched.csv",
    ):
        assert client.get(url).status_code == 404, url
    assert client.get("/declarations/unmatched/").status_code == 403


def test_staff_match_an_unmatched_identifier_and_declarations_are_rematched(
    licensee, operator, licence, works
):
    declaration = declare(
        licensee,
        licence,
        csv_file(
            [("isbn", ISBN_A, 5), ("isbn", "978-1-86197-271-2", 30), ("isbn", ISBN_UNKNOWN, 7)]
        ),
    )
    assert declaration.unmatched_quantity == 37
    client = operator.client()
    queue = client.get("/declarations/unmatched/?q=186197").content.decode()
    assert ISBN_UNKNOWN in queue

    response = client.post(
        "/declarations/unmatched/",
        {"scheme": "isbn", "identifier": ISBN_UNKNOWN, "work_id": works["b"].pk},
    )
    assert response.status_code == 302
    declaration.refresh_from_db()
    assert (declaration.matched_quantity, declaration.unmatched_quantity) == (42, 0)
    assert (
        declaration.matched_quantity
        + declaration.unmatched_quantity
        + (declaration.reserved_quantity)
        == declaration.declared_quantity
    )
    assert usage_by_work(declaration)[works["b"].pk] == (37, 2, False)
    assert declaration.status == DeclarationStatus.ACCEPTED
    assert not declaration.unmatched.exists()
    assert WorkIdentifier.objects.filter(work=works["b"], value=ISBN_UNKNOWN).exists()
    assert AuditEvent.objects.filter(action="declaration.unmatched_match").exists()
