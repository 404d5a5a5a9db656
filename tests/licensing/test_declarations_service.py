"""Filing and processing usage declarations through the service (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditEvent
from config.errors import DomainError
from licensing.models import (
    DeclarationStatus,
    DeclarationUnmatched,
    DeclarationWorkUsage,
    LicenceProduct,
    UsageDeclaration,
    Work,
)
from licensing.services import declarations as declarations_service
from licensing.services.declarations import (
    declaration_file_start,
    declaration_nil_file,
    declaration_process,
    period_parse,
)
from tests.conftest import skip_or_fail
from tests.licensing.declarations_support import (
    ISBN_A,
    ISBN_B,
    ISBN_UNKNOWN,
    active_licence,
    csv_file,
    declare,
    repertoire,
    usage_by_work,
)
from tests.licensing.factories import caller_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee):
    return active_licence(licensee)


def test_every_scheme_matches_its_work(licensee, licence, works):
    rows = [
        ("isbn", "0-439-02348-3", 10),
        ("isbn", "978-0-306-40615-7", 20),
        ("issn", "03178471", 30),
        ("doi", "https://doi.org/10.1000/JOURNAL.ABC", 40),
        ("isrc", "US-RC1-76-07839", 50),
        ("iswc", "T-034.524.680-1", 60),
        ("url", "HTTPS://Example.com:443/books/1#top", 70),
        ("sha256", "AB" * 32, 80),
        ("iscc", "KUAFVC5DMJJGYKZ4MQV6B6THIBBUG", 90),
        ("work_id", str(works["a"].pk), 5),
    ]
    declaration = declare(licensee, licence, csv_file(rows))
    assert declaration.status == DeclarationStatus.ACCEPTED, declaration.message
    usage = usage_by_work(declaration)
    assert usage[works["a"].pk] == (15, 2, False)
    for name, quantity in [
        ("b", 20),
        ("issn", 30),
        ("doi", 40),
        ("isrc", 50),
        ("iswc", 60),
        ("url", 70),
        ("sha256", 80),
        ("iscc", 90),
    ]:
        assert usage[works[name].pk] == (quantity, 1, False), name
    assert declaration.declared_quantity == declaration.matched_quantity == 455
    assert (declaration.lines, declaration.matched_lines, declaration.works_matched) == (10, 10, 9)
    assert declaration.unit == "tokens"
    assert declaration.licence.licensee_id == licensee.organisation.pk


def test_unmatched_and_reserved_usage_are_counted_apart(licensee, licence, works):
    rows = [
        ("isbn", ISBN_A, 7),
        ("isbn", "978-1-86197-271-2", 5),
        ("isbn", ISBN_UNKNOWN, 6),
        ("isbn", "not-an-isbn", 2),
        ("isbn", "9780140449136", 100),
    ]
    declaration = declare(licensee, licence, csv_file(rows, header="scheme,identifier,quantity"))
    assert declaration.status == DeclarationStatus.ACCEPTED
    assert (declaration.matched_quantity, declaration.unmatched_quantity) == (7, 13)
    assert (declaration.reserved_quantity, declaration.reserved_lines) == (100, 1)
    assert declaration.declared_quantity == 120
    assert usage_by_work(declaration)[works["reserved"].pk] == (100, 1, True)
    pool = {(u.identifier, u.valid): (u.quantity, u.lines) for u in declaration.unmatched.all()}
    assert pool == {(ISBN_UNKNOWN, True): (11, 2), ("not-an-isbn", False): (2, 1)}


def test_a_corrected_declaration_supersedes_the_previous_one(licensee, licence, works):
    first = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]))
    other_model = declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]), version="2")
    second = declare(licensee, licence, csv_file([("isbn", ISBN_A, 8)]))
    first.refresh_from_db()
    other_model.refresh_from_db()
    assert first.status == DeclarationStatus.SUPERSEDED
    assert second.status == DeclarationStatus.ACCEPTED and second.supersedes_id == first.pk
    assert other_model.status == DeclarationStatus.ACCEPTED
    assert usage_by_work(first)[works["a"].pk] == (5, 1, False)  # history kept
    accepted = UsageDeclaration.objects.filter(
        licence=licence, status=DeclarationStatus.ACCEPTED, model_version="1"
    )
    assert list(accepted) == [second]


def test_a_nil_declaration_is_explicit_and_supersedes_too(licensee, licence, works):
    first = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]))
    nil = declaration_nil_file(
        caller=caller_of(licensee),
        licence=licence,
        period="2026-Q3",
        model_name="aleph",
        model_version="1",
    )
    first.refresh_from_db()
    assert nil.nil and nil.status == DeclarationStatus.ACCEPTED and nil.declared_quantity == 0
    assert first.status == DeclarationStatus.SUPERSEDED


@pytest.mark.parametrize(
    ("rows", "header", "expected"),
    [
        (
            [("isbn", ISBN_A, 1, "tokens"), ("isbn", ISBN_A, 1, "bytes")],
            "scheme,identifier,quantity,unit",
            "mixes units",
        ),
        ([("isbn", ISBN_A, 1), ("ean", "1", 1)], "scheme,identifier,quantity", "1 error"),
        ([("isbn", ISBN_A, 1), ("isbn", ISBN_A, -4)], "scheme,identifier,quantity", "1 error"),
        ([("isbn", ISBN_A, 1), ("isbn", ISBN_A, 2.5)], "scheme,identifier,quantity", "1 error"),
    ],
)
def test_a_rejected_file_writes_nothing(licensee, licence, works, rows, header, expected):
    previous = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]))
    declaration = declare(licensee, licence, csv_file(rows, header=header))
    assert declaration.status == DeclarationStatus.REJECTED
    assert expected in declaration.message
    assert declaration.error_count >= 1 and declaration.errors[0]["row"] == 3
    assert declaration.error_report
    assert not DeclarationWorkUsage.objects.filter(declaration=declaration).exists()
    assert not DeclarationUnmatched.objects.filter(declaration=declaration).exists()
    previous.refresh_from_db()
    assert previous.status == DeclarationStatus.ACCEPTED  # the rejected file superseded nothing


def test_a_file_that_is_not_utf8_is_rejected_clearly(licensee, licence, works):
    upload = ContentFile(
        "scheme,identifier,quantity,title\nisbn,1,1,Café\n".encode("cp1252"), name="usage.csv"
    )
    declaration = declare(licensee, licence, upload)
    assert declaration.status == DeclarationStatus.REJECTED
    assert "not UTF-8" in declaration.message
    assert not declaration.work_usage.exists()


def test_a_period_outside_the_licence_term_is_refused(licensee, licence):
    with pytest.raises(DomainError) as caught:
        declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]), period="2027-Q2")
    assert caught.value.code == "period_outside_term"
    assert "outside the licence term" in caught.value.message
    assert not UsageDeclaration.objects.exists()


def test_a_period_overlapping_the_term_is_clipped_to_it(licensee):
    licence = active_licence(licensee, starts=dt.date(2026, 8, 15))
    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]), period="2026-Q3")
    assert (declaration.period, declaration.period_start, declaration.period_end) == (
        "2026-Q3",
        dt.date(2026, 8, 15),
        dt.date(2026, 9, 30),
    )
    assert declaration.deadline == dt.date(2026, 10, 30)


def test_periods_parse_as_quarters_and_months():
    assert period_parse("2026-q4") == ("2026-Q4", dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert period_parse("2026-02") == ("2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    with pytest.raises(DomainError):
        period_parse("Q3 2026")


def test_an_outsider_cannot_file_against_someone_elses_licence(outsider, licence):
    with pytest.raises(DomainError) as caught:
        declare(outsider, licence, csv_file([("isbn", ISBN_A, 1)]))
    assert caught.value.code == "not_found"


def test_filing_and_outcome_are_audited(licensee, licence, works):
    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)], gz=True))
    assert declaration.status == DeclarationStatus.ACCEPTED
    actions = set(
        AuditEvent.objects.filter(object_id=str(declaration.pk)).values_list("action", flat=True)
    )
    assert {"declaration.file", "declaration.accept"} <= actions


def test_the_command_files_a_declaration(licensee, licence, works, tmp_path, capsys):
    path = tmp_path / "usage.csv"
    path.write_text(f"scheme,identifier,quantity\nisbn,{ISBN_A},12\n")
    call_command(
        "declare_usage",
        str(path),
        licence=licence.pk,
        period="2026-Q3",
        model="aleph",
        model_version="3",
    )
    assert "accepted" in capsys.readouterr().out
    declaration = UsageDeclaration.objects.get(model_version="3")
    assert usage_by_work(declaration) == {works["a"].pk: (12, 1, False)}
    path.write_text("scheme,identifier,quantity\nisbn,x,-1\n")
    with pytest.raises(CommandError):
        call_command(
            "declare_usage",
            str(path),
            licence=licence.pk,
            period="2026-Q3",
            model="aleph",
            model_version="3",
        )


def test_the_sweeper_redrives_a_declaration_left_behind(licensee, licence, works):
    from django.utils import timezone

    from licensing.services.declarations import declaration_file_start, declarations_sweep

    declaration = declaration_file_start(
        caller=caller_of(licensee),
        licence=licence,
        period="2026-Q3",
        model_name="aleph",
        model_version="1",
        uploaded_file=csv_file([("isbn", ISBN_A, 3)]),
        enqueue=False,
    )
    UsageDeclaration.objects.filter(pk=declaration.pk).update(
        status=DeclarationStatus.PROCESSING,
        started_at=timezone.now() - dt.timedelta(hours=3),
        created_at=timezone.now() - dt.timedelta(hours=3),
    )
    assert declarations_sweep() == 1  # eager Celery: processed right away
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.ACCEPTED
    assert usage_by_work(declaration) == {works["a"].pk: (3, 1, False)}
    assert declarations_sweep() == 0


def test_the_command_files_a_nil_declaration(licensee, licence, capsys):
    LicenceProduct.objects.filter(pk=licence.product_id).update(declaration_period="month")
    call_command(
        "declare_usage",
        licence=licence.pk,
        period="2026-07",
        model="aleph",
        model_version="9",
        nil=True,
    )
    declaration = UsageDeclaration.objects.get(model_version="9")
    assert declaration.nil and declaration.status == DeclarationStatus.ACCEPTED
    assert (declaration.period_start, declaration.period_end) == (
        dt.date(2026, 7, 1),
        dt.date(2026, 7, 31),
    )


def test_matching_unmatched_usage_to_a_reserved_work_counts_it_as_reserved(
    licensee, operator, licence, works
):
    from licensing.services.declarations import declaration_unmatched_match

    declaration = declare(licensee, licence, csv_file([("isbn", ISBN_UNKNOWN, 9)]))
    moved = declaration_unmatched_match(
        caller=caller_of(operator), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["reserved"]
    )
    declaration.refresh_from_db()
    assert moved == [declaration.pk]
    assert (declaration.reserved_quantity, declaration.unmatched_quantity) == (9, 0)
    assert usage_by_work(declaration) == {works["reserved"].pk: (9, 1, True)}
    with pytest.raises(DomainError):
        declaration_unmatched_match(
            caller=caller_of(licensee), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["a"]
        )


def test_the_period_follows_the_products_declaration_frequency(licensee, licence):
    """Quarterly products take quarters (2026-Q3), monthly products months (2026-07)."""
    from licensing.errors import LicensingError
    from licensing.services.declarations import _licence_period

    assert _licence_period(licence, "2026-Q3")[0] == "2026-Q3"
    with pytest.raises(LicensingError, match="declared by quarter: give a period such as 2026-Q3"):
        _licence_period(licence, "2026-07")
    LicenceProduct.objects.filter(pk=licence.product_id).update(declaration_period="month")
    licence.refresh_from_db()
    licence.product.refresh_from_db()
    assert _licence_period(licence, "2026-07")[0] == "2026-07"
    with pytest.raises(LicensingError, match="declared by month"):
        _licence_period(licence, "2026-Q3")


def test_progress_is_reported_stage_by_stage(licensee, licence, works):
    """The registry is read while the file is parsed (in another thread); the stages are
    still reported in order, from the job's own thread."""
    declaration = declaration_file_start(
        caller=caller_of(licensee),
        licence=licence,
        period="2026-Q3",
        model_name="aleph",
        model_version="1",
        uploaded_file=csv_file([("isbn", ISBN_A, 5), ("isbn", ISBN_UNKNOWN, 2)]),
        enqueue=False,
    )
    seen = []
    declaration_process(
        declaration_id=declaration.pk, on_progress=lambda stage, percent: seen.append(stage)
    )
    assert seen == [
        "reading",
        "parsing",
        "validating",
        "normalising",
        "matching",
        "aggregating",
        "writing",
    ]
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.ACCEPTED
    assert set(declaration.timings) >= {"index", "parse", "normalise", "match", "write"}


