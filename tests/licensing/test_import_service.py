"""Catalogue import service: start, run, modes, idempotency, edits, conflicts, progress."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from accounts.models import Role
from accounts.scoping import Caller
from config.errors import PermissionError_
from licensing.errors import ImportFileError, LicensingError
from licensing.models import (
    Catalogue,
    Conflict,
    ImportMode,
    JobStatus,
    Share,
    Work,
    WorkIdentifier,
    WorkStatus,
)
from licensing.services import imports
from tests.conftest import skip_or_fail
from tests.licensing.test_import_support import (
    DATA,
    caller_of,
    data_file,
    holder_codes,
    repertoire_counts,
    repertoire_snapshot,
    run_import,
    upload,
)

pytest_plugins = ["tests.licensing.test_import_support"]  # its fixtures


def report_rows(job) -> list[dict]:
    with job.error_report.open("rb") as handle:
        text = handle.read().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# --- errors: nothing half-written ---------------------------------------------------------


def test_row_errors_are_all_reported_and_nothing_is_written(rights_holder, co_holder, catalogue):
    content = data_file("catalogue_import_errors.csv", **holder_codes(co_holder))
    job = run_import(rights_holder, catalogue, content)

    assert job.status == JobStatus.FAILED
    assert repertoire_counts() == (0, 0, 0)
    with open(DATA / "catalogue_import_errors.expected.csv", newline="") as handle:
        expected = [dict(r) for r in csv.DictReader(handle)]
    assert job.error_count == len(expected) == 18
    assert [{k: str(v) for k, v in e.items()} for e in job.errors] == expected
    report = report_rows(job)
    assert [{k: r[k] for k in ("row", "column", "message")} for r in report] == expected
    assert report[0]["value"] == "9780439023482"
    assert job.rows_total == 13 and job.works_created == 0
    assert "Nothing was imported" in job.message and "18 errors" in job.message
    assert job.percent == 100 and job.finished_at is not None


def test_non_utf8_file_fails_clearly_and_writes_nothing(rights_holder, catalogue):
    job = run_import(rights_holder, catalogue, data_file("catalogue_import_latin1.csv"))
    assert job.status == JobStatus.FAILED
    assert "not UTF-8" in job.message and "line 2" in job.message
    assert "CSV UTF-8" in job.message
    assert repertoire_counts() == (0, 0, 0)
    assert job.error_count == 0 and not job.error_report


def test_missing_columns_fail_the_whole_file(rights_holder, catalogue):
    job = run_import(rights_holder, catalogue, data_file("catalogue_import_missing_columns.csv"))
    assert job.status == JobStatus.FAILED
    assert "missing the required column(s) work_ref, title, media_type" in job.message
    assert "Found: ref, name, isbn" in job.message
    assert repertoire_counts() == (0, 0, 0)


def test_share_sum_over_100_is_caught_per_row_before_the_database(
    rights_holder, co_holder, catalogue
):
    content = (
        "work_ref,title,media_type,isbn,holder,share,role\n"
        "W1,T,text,9780439023481,,60,author\n"
        f"W1,T,text,9780439023481,{co_holder.organisation.code},40.0001,publisher\n"
    ).encode()
    job = run_import(rights_holder, catalogue, content)
    assert job.status == JobStatus.FAILED
    assert [(e["row"], e["column"]) for e in job.errors] == [(2, "share"), (3, "share")]
    assert "100.0001%" in job.errors[0]["message"]
    assert repertoire_counts() == (0, 0, 0)



def test_holder_codes_name_rights_holders_only_in_any_case(
    rights_holder, co_holder, licensee, catalogue
):
    """A co-holder's code matches whatever its case; a licensee's registry code is not a
    rights holder's, so that row is refused and nothing is written."""
    content = (
        "work_ref,title,media_type,isbn,holder,share,role\n"
        f"W1,T,text,9780439023481,{co_holder.organisation.code.lower()},100,author\n"
        f"W2,T,text,9780306406157,{licensee.organisation.code},100,author\n"
    ).encode()
    job = run_import(rights_holder, catalogue, content)
    assert job.status == JobStatus.FAILED
    assert [(e["row"], e["column"], e["message"]) for e in job.errors] == [
        (3, "holder", "no rights holder has this registry code (e.g. RH-000042)")
    ]
    assert repertoire_counts() == (0, 0, 0)

