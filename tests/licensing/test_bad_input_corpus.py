"""The bad-input corpus (tests/data/bad/, written by make_corpus.py) through the real imports.

Every file ends in a clear outcome a person can act on (the message names the problem, and row
errors name the row, the column and the reason), within bounded time and memory, and a refused
file writes nothing. Files that are unusual but valid (a BOM, mixed line endings, quoted line
breaks, extra columns) import. Exports never emit a cell a spreadsheet would execute.
"""

from __future__ import annotations

import csv
import io
import resource
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest

from licensing.errors import ImportFileError
from licensing.models import JobStatus, Work
from tests.data.bad.make_corpus import catalogue_files
from tests.licensing.test_import_support import repertoire_counts, run_import

pytest_plugins = ["tests.licensing.test_import_support"]  # its fixtures

pytestmark = pytest.mark.django_db

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"
SECONDS = 60  # far above any of these files' real time: a hang fails the test, not CI
MEMORY_MB = 600  # growth of the process's peak RSS while one file is handled

# name -> (status, fragments of the message, [(row, column, fragment of the reason)], works)
CATALOGUE = {
    "utf16_bom.csv": ("failed", ["UTF-16, not UTF-8"], [], 0),
    "latin1_accents.csv": ("failed", ["not UTF-8", "line 2", "CSV UTF-8"], [], 0),
    "utf8_bom.csv": ("succeeded", ["Imported 3 works"], [], 3),
    "mixed_line_endings.csv": ("succeeded", ["Imported 3 works"], [], 3),
    "missing_required_columns.csv": (
        "failed",
        ["missing the required column(s) title, media_type", "Found: work_ref, isbn"],
        [],
        0,
    ),
    "extra_columns.csv": ("succeeded", ["Ignored unknown columns: shoe_size, notes"], [], 3),
    "ragged_rows.csv": ("failed", ["not valid CSV", "12 fields where the header has 10"], [], 0),
    "quoted_newlines.csv": ("succeeded", ["Imported 2 works"], [], 2),
    "huge_field.csv": ("failed", ["Nothing was imported"], [(2, "title", "longer than 500")], 0),
    "scientific_notation.csv": (
        "failed",
        ["2 errors"],
        [(2, "isbn", "scientific notation"), (3, "share", "scientific notation")],
        0,
    ),
    "negative_and_fractional_shares.csv": (
        "failed",
        ["3 errors"],
        [
            (2, "share", "more than 0"),
            (3, "share", "at most 4 decimals"),
            (4, "share", "percentage such as 50"),
        ],
        0,
    ),
    "duplicated_rows.csv": (
        "failed",
        ["1 error"],
        [(3, "holder", "has a share as author on this work already, on row 2")],
        0,
    ),
    "formula_injection.csv": ("succeeded", ["Imported 3 works"], [], 3),
    "header_only.csv": ("failed", ["a header but no rows"], [], 0),
    "blank_lines_only.csv": ("failed", ["The file is empty"], [], 0),
    "nul_bytes.csv": ("failed", ["1 error"], [(2, "title", "NUL character")], 0),
    "binary_png.csv": ("failed", ["not UTF-8", "89 50 4e 47"], [], 0),
    "semicolon_delimited.csv": ("failed", ["uses ';' between columns"], [], 0),
    "xlsx_zip_bomb.xlsx": ("failed", ["would inflate to 1,073,", "refused unread"], [], 0),
    "not_really.xlsx": ("failed", ["XLSX workbook cannot be read"], [], 0),
}


def test_the_corpus_on_disk_is_what_the_generator_writes():
    generated = catalogue_files()
    on_disk = {p.name for p in (BAD / "catalogue").iterdir()}
    assert on_disk == {name for name in generated if not name.startswith("huge_")}
    for name in on_disk:
        assert (BAD / "catalogue" / name).read_bytes() == generated[name], name
    assert set(generated) == set(CATALOGUE)