def test_a_matched_work_gone_since_the_export_rejects_the_declaration(
    licensee, licence, works, monkeypatch
):
    """The works the matcher was given are checked at the write: if one it matched no longer
    exists, nothing is written; one that went away unmatched does not matter."""
    real = declarations_service.declaration_index_export
    ghost = 10**12

    def export_with_a_ghost(*, licence):
        index, known = real(licence=licence)
        index = pa.concat_tables(
            [index, pa.table({"scheme": ["isbn"], "value": [ISBN_UNKNOWN], "work_id": [ghost]})]
        )
        known = pa.concat_tables([known, pa.table({"work_id": [ghost], "reserved": [False]})])
        return index, known

    monkeypatch.setattr(declarations_service, "declaration_index_export", export_with_a_ghost)
    # No change log (as on SQLite): the works are checked by their fingerprint and lookup.
    monkeypatch.setattr(declarations_service, "registry_version", lambda: None)
    rejected = declare(
        licensee, licence, csv_file([("isbn", ISBN_A, 5), ("isbn", ISBN_UNKNOWN, 3)])
    )
    assert rejected.status == DeclarationStatus.REJECTED
    assert "deleted while the declaration was being processed" in rejected.message
    assert not DeclarationWorkUsage.objects.filter(declaration=rejected).exists()
    assert not DeclarationUnmatched.objects.filter(declaration=rejected).exists()

    accepted = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]), version="2")
    assert accepted.status == DeclarationStatus.ACCEPTED, accepted.message
    assert usage_by_work(accepted) == {works["a"].pk: (5, 1, False)}