@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("catalogue.txt", b"work_ref\n", "unsupported_format"),
        ("catalogue.csv", b"", "empty_file"),
    ],
)
def test_unsupported_or_empty_uploads_are_refused_at_once(
    rights_holder, catalogue, name, content, code
):
    with pytest.raises(ImportFileError) as caught:
        imports.catalogue_import_start(
            caller=caller_of(rights_holder),
            catalogue=catalogue,
            uploaded_file=upload(content, name),
        )
    assert caught.value.code == code
    assert not catalogue.imports.exists()


def test_files_over_the_size_limit_are_refused(rights_holder, catalogue, settings):
    settings.CATALOGUE_IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError) as caught:
        imports.catalogue_import_start(
            caller=caller_of(rights_holder), catalogue=catalogue, uploaded_file=upload(b"x" * 101)
        )
    assert caught.value.code == "file_too_large"
    assert "the limit is 100 bytes" in caught.value.message


def test_read_only_members_and_other_organisations_cannot_import(
    rights_holder, outsider, catalogue
):
    viewer = Caller(
        user=rights_holder.user, organisation=rights_holder.organisation, role=Role.VIEWER
    )
    with pytest.raises(PermissionError_):
        imports.catalogue_import_start(
            caller=viewer, catalogue=catalogue, uploaded_file=upload(b"x")
        )
    with pytest.raises(LicensingError) as caught:
        imports.catalogue_import_start(
            caller=caller_of(outsider), catalogue=catalogue, uploaded_file=upload(b"x")
        )
    assert caught.value.code == "not_found"


# --- writing -------------------------------------------------------------------------------


def test_valid_file_writes_works_identifiers_holders_and_exact_shares(
    rights_holder, co_holder, third_holder, catalogue
):
    content = data_file("catalogue_import_valid.csv", **holder_codes(co_holder, third_holder))
    job = run_import(rights_holder, catalogue, content)

    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.works_created, job.works_updated, job.works_unchanged) == (4, 0, 0)
    assert repertoire_counts() == (4, 5, 7)
    nlp3 = Work.objects.get(catalogue=catalogue, work_ref="NLP-003")
    assert (nlp3.consent_training, nlp3.consent_fine_tuning, nlp3.consent_rag) == ("reserved",) * 3
    assert sorted(nlp3.shares.values_list("holder_id", "role", "share_ppm")) == sorted(
        [
            (rights_holder.organisation.pk, "performer", 333_333),
            (co_holder.organisation.pk, "producer", 333_333),
            (third_holder.pk, "publisher", 333_334),
        ]
    )
    nlp1 = Work.objects.get(catalogue=catalogue, work_ref="NLP-001")
    assert nlp1.consent_training == "" and nlp1.consent_for("training") == "licensed"
    assert set(WorkIdentifier.objects.values_list("scheme", "value")) == {
        ("isbn", "9780439023481"),
        ("isbn", "9780306406157"),
        ("doi", "10.1000/xyz123"),
        ("isrc", "GBAYE2400001"),
        ("doi", "10.5555/quiet.engines"),
    }
    assert "4 created, 0 updated, 0 unchanged" in job.message
    assert "0 conflicts opened" in job.message


def test_reimporting_the_same_file_changes_nothing(
    rights_holder, co_holder, third_holder, catalogue
):
    content = data_file("catalogue_import_valid.csv", **holder_codes(co_holder, third_holder))
    run_import(rights_holder, catalogue, content)
    before = repertoire_snapshot(catalogue)

    again = run_import(rights_holder, catalogue, content)

    assert again.status == JobStatus.SUCCEEDED
    assert (again.works_created, again.works_updated, again.works_unchanged) == (0, 0, 4)
    assert repertoire_snapshot(catalogue) == before  # every field, updated_at included
    assert "Nothing changed" in again.message


