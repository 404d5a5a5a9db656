"""Snapshots of the identifier index (licensing.snapshots): read from the database once per
registry version, and never stale - a change to works, identifiers or consent is seen by the
next declaration."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from licensing import snapshots
from licensing.models import Catalogue, DeclarationStatus, Work, WorkIdentifier
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
from tests.licensing.factories import work_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        skip_or_fail(
            "the registry's change log and its snapshots are PostgreSQL's (SQLite reads the "
            "index every time): set DATABASE_URL"
        )


def postgres_only(test):
    """Marked `services` (CI runs it in its PostgreSQL step) and skipped elsewhere locally."""
    return pytest.mark.services(pytest.mark.usefixtures("postgresql")(test))


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee):
    return active_licence(licensee)


@pytest.fixture
def reads(monkeypatch):
    """How many times the index was read from the database."""
    counted = []
    real = snapshots.registry_index_read

    def counting():
        counted.append(1)
        return real()

    monkeypatch.setattr(snapshots, "registry_index_read", counting)
    return counted


def _snapshot_folders() -> list[Path]:
    root = Path(settings.REGISTRY_SNAPSHOT_DIR)
    return [p for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")]


@postgres_only
def test_the_index_is_read_once_per_registry_version(licensee, licence, works, reads):
    first = declare(licensee, licence, csv_file([("isbn", ISBN_A, 5)]))
    second = declare(licensee, licence, csv_file([("isbn", ISBN_A, 7)]), version="2")
    assert first.status == second.status == DeclarationStatus.ACCEPTED
    assert usage_by_work(second)[works["a"].pk] == (7, 1, False)
    assert len(reads) == 1  # the second declaration matched against the snapshot
    version = snapshots.registry_version()
    assert any(folder.name == version[1] for folder in _snapshot_folders())


@postgres_only
def test_an_identifier_added_after_the_snapshot_is_matched_by_the_next_declaration(
    licensee, licence, works, reads
):
    before = declare(licensee, licence, csv_file([("isbn", ISBN_UNKNOWN, 4)]))
    assert before.unmatched_quantity == 4
    WorkIdentifier.objects.create(work=works["b"], scheme="isbn", value=ISBN_UNKNOWN)
    after = declare(licensee, licence, csv_file([("isbn", ISBN_UNKNOWN, 4)]), version="2")
    assert after.unmatched_quantity == 0
    assert usage_by_work(after)[works["b"].pk] == (4, 1, False)
    assert len(reads) == 2
    # Only the current version is kept.
    assert [folder.name for folder in _snapshot_folders()] == [snapshots.registry_version()[1]]


@postgres_only
def test_an_identifier_removed_then_given_to_a_new_work_follows_the_registry(
    licensee, licence, works, rights_holder
):
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]))
    WorkIdentifier.objects.filter(work=works["a"], scheme="isbn").delete()
    gone = declare(licensee, licence, csv_file([("isbn", ISBN_A, 3)]), version="2")
    assert gone.unmatched_quantity == 3 and works["a"].pk not in usage_by_work(gone)

    extra = work_in(works["b"].catalogue, rights_holder, "Extra", isbn=ISBN_A)
    found = declare(licensee, licence, csv_file([("isbn", ISBN_A, 3)]), version="3")
    assert usage_by_work(found) == {extra.pk: (3, 1, False)}


@postgres_only
def test_a_change_of_consent_is_seen_by_the_next_declaration(licensee, licence, works, reads):
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]))
    Work.objects.filter(pk=works["a"].pk).update(consent_training="reserved")
    later = declare(licensee, licence, csv_file([("isbn", ISBN_A, 6)]), version="2")
    assert usage_by_work(later)[works["a"].pk] == (6, 1, True)
    assert (later.reserved_quantity, later.matched_quantity) == (6, 0)

    # A catalogue's default: its works without a consent of their own follow it.
    Catalogue.objects.filter(pk=works["b"].catalogue_id).update(default_consent="reserved")
    Work.objects.filter(pk=works["a"].pk).update(consent_training="licensed")
    last = declare(licensee, licence, csv_file([("isbn", ISBN_A, 2), ("isbn", ISBN_B, 3)]))
    assert usage_by_work(last) == {works["a"].pk: (2, 1, False), works["b"].pk: (3, 1, True)}
    assert len(reads) == 3  # each change of consent is a new version

    # A title is not part of the registry version.
    Work.objects.filter(pk=works["a"].pk).update(title="Renamed")
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 2)]), version="3")
    assert len(reads) == 3


@postgres_only
def test_a_damaged_snapshot_is_read_again_from_the_database(licensee, licence, works, reads):
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]))
    (folder,) = _snapshot_folders()
    (folder / "index.arrow").write_bytes(b"not arrow")
    again = declare(licensee, licence, csv_file([("isbn", ISBN_A, 2)]), version="2")
    assert usage_by_work(again)[works["a"].pk] == (2, 1, False)
    assert len(reads) == 2


def test_sqlite_keeps_no_snapshot_and_postgresql_keeps_one(licensee, licence, works, reads):
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 1)]))
    declare(licensee, licence, csv_file([("isbn", ISBN_A, 2)]), version="2")
    if connection.vendor == "sqlite":  # no change log: the index is read every time
        assert snapshots.registry_version() is None
        assert len(reads) == 2 and not _snapshot_folders()
    else:
        assert snapshots.registry_version() is not None
        assert len(reads) == 1 and _snapshot_folders()