def test_a_matched_work_deleted_after_the_export_rejects_the_declaration(
    licensee, licence, works, monkeypatch
):
    """A work really deleted between the export of the index and the write (on PostgreSQL
    the registry's change log then differs, so the works are checked again): nothing is
    written, and the declaration says why."""
    real = declarations_service.declaration_index_export

    def export_then_delete(*, licence):
        exported = real(licence=licence)
        Work.objects.filter(pk=works["b"].pk).delete()
        return exported

    monkeypatch.setattr(declarations_service, "declaration_index_export", export_then_delete)
    rejected = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5), ("isbn", ISBN_B, 3)]))
    assert rejected.status == DeclarationStatus.REJECTED
    assert "deleted while the declaration was being processed" in rejected.message
    assert not DeclarationWorkUsage.objects.filter(declaration=rejected).exists()
    assert not DeclarationUnmatched.objects.filter(declaration=rejected).exists()


def test_an_unchanged_registry_skips_the_scan_of_the_works(licensee, licence, works):
    """With the registry's version unchanged since the export, the write does not count the
    works again (PostgreSQL; SQLite keeps no change log and always scans)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        accepted = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]))
    assert accepted.status == DeclarationStatus.ACCEPTED, accepted.message
    scans = [q["sql"] for q in queries if "coalesce(sum(id), 0)" in q["sql"]]
    assert len(scans) == (0 if connection.vendor == "postgresql" else 1)


def _partitions(connection) -> dict[str, str]:
    """{partition: bound} of the work usage table, and its indexes' partitions by parent."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [DeclarationWorkUsage._meta.db_table],
        )
        return dict(cursor.fetchall())