def test_edited_file_updates_works_by_work_ref_and_leaves_others_alone(
    rights_holder, co_holder, third_holder, catalogue
):
    codes = holder_codes(co_holder, third_holder)
    run_import(rights_holder, catalogue, data_file("catalogue_import_valid.csv", **codes))
    untouched = Work.objects.create(
        catalogue=catalogue, work_ref="NOT-IN-FILE", title="Entered by hand", media_type="text"
    )
    nlp3_before = Work.objects.get(catalogue=catalogue, work_ref="NLP-003")

    job = run_import(rights_holder, catalogue, data_file("catalogue_import_edited.csv", **codes))

    assert job.status == JobStatus.SUCCEEDED, job.message
    # NLP-001 shares 50/50 -> 60/40, NLP-002 title, NLP-004 DOI; NLP-003 as it was.
    assert (job.works_created, job.works_updated, job.works_unchanged) == (0, 3, 1)
    works = {w.work_ref: w for w in Work.objects.filter(catalogue=catalogue)}
    assert works["NLP-002"].title == "Letters from the Harbour (2nd edition)"
    assert sorted(works["NLP-001"].shares.values_list("share_ppm", flat=True)) == [400_000, 600_000]
    assert list(works["NLP-004"].identifiers.values_list("value", flat=True)) == [
        "10.5555/quiet.engines.v2"
    ]
    assert works["NLP-003"].updated_at == nlp3_before.updated_at
    assert works["NLP-001"].updated_at > nlp3_before.updated_at
    assert works["NOT-IN-FILE"].updated_at == untouched.updated_at
    assert Work.objects.filter(catalogue=catalogue).count() == 5


def test_valid_only_mode_writes_the_valid_works_and_names_the_skipped(
    rights_holder, co_holder, catalogue
):
    content = data_file("catalogue_import_errors.csv", **holder_codes(co_holder))
    job = run_import(rights_holder, catalogue, content, mode=ImportMode.VALID_ONLY)

    assert job.status == JobStatus.SUCCEEDED
    assert list(Work.objects.values_list("work_ref", flat=True)) == ["OK-1"]
    assert (job.works_created, job.works_skipped, job.error_count) == (1, 8, 18)
    assert "8 works with errors were skipped" in job.message
    skipped = [r for r in report_rows(job) if r["message"].startswith("work skipped")]
    assert [(r["row"], r["value"]) for r in skipped] == [
        ("3", "BAD-1"),
        ("4", "BAD-2"),
        ("6", "BAD-3"),
        ("7", "BAD-4"),
        ("10", "BAD-5"),
        ("11", "BAD-6"),
        ("12", "BAD-7"),
        ("13", "BAD-8"),
    ]
    assert skipped[1]["message"] == "work skipped, not imported: it has errors on rows 4, 5"


def test_holder_codes_must_be_rights_holders(rights_holder, licensee, catalogue):
    content = (
        "work_ref,title,media_type,isbn,holder,share,role\n"
        "W1,T,text,9780439023481,,50,author\n"
        f"W1,T,text,9780439023481,{licensee.organisation.code},50,publisher\n"
    ).encode()
    job = run_import(rights_holder, catalogue, content)
    assert job.status == JobStatus.FAILED
    assert job.errors == [
        {
            "row": 3,
            "column": "holder",
            "message": "no rights holder has this registry code (e.g. RH-000042)",
        }
    ]


