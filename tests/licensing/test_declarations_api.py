"""The usage declaration API: file (CSV or JSON Lines), follow, report, unmatched CSV."""

from __future__ import annotations

import json

import pytest

from licensing.models import DeclarationStatus, UsageDeclaration
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    repertoire,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee):
    return active_licence(licensee)


def _url(licence, suffix=""):
    return f"/api/v1/licences/{licence.pk}/declarations/{suffix}"


def _file(client, licence, rows, capture, **fields):
    body = {"period": "2026-Q3", "model_name": "aleph", "model_version": "1", **fields}
    body["file"] = csv_file(rows)
    with capture(execute=True):
        return client.post(_url(licence), body, format="multipart")


def test_a_licensee_files_a_csv_and_reads_the_match_report(
    licensee, licence, works, django_capture_on_commit_callbacks
):
    client = licensee.client()
    rows = [("isbn", ISBN_A, 7), ("isbn", ISBN_UNKNOWN, 3), ("isbn", "9780140449136", 5)]
    response = _file(client, licence, rows, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    pk = response.json()["id"]

    detail = client.get(_url(licence, f"{pk}/")).json()
    assert detail["status"] == "accepted" and detail["percent"] == 100
    assert (detail["declared_quantity"], detail["matched_quantity"]) == (15, 7)

    report = client.get(_url(licence, f"{pk}/report/")).json()
    assert report["matched"] == {
        "lines": 1,
        "quantity": 7,
        "lines_percent": "33.33",
        "quantity_percent": "46.67",
    }
    assert report["unmatched"]["quantity"] == 3 and report["reserved"]["quantity"] == 5
    assert report["top_unmatched"][0]["identifier"] == ISBN_UNKNOWN

    csv_response = client.get(_url(licence, f"{pk}/unmatched.csv"))
    assert csv_response.status_code == 200
    text = b"".join(csv_response.streaming_content).decode()
    assert text.splitlines() == [
        "scheme,identifier,valid,note,quantity,lines,title",
        f"isbn,{ISBN_UNKNOWN},yes,,3,1,",
    ]
    listing = client.get(_url(licence)).json()
    assert [d["id"] for d in listing["results"]] == [pk]


def test_an_api_key_files_json_lines(
    licensee, licence, works, api_client_for, django_capture_on_commit_callbacks
):
    client = api_client_for(licensee.organisation)
    body = "\n".join(
        json.dumps(
            {"scheme": "isbn", "identifier": "0-439-02348-3", "quantity": q, "unit": "items"}
        )
        for q in (4, 6)
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url(licence) + "?period=2026-Q3&model_name=aleph&model_version=2",
            data=body,
            content_type="application/x-ndjson",
        )
    assert response.status_code == 202, response.content
    declaration = UsageDeclaration.objects.get(pk=response.json()["id"])
    assert declaration.status == DeclarationStatus.ACCEPTED, declaration.message
    assert (declaration.unit, declaration.matched_quantity) == ("items", 10)


def test_a_rejected_file_shows_its_errors(
    licensee, licence, works, django_capture_on_commit_callbacks
):
    client = licensee.client()
    response = _file(client, licence, [("isbn", ISBN_A, "1.5")], django_capture_on_commit_callbacks)
    pk = response.json()["id"]
    detail = client.get(_url(licence, f"{pk}/")).json()
    assert detail["status"] == "rejected"
    assert detail["errors"] == [
        {"row": 2, "column": "quantity", "message": "quantity must be a whole number"}
    ]
    errors = client.get(_url(licence, f"{pk}/errors.csv"))
    assert b"quantity must be a whole number" in b"".join(errors.streaming_content)


def test_a_nil_declaration_needs_no_file(licensee, licence):
    response = licensee.client().post(
        _url(licence),
        {"period": "2026-Q3", "model_name": "aleph", "model_version": "1", "nil": "true"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["nil"] is True and response.json()["status"] == "accepted"


def test_a_period_outside_the_term_is_a_clear_400(
    licensee, licence, django_capture_on_commit_callbacks
):
    response = _file(
        licensee.client(),
        licence,
        [("isbn", ISBN_A, 1)],
        django_capture_on_commit_callbacks,
        period="2030-Q1",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "period_outside_term"


def test_declarations_are_invisible_to_outsiders(
    licensee, outsider, licence, works, django_capture_on_commit_callbacks
):
    pk = _file(
        licensee.client(), licence, [("isbn", ISBN_A, 1)], django_capture_on_commit_callbacks
    ).json()["id"]
    client = outsider.client()
    for suffix in ("", f"{pk}/", f"{pk}/report/", f"{pk}/unmatched.csv", f"{pk}/errors.csv"):
        assert client.get(_url(licence, suffix)).status_code == 404, suffix
    response = _file(client, licence, [("isbn", ISBN_A, 1)], django_capture_on_commit_callbacks)
    assert response.status_code == 404
    assert UsageDeclaration.objects.count() == 1


def test_staff_see_every_declaration(
    licensee, operator, licence, works, django_capture_on_commit_callbacks
):
    pk = _file(
        licensee.client(), licence, [("isbn", ISBN_A, 1)], django_capture_on_commit_callbacks
    ).json()["id"]
    assert operator.client().get(_url(licence, f"{pk}/report/")).status_code == 200


def test_a_json_lines_body_over_the_limit_is_refused(licensee, licence, settings):
    settings.DECLARATION_MAX_BYTES = 100
    line = json.dumps({"scheme": "isbn", "identifier": ISBN_A, "quantity": 1})
    response = licensee.client().post(
        _url(licence) + "?period=2026-Q3&model_name=aleph&model_version=1",
        data="\n".join([line] * 10),
        content_type="application/x-ndjson",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "file_too_large"
    assert not UsageDeclaration.objects.exists()
