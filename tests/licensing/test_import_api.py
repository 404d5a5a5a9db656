"""Catalogue import API: upload (202), list, job status, error report; outsiders get 404."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from licensing.models import CatalogueImport, JobStatus, Work
from tests.licensing.test_import_support import caller_of, data_file, run_import

pytest_plugins = ["tests.licensing.test_import_support"]  # its fixtures

GOOD = b"work_ref,title,media_type,isbn\nW1,The Winter Orchard,text,978-0-439-02348-1\n"
BAD = b"work_ref,title,media_type,isbn\nW1,The Winter Orchard,text,978-0-439-02348-2\n"


def imports_url(catalogue, job_id: int | None = None, suffix: str = "") -> str:
    url = f"/api/v1/catalogues/{catalogue.pk}/imports/"
    return url if job_id is None else f"{url}{job_id}/{suffix}"


def post_file(client, catalogue, content: bytes, name: str = "works.csv", **extra):
    return client.post(
        imports_url(catalogue),
        {"file": SimpleUploadedFile(name, content), **extra},
        format="multipart",
    )


def test_upload_answers_202_with_the_job_and_the_job_finishes(
    rights_holder, catalogue, django_capture_on_commit_callbacks
):
    client = rights_holder.client()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(client, catalogue, GOOD)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["catalogue"] == catalogue.pk
    assert body["original_name"] == "works.csv"
    assert body["mode"] == "all_or_nothing"
    assert body["created_by"] == rights_holder.user.email
    assert body["errors_url"].endswith(f"/imports/{body['id']}/errors.csv")

    detail = client.get(imports_url(catalogue, body["id"])).json()
    assert detail["status"] == "succeeded"
    assert (detail["percent"], detail["rows_done"], detail["rows_total"]) == (100, 1, 1)
    assert detail["works_created"] == 1
    assert Work.objects.filter(catalogue=catalogue).count() == 1


def test_jobs_are_listed_newest_first(rights_holder, catalogue):
    first = run_import(rights_holder, catalogue, GOOD)
    second = run_import(rights_holder, catalogue, GOOD)
    response = rights_holder.client().get(imports_url(catalogue))
    assert response.status_code == 200
    assert [job["id"] for job in response.json()["results"]] == [second.pk, first.pk]
    assert response.json()["results"][0]["works_unchanged"] == 1


def test_error_report_downloads_every_error_as_csv(rights_holder, co_holder, catalogue):
    content = data_file("catalogue_import_errors.csv", CO_HOLDER=co_holder.organisation.code)
    job = run_import(rights_holder, catalogue, content)
    response = rights_holder.client().get(imports_url(catalogue, job.pk, "errors.csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "row,column,value,message"
    assert lines[1] == "3,isbn,9780439023482,ISBN check digit is wrong"
    assert len(lines) == 1 + 18
    detail = rights_holder.client().get(imports_url(catalogue, job.pk)).json()
    assert detail["status"] == "failed" and detail["error_count"] == 18
    assert detail["errors"][0] == {
        "row": 3,
        "column": "isbn",
        "message": "ISBN check digit is wrong",
    }


def test_error_report_of_a_clean_job_is_just_the_header(rights_holder, catalogue):
    job = run_import(rights_holder, catalogue, GOOD)
    response = rights_holder.client().get(imports_url(catalogue, job.pk, "errors.csv"))
    assert response.status_code == 200
    assert response.content.decode() == "row,column,value,message\n"


def test_error_report_of_a_running_job_is_a_conflict(rights_holder, catalogue):
    from licensing.services import imports

    job = imports.catalogue_import_start(
        caller=caller_of(rights_holder),
        catalogue=catalogue,
        uploaded_file=SimpleUploadedFile("w.csv", GOOD),
        enqueue=False,
    )
    response = rights_holder.client().get(imports_url(catalogue, job.pk, "errors.csv"))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "import_running"


def test_api_key_upload_works(
    rights_holder, catalogue, api_client_for, django_capture_on_commit_callbacks
):
    client = api_client_for(rights_holder.organisation)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_file(client, catalogue, BAD, mode="valid_only")
    assert response.status_code == 202, response.content
    job = CatalogueImport.objects.get(pk=response.json()["id"])
    assert job.created_by is None and job.mode == "valid_only"
    assert job.status == JobStatus.FAILED  # its only work has an error
    assert job.errors[0]["message"] == "ISBN check digit is wrong"


def test_outsider_gets_404_on_every_import_endpoint(
    outsider, rights_holder, catalogue, api_client_for
):
    job = run_import(rights_holder, catalogue, BAD)
    for client in (outsider.client(), api_client_for(outsider.organisation)):
        assert client.get(imports_url(catalogue)).status_code == 404
        assert client.get(imports_url(catalogue, job.pk)).status_code == 404
        assert client.get(imports_url(catalogue, job.pk, "errors.csv")).status_code == 404
        assert post_file(client, catalogue, GOOD).status_code == 404
    assert CatalogueImport.objects.count() == 1


def test_a_job_is_only_found_under_its_own_catalogue(rights_holder, catalogue):
    from licensing.models import Catalogue

    other = Catalogue.objects.create(
        owner=rights_holder.organisation, name="Other", media_type="text"
    )
    job = run_import(rights_holder, catalogue, GOOD)
    client = rights_holder.client()
    assert client.get(imports_url(other, job.pk)).status_code == 404
    assert client.get(imports_url(other, job.pk, "errors.csv")).status_code == 404


def test_staff_see_every_catalogues_imports(operator, rights_holder, catalogue):
    job = run_import(rights_holder, catalogue, GOOD)
    response = operator.client().get(imports_url(catalogue, job.pk))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "content", "extra", "status", "code"),
    [
        ("works.txt", GOOD, {}, 400, "unsupported_format"),
        ("works.csv", b"", {}, 400, "invalid"),  # DRF refuses an empty upload itself
        ("works.csv", GOOD, {"mode": "sometimes"}, 400, "invalid"),
    ],
)
def test_bad_uploads_get_one_error_body(
    rights_holder, catalogue, name, content, extra, status, code
):
    response = post_file(rights_holder.client(), catalogue, content, name, **extra)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not CatalogueImport.objects.exists()


def test_read_only_members_cannot_upload(rights_holder, catalogue):
    from accounts.models import Membership, Role

    Membership.objects.filter(user=rights_holder.user).update(role=Role.VIEWER)
    response = post_file(rights_holder.client(), catalogue, GOOD)
    assert response.status_code == 403
    assert not CatalogueImport.objects.exists()


def test_anonymous_callers_are_refused(client, catalogue):
    assert client.get(imports_url(catalogue)).status_code in (401, 403)