def test_xlsx_import_gives_the_same_repertoire_as_csv(
    rights_holder, co_holder, third_holder, catalogue
):
    openpyxl = pytest.importorskip("openpyxl")
    csv_content = data_file("catalogue_import_valid.csv", **holder_codes(co_holder, third_holder))
    workbook = openpyxl.Workbook()
    for record in csv.reader(io.StringIO(csv_content.decode())):
        workbook.active.append(record)
    buffer = io.BytesIO()
    workbook.save(buffer)
    xlsx_catalogue = Catalogue.objects.create(
        owner=rights_holder.organisation, name="From Excel", media_type="text"
    )

    from_xlsx = run_import(rights_holder, xlsx_catalogue, buffer.getvalue(), name="works.xlsx")
    from_csv = run_import(rights_holder, catalogue, csv_content)

    assert from_xlsx.status == JobStatus.SUCCEEDED, from_xlsx.message
    assert from_xlsx.works_created == from_csv.works_created == 4

    def content_of(cat):
        return (
            sorted(
                Work.objects.filter(catalogue=cat).values_list("work_ref", "title", "consent_rag")
            ),
            sorted(
                WorkIdentifier.objects.filter(work__catalogue=cat).values_list(
                    "work__work_ref", "scheme", "value"
                )
            ),
            sorted(
                Share.objects.filter(work__catalogue=cat).values_list(
                    "work__work_ref", "holder_id", "role", "share_ppm"
                )
            ),
        )

    assert content_of(xlsx_catalogue) == content_of(catalogue)


def test_same_isbn_claimed_by_two_holders_opens_a_conflict(rights_holder, co_holder, media_root):
    mine = Catalogue.objects.create(owner=rights_holder.organisation, name="A", media_type="text")
    theirs = Catalogue.objects.create(owner=co_holder.organisation, name="B", media_type="text")
    row = "work_ref,title,media_type,isbn\n{ref},Same book,text,{isbn}\n"
    run_import(rights_holder, mine, row.format(ref="A-1", isbn="978-0-439-02348-1").encode())

    job = run_import(co_holder, theirs, row.format(ref="B-1", isbn="0439023483").encode())

    assert job.status == JobStatus.SUCCEEDED
    assert "1 conflict opened" in job.message
    conflict = Conflict.objects.get()
    assert (conflict.scheme, conflict.value, conflict.claimed_ppm) == (
        "isbn",
        "9780439023481",
        2_000_000,
    )
    assert set(conflict.claimants.values_list("pk", flat=True)) == {
        rights_holder.organisation.pk,
        co_holder.organisation.pk,
    }
    assert set(Work.objects.values_list("status", flat=True)) == {WorkStatus.DISPUTED}


# --- the job ---------------------------------------------------------------------------------


def test_progress_reaches_100_and_is_reported_as_it_goes(rights_holder, co_holder, catalogue):
    seen: list[tuple[str, int]] = []
    content = data_file("catalogue_import_valid.csv", **holder_codes(co_holder))
    content = content.replace(b"{THIRD_HOLDER}", co_holder.organisation.code.encode()).replace(
        b"33.3334,publisher", b"33.3334,other"
    )
    job = run_import(
        rights_holder, catalogue, content, on_progress=lambda s, p, r: seen.append((s, p))
    )
    assert job.status == JobStatus.SUCCEEDED, job.message
    assert (job.percent, job.stage, job.rows_done, job.rows_total) == (100, "done", 7, 7)
    stages = [stage for stage, _ in seen]
    assert stages[0] == "reading" and stages[-2:] == ["checking conflicts", "committing"]
    assert {"validating", "writing works", "writing identifiers", "writing shares"} <= set(stages)
    percents = [percent for _, percent in seen]
    assert percents == sorted(percents)
    assert job.started_at <= job.finished_at


def test_a_job_runs_once_however_often_it_is_enqueued(rights_holder, catalogue):
    job = run_import(rights_holder, catalogue, b"work_ref,title,media_type,isbn\nW,T,text,1\n")
    assert imports.catalogue_import_run(import_id=job.pk) is None


def test_start_enqueues_the_job_after_commit(
    rights_holder, catalogue, django_capture_on_commit_callbacks
):
    content = b"work_ref,title,media_type,isbn\nW1,T,text,9780439023481\n"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = imports.catalogue_import_start(
            caller=caller_of(rights_holder), catalogue=catalogue, uploaded_file=upload(content)
        )
    assert len(callbacks) == 1
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.works_created == 1
    assert job.file_sha256 == hashlib.sha256(content).hexdigest()
    assert job.file_size == len(content)