@contextmanager
def bounded(name: str):
    """Fail (not hang) past SECONDS; fail if peak RSS grew by more than MEMORY_MB."""

    def alarm(signum, frame):
        raise TimeoutError(f"{name} took longer than {SECONDS}s")

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < MEMORY_MB, f"{name}: peak RSS grew by {grown_mb:.0f} MB"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_bad_catalogue_file_gets_a_clear_outcome_and_nothing_half_written(
    name, rights_holder, catalogue
):
    status, fragments, row_errors, works = CATALOGUE[name]
    content = catalogue_files()[name]
    with bounded(name):
        job = run_import(rights_holder, catalogue, content, name=name)
    assert job.status == (JobStatus.SUCCEEDED if status == "succeeded" else JobStatus.FAILED)
    for fragment in fragments:
        assert fragment in job.message, (name, job.message)
    got = [(e["row"], e["column"], e["message"]) for e in job.errors]
    assert len(got) == len(row_errors), (name, got)
    for (row, column, reason), (got_row, got_column, got_reason) in zip(
        row_errors, got, strict=True
    ):
        assert (got_row, got_column) == (row, column)
        assert reason in got_reason
    assert repertoire_counts()[0] == works
    assert job.percent == 100 and job.finished_at is not None


def test_an_upload_over_the_size_limit_is_refused_before_it_is_read(
    rights_holder, catalogue, settings
):
    from tests.licensing.test_import_support import caller_of, upload

    settings.CATALOGUE_IMPORT_MAX_BYTES = 1_000_000
    with pytest.raises(ImportFileError) as caught:
        from licensing.services import imports

        imports.catalogue_import_start(
            caller=caller_of(rights_holder),
            catalogue=catalogue,
            uploaded_file=upload(catalogue_files()["huge_field.csv"]),
        )
    assert caught.value.code == "file_too_large"
    assert not catalogue.imports.exists()


def test_quoted_line_breaks_survive_as_data(rights_holder, catalogue):
    run_import(rights_holder, catalogue, catalogue_files()["quoted_newlines.csv"])
    assert Work.objects.get(work_ref="BAD-1").title in ("The Winter\nOrchard", "The Winter Orchard")


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def assert_no_executable_cells(content: bytes, what: str) -> int:
    """Parse a CSV export; no cell may start like a spreadsheet formula. Returns the cells."""
    text = content.decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    bad = [cell for cell in cells if cell.startswith(FORMULA_START)]
    assert not bad, f"{what} emits executable cells: {bad[:5]}"
    return len(cells)


def test_exports_of_formula_like_data_never_emit_an_executable_cell(
    rights_holder, catalogue, client
):
    from licensing.models import Consent

    run_import(rights_holder, catalogue, catalogue_files()["formula_injection.csv"])
    assert Work.objects.filter(title__startswith="=HYPERLINK").exists()  # kept as data
    Work.objects.filter(catalogue=catalogue).update(consent_training=Consent.RESERVED)
    # The import's error report (of a file whose bad rows start with formulas).
    bad = (
        b"work_ref,title,media_type,isbn\n"
        b"=cmd,=HYPERLINK(1),text,=9780439023481\n"
        b"+W2,-2+3,text,@SUM(1)\n"
    )
    job = run_import(rights_holder, catalogue, bad, name="bad.csv")
    assert job.status == JobStatus.FAILED and job.error_report
    with job.error_report.open("rb") as handle:
        assert assert_no_executable_cells(handle.read(), "import error report") > 4
    client.force_login(rights_holder.user)
    response = client.get(f"/imports/{job.pk}/errors.csv")
    if response.status_code == 200:
        assert_no_executable_cells(b"".join(response), "import error report page")
    # The public reservation feed lists the reserved works' identifiers.
    feed = client.get("/api/v1/registry/reservations.csv")
    assert feed.status_code == 200
    assert assert_no_executable_cells(b"".join(feed.streaming_content), "reservation feed") > 6


# --- declaration files --------------------------------------------------------------------------