@pytest.mark.services
def test_a_large_declaration_gets_a_partition_of_its_own(
    licensee, operator, licence, works, settings
):
    """PostgreSQL: a declaration of DECLARATION_PARTITION_ROWS matched works or more writes
    its usage into its own partition (indexes built in bulk, then attached); smaller ones go
    to the DEFAULT partition. Every reader sees the rows through the table, as before, and
    hand matching adds rows to either."""
    from django.db import connection

    from licensing.services.declarations import declaration_unmatched_match

    if connection.vendor != "postgresql":
        skip_or_fail("the work usage is partitioned on PostgreSQL only: set DATABASE_URL")
    settings.DECLARATION_PARTITION_ROWS = 2
    large = declare(
        licensee,
        licence,
        csv_file([("isbn", ISBN_A, 5), ("isbn", ISBN_B, 7), ("isbn", ISBN_UNKNOWN, 3)]),
    )
    small = declare(licensee, licence, csv_file([("isbn", ISBN_A, 11)]), model="beth")
    assert large.status == small.status == DeclarationStatus.ACCEPTED
    table = DeclarationWorkUsage._meta.db_table
    partitions = _partitions(connection)
    assert partitions[f"{table}_{large.pk}"] == f"FOR VALUES IN ('{large.pk}')"
    assert partitions[f"{table}_default"] == "DEFAULT"
    assert f"{table}_{small.pk}" not in partitions
    with connection.cursor() as cursor:  # its indexes are the parent's indexes' partitions
        cursor.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhrelid IN "
            "(SELECT indexrelid FROM pg_index WHERE indrelid = %s::regclass)",
            [f"{table}_{large.pk}"],
        )
        assert cursor.fetchone()[0] == 2
    assert usage_by_work(large) == {works["a"].pk: (5, 1, False), works["b"].pk: (7, 1, False)}
    assert usage_by_work(small) == {works["a"].pk: (11, 1, False)}
    by_work = DeclarationWorkUsage.objects.filter(work=works["a"]).order_by("declaration_id")
    assert list(by_work.values_list("declaration_id", "quantity")) == [
        (large.pk, 5),
        (small.pk, 11),
    ]
    moved = declaration_unmatched_match(
        caller=caller_of(operator), scheme="isbn", identifier=ISBN_UNKNOWN, work=works["issn"]
    )
    assert moved == [large.pk]
    assert usage_by_work(large)[works["issn"].pk] == (3, 1, False)
    assert DeclarationUnmatched.objects.filter(declaration=large).count() == 0
    large.delete()
    assert not DeclarationWorkUsage.objects.filter(declaration_id=large.pk).exists()