def test_a_failure_while_writing_rolls_everything_back(rights_holder, catalogue, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    # The last step inside the write transaction: works, identifiers, shares are written.
    monkeypatch.setattr(imports, "_finish_succeeded", broken)
    job = imports.catalogue_import_start(
        caller=caller_of(rights_holder),
        catalogue=catalogue,
        uploaded_file=upload(b"work_ref,title,media_type,isbn\nW1,T,text,9780439023481\n"),
        enqueue=False,
    )
    with pytest.raises(RuntimeError):
        imports.catalogue_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "internal error; nothing was written" in job.message
    assert repertoire_counts() == (0, 0, 0)


def test_import_is_audited(rights_holder, catalogue):
    from accounts.models import AuditEvent

    job = run_import(rights_holder, catalogue, b"work_ref,title,media_type,isbn\nW,T,text,1\n")
    actions = list(
        AuditEvent.objects.filter(
            object_type="licensing.catalogueimport", object_id=str(job.pk)
        ).values_list("action", flat=True)
    )
    assert sorted(actions) == ["catalogue_import.fail", "catalogue_import.start"]


def test_staff_may_import_into_any_catalogue(operator, catalogue):
    staff = Caller(user=operator.user, organisation=operator.organisation, role=Role.ADMIN)
    job = imports.catalogue_import_start(
        caller=staff, catalogue=catalogue, uploaded_file=upload(b"a"), enqueue=False
    )
    assert job.catalogue_id == catalogue.pk


def test_raising_a_share_on_a_shared_isbn_opens_a_conflict(rights_holder, co_holder, media_root):
    """Only works this import wrote are checked, so an edit of shares alone must count."""
    mine = Catalogue.objects.create(owner=rights_holder.organisation, name="A", media_type="text")
    theirs = Catalogue.objects.create(owner=co_holder.organisation, name="B", media_type="text")
    rows = "work_ref,title,media_type,isbn,share\n{ref},Same book,text,9780439023481,{share}\n"
    run_import(rights_holder, mine, rows.format(ref="A-1", share="60").encode())
    first = run_import(co_holder, theirs, rows.format(ref="B-1", share="40").encode())
    assert "0 conflicts opened" in first.message and not Conflict.objects.exists()

    raised = run_import(co_holder, theirs, rows.format(ref="B-1", share="40.0001").encode())

    assert (raised.works_updated, raised.works_unchanged) == (1, 0)
    assert "1 conflict opened" in raised.message
    assert Conflict.objects.get().claimed_ppm == 1_000_001


def test_many_candidate_works_fall_back_to_checking_the_whole_catalogue(
    rights_holder, co_holder, media_root, monkeypatch
):
    monkeypatch.setattr(imports, "_CONFLICT_CANDIDATES_MAX", 0)
    mine = Catalogue.objects.create(owner=rights_holder.organisation, name="A", media_type="text")
    theirs = Catalogue.objects.create(owner=co_holder.organisation, name="B", media_type="text")
    rows = "work_ref,title,media_type,isbn\n{ref},Same book,text,9780439023481\n"
    run_import(rights_holder, mine, rows.format(ref="A-1").encode())
    job = run_import(co_holder, theirs, rows.format(ref="B-1").encode())
    assert "1 conflict opened" in job.message


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_progress_is_visible_to_other_connections_while_the_write_runs(
    rights_holder, co_holder, third_holder, catalogue
):
    """PostgreSQL: pages polling the job see the write stages before the commit."""
    from django.db import connection, connections

    if connection.vendor != "postgresql":
        skip_or_fail("PostgreSQL only: SQLite allows one writer, so progress shows at commit")
    seen: list[tuple[str, int]] = []

    def look(stage, percent, rows_done):
        if stage == "writing shares":
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:
                    cursor.execute("SELECT stage, percent FROM licensing_catalogueimport")
                    seen.extend(cursor.fetchall())
            finally:
                other.close()

    content = data_file("catalogue_import_valid.csv", **holder_codes(co_holder, third_holder))
    job = run_import(rights_holder, catalogue, content, on_progress=look)
    assert job.status == JobStatus.SUCCEEDED
    assert seen == [("writing shares", 75)]