# name -> (status, fragments of the message, [(row, column, fragment)], declared quantity)
DECLARATION = {
    "utf16_bom.csv": ("rejected", ["not UTF-8"], [], 0),
    "utf8_bom.csv": ("accepted", ["Accepted 2 lines (1,500 tokens)"], [], 1_500),
    "mixed_line_endings.csv": ("rejected", ["Line 2", "bare carriage return"], [], 0),
    "missing_columns.csv": ("rejected", ["no scheme, quantity columns"], [], 0),
    "extra_columns.csv": ("accepted", ["Accepted 2 lines"], [], 1_500),
    "quoted_newlines.csv": ("accepted", ["Accepted 2 lines"], [], 1_500),
    "huge_field.csv": ("rejected", ["Line 2", "longer than"], [], 0),
    "scientific_notation.csv": (
        "rejected",
        ["1 error"],
        [(2, "quantity", "whole number")],
        0,
    ),
    "negative_quantity.csv": ("rejected", ["1 error"], [(3, "quantity", "not be negative")], 0),
    "fractional_quantity.csv": ("rejected", ["1 error"], [(3, "quantity", "whole number")], 0),
    "duplicated_rows.csv": ("accepted", ["Accepted 3 lines (2,500 tokens)"], [], 2_500),
    "formula_injection.csv": ("accepted", ["1 unmatched"], [], 1_010),
    "mixed_units.csv": ("rejected", ["mixes units"], [(3, "unit", "one unit per declaration")], 0),
    "unknown_scheme.csv": ("rejected", ["1 error"], [(3, "scheme", "unknown scheme")], 0),
    "header_only.csv": ("rejected", ["no lines", "nil declaration"], [], 0),
    "binary_garbage.csv": ("rejected", ["not UTF-8"], [], 0),
    "gzip_bomb.csv.gz": ("rejected", ["inflates to more than"], [], 0),
    "gzip_truncated.csv.gz": ("rejected", ["compressed file is cut short"], [], 0),
}


def test_the_declaration_corpus_on_disk_is_what_the_generator_writes():
    from tests.data.bad.make_corpus import declaration_files

    generated = declaration_files()
    on_disk = {p.name for p in (BAD / "declaration").iterdir()}
    assert on_disk == {name for name in generated if not name.startswith("huge_")}
    for name in on_disk:
        assert (BAD / "declaration" / name).read_bytes() == generated[name], name
    assert set(generated) == set(DECLARATION)


@pytest.mark.parametrize("name", sorted(DECLARATION))
def test_each_bad_declaration_file_gets_a_clear_outcome_and_nothing_half_written(
    name, licensee, rights_holder, media_root, settings
):
    from django.core.files.base import ContentFile

    from licensing.models import DeclarationUnmatched, DeclarationWorkUsage
    from tests.data.bad.make_corpus import declaration_files
    from tests.licensing.declarations_support import active_licence, declare, repertoire

    settings.DECLARATION_MAX_INFLATED_BYTES = 50_000_000  # the bomb inflates to 120 MB
    repertoire(rights_holder)
    licence = active_licence(licensee)
    status, fragments, row_errors, declared = DECLARATION[name]
    with bounded(name):
        declaration = declare(licensee, licence, ContentFile(declaration_files()[name], name=name))
    assert declaration.status == status, (name, declaration.message)
    for fragment in fragments:
        assert fragment in declaration.message, (name, declaration.message)
    assert "/tmp" not in declaration.message and "media/" not in declaration.message
    got = [(e["row"], e["column"], e["message"]) for e in declaration.errors]
    assert len(got) == len(row_errors), (name, got)
    for (row, column, reason), (got_row, got_column, got_reason) in zip(
        row_errors, got, strict=True
    ):
        assert (got_row, got_column) == (row, column) and reason in got_reason
    assert declaration.declared_quantity == declared
    if status == "rejected":
        assert not DeclarationWorkUsage.objects.filter(declaration=declaration).exists()
        assert not DeclarationUnmatched.objects.filter(declaration=declaration).exists()
