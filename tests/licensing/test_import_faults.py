"""Catalogue imports under faults: real Celery workers on a private Redis, PostgreSQL.

A **run** is one seed: a fresh catalogue, a generated valid file (150-300 works, an ISBN each,
a DOI on every third, a co-holder on every fourth), uploaded through
`catalogue_import_start` so that the real task runs on a worker, with one fault, the kinds in
turn (`tests.faults_support.FaultRunner`):

- kill: the worker dies of SIGKILL at `import.before_claim` (the message taken, nothing
  done), `import.after_claim` (the job running), `import.mid` (read and validated, nothing
  written) or `import.after_write` (everything written, the job not yet succeeded: the
  transaction dies with the process);
- redis: killed and restarted empty, with the job's message queued (lost) or while a worker
  waits in the middle of the job (`import.mid`, `import.after_write`);
- stall: a live worker stops at `import.after_claim` or `import.mid` past the running age,
  the sweeper requeues the job and another worker runs it; then the stalled one carries on
  (it must find its claim taken and write nothing);
- postgres (only with `BLANKET_FAULTS_PG_CLUSTER`, the test database on that private
  cluster: `bench/faults.py` sets it up): restarted with the job queued (idle workers' pooled
  connections cut) or while a worker waits in the middle of it.

This process plays beat: `catalogue_imports_sweep()` every quarter second, with the pending
and running ages at 1 s and 3 s (600 s and 7200 s in production). After each run: the job
succeeded, and the catalogue holds exactly the works, identifiers and shares of a clean import
of the same file (computed from the generator, and checked once against a clean import), with
no duplicate.

`BLANKET_FAULT_RUNS` / `BLANKET_FAULT_SEED` choose the runs (`bench/faults.py --job imports`),
`BLANKET_FAULT_SEEDS=...` replays some.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import OperationalError
from django.db.models import Count
from django.utils import timezone

from accounts.models import OrganisationKind
from licensing.models import CatalogueImport, JobStatus, Share, Work, WorkIdentifier
from licensing.services import imports
from licensing.services.imports import (
    catalogue_import_run,
    catalogue_import_start,
    catalogue_imports_sweep,
)
from tests.conftest import _persona
from tests.faults_support import (
    FaultRunner,
    Job,
    PrivatePostgres,
    fault_pool,
    isbn13,
    private_redis_server,
    run_faults,
    runs_wanted,
    seed_base,
)
from tests.licensing.factories import caller_of, catalogue_for

services = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

CI_RUNS = 3  # bench/faults.py runs 50 and more


def catalogue_file(seed: int, rng: random.Random, co_holder_code: str) -> tuple[bytes, dict]:
    """A valid catalogue file and the rows a clean import of it writes."""
    works = rng.randint(150, 300)
    lines = ["work_ref,title,media_type,isbn,doi,holder,share"]
    identifiers = shares = 0
    for i in range(works):
        isbn = isbn13(seed * 1000 + i)
        doi = f"10.5555/faults.{seed}.{i}" if i % 3 == 0 else ""
        identifiers += 1 + bool(doi)
        if i % 4 == 0:
            lines.append(f"W{i},Work {i},text,{isbn},{doi},,60")
            lines.append(f"W{i},Work {i},text,{isbn},{doi},{co_holder_code},40")
            shares += 2
        else:
            lines.append(f"W{i},Work {i},text,{isbn},{doi},,100")
            shares += 1
    data = ("\n".join(lines) + "\n").encode()
    return data, {"works": works, "identifiers": identifiers, "shares": shares}


def catalogue_rows(catalogue_id: int) -> dict:
    works = Work.objects.filter(catalogue_id=catalogue_id)
    duplicates = (
        WorkIdentifier.objects.filter(work__catalogue_id=catalogue_id)
        .values("scheme", "value")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )
    return {
        "works": works.count(),
        "identifiers": WorkIdentifier.objects.filter(work__catalogue_id=catalogue_id).count(),
        "shares": Share.objects.filter(work__catalogue_id=catalogue_id).count(),
        "duplicate_identifiers": duplicates,
    }


class ImportJob(Job):
    name = "imports"
    kill_points = ("import.before_claim", "import.after_claim", "import.mid", "import.after_write")
    mid_points = ("import.mid", "import.after_write")
    stall_points = ("import.after_claim", "import.mid")
    terminal = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})

    def __init__(self, holder, co_holder):
        self.holder, self.co_holder = holder, co_holder
        self.expected: dict[int, dict] = {}
        self.seed = 0

    def upload(self, seed: int, rng: random.Random, *, enqueue: bool) -> CatalogueImport:
        data, expected = catalogue_file(seed, rng, self.co_holder.organisation.code)
        catalogue = catalogue_for(self.holder, f"Faults {seed} {'async' if enqueue else 'clean'}")
        job = catalogue_import_start(
            caller=caller_of(self.holder),
            catalogue=catalogue,
            uploaded_file=ContentFile(data, name=f"faults-{seed}.csv"),
            enqueue=enqueue,
        )
        self.expected[job.pk] = {**expected, "duplicate_identifiers": 0}
        return job

    def submit(self, rng: random.Random) -> CatalogueImport:
        self.seed += 1
        return self.upload(rng.randint(1, 900_000), rng, enqueue=True)

    def state(self, handle) -> str:
        return CatalogueImport.objects.filter(pk=handle.pk).values_list("status", flat=True).get()

    def describe(self, handle) -> str:
        return str(
            CatalogueImport.objects.filter(pk=handle.pk).values("status", "stage", "message").get()
        )

    def sweep(self) -> None:
        catalogue_imports_sweep()

    def check(self, handle) -> dict:
        job = CatalogueImport.objects.get(pk=handle.pk)
        assert job.status == JobStatus.SUCCEEDED, (job.status, job.stage, job.message)
        rows = catalogue_rows(job.catalogue_id)
        assert rows == self.expected[job.pk], (rows, self.expected[job.pk])
        expected_works = self.expected[job.pk]["works"]
        reported = job.works_created + job.works_updated + job.works_unchanged
        assert reported == expected_works, (reported, expected_works)
        return {"works": rows["works"]}


@pytest.fixture
def fault_redis():
    with private_redis_server() as server:
        yield server


@pytest.fixture
def import_job(rights_holder, settings):
    settings.CATALOGUE_IMPORT_PENDING_SECONDS = 1
    settings.CATALOGUE_IMPORT_RUNNING_SECONDS = 3
    co_holder = _persona(OrganisationKind.RIGHTS_HOLDER, name="Faults Co-Holder")
    job = ImportJob(rights_holder, co_holder)
    # The expected rows are the generator's: check that once against a clean import.
    clean = job.upload(1, random.Random(1), enqueue=False)
    catalogue_import_run(import_id=clean.pk)
    clean.refresh_from_db()
    assert clean.status == JobStatus.SUCCEEDED, clean.message
    assert catalogue_rows(clean.catalogue_id) == job.expected[clean.pk]
    return job


@services[0]
@services[1]
def test_imports_end_succeeded_with_every_row_once_whatever_dies(import_job, fault_redis, tmp_path):
    with fault_pool(tmp_path, fault_redis, CATALOGUE_IMPORT_RUNNING_SECONDS="3") as workers:
        runner = FaultRunner(import_job, workers, fault_redis, PrivatePostgres.from_env())
        run_faults(runner, runs=runs_wanted(CI_RUNS), base=seed_base(7000))


# --- the recovery, in process (any database) ----------------------------------------------------


def _pending_job(rights_holder) -> CatalogueImport:
    co_holder = _persona(OrganisationKind.RIGHTS_HOLDER, name="Faults Co-Holder")
    return ImportJob(rights_holder, co_holder).upload(3, random.Random(3), enqueue=False)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_job_was_requeued_and_claimed_again_writes_nothing(rights_holder):
    """A stalled worker taken for dead: the sweeper requeued its job and another run claimed
    it (a new claim time). When the stalled run comes to write, it stops: no row, and the job
    is left to the run that has it."""
    job = _pending_job(rights_holder)
    taken_over = timezone.now() + timedelta(seconds=5)

    def another_run_claims(stage, percent, rows_done):
        if stage == "validating" and rows_done == 0:
            CatalogueImport.objects.filter(pk=job.pk).update(started_at=taken_over)

    assert catalogue_import_run(import_id=job.pk, on_progress=another_run_claims) is None
    job.refresh_from_db()
    assert (job.status, job.started_at) == (JobStatus.RUNNING, taken_over)
    assert catalogue_rows(job.catalogue_id)["works"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_lost_database_connection_puts_the_job_back_to_pending_for_the_sweeper(
    rights_holder, monkeypatch, settings
):
    """A PostgreSQL restart mid-write: the job is not failed (nothing of it was committed),
    it goes back to pending, and the next sweep runs it to the end."""
    job = _pending_job(rights_holder)

    def restarted(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(imports, "catalogue_works_store", restarted)
    with pytest.raises(OperationalError):
        catalogue_import_run(import_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.stage) == (JobStatus.PENDING, "requeued after a database error")
    monkeypatch.undo()
    settings.CATALOGUE_IMPORT_PENDING_SECONDS = 0
    assert catalogue_imports_sweep() == 1  # eager here: the task runs at once
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.message


@pytest.mark.django_db
def test_the_sweep_ages_are_settings(rights_holder, settings):
    job = _pending_job(rights_holder)
    CatalogueImport.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=timezone.now() - timedelta(seconds=30)
    )
    settings.CATALOGUE_IMPORT_RUNNING_SECONDS = 60
    assert catalogue_imports_sweep() == 0
    settings.CATALOGUE_IMPORT_RUNNING_SECONDS = 10
    settings.CATALOGUE_IMPORT_PENDING_SECONDS = 0
    assert catalogue_imports_sweep() == 1
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
