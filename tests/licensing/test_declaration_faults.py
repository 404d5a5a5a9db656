"""Usage declarations under faults: real Celery workers on a private Redis, PostgreSQL.

A **run** is one seed: a generated declaration file (300-1,500 lines over a small repertoire:
matched ISBNs, a reserved work, unknown and invalid identifiers), processed once cleanly in
this process (`declaration_process`, no fault) under one model name, then filed again under
another model name through `declaration_file_start`, so that the real task runs on a worker,
with one fault, the kinds in turn (`tests.faults_support.FaultRunner`):

- kill: SIGKILL at `declaration.before_claim`, `declaration.after_claim`, `declaration.mid`
  (matched, nothing written) or `declaration.after_write` (the aggregates written, the
  declaration not yet accepted: the transaction dies with the process);
- redis: killed and restarted empty, with the message queued (lost) or while a worker waits
  in the middle of the job;
- stall: a live worker stops at `declaration.after_claim` or `declaration.mid` past the
  processing age; the sweeper requeues it and another worker processes it; then the stalled
  one carries on (before the claim fence, it wrote a second copy of every aggregate);
- postgres (only with `BLANKET_FAULTS_PG_CLUSTER`, see `bench/faults.py`): restarted with the
  message queued or while a worker waits in the middle of the job.

This process plays beat: `declarations_sweep()` every quarter second, with the submitted and
processing ages at 1 s and 3 s (600 s and 3600 s in production). After each run: the
declaration is accepted, its totals and its stored aggregates (per work, unmatched, reserved
identifiers) are exactly the clean run's, and matched + unmatched + reserved = declared.

`BLANKET_FAULT_RUNS` / `BLANKET_FAULT_SEED` choose the runs (`bench/faults.py --job
declarations`), `BLANKET_FAULT_SEEDS=...` replays some.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import OperationalError
from django.utils import timezone

from licensing.models import (
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationUnmatched,
    DeclarationWorkUsage,
    UsageDeclaration,
)
from licensing.services import declarations
from licensing.services.declarations import (
    declaration_file_start,
    declaration_process,
    declarations_sweep,
)
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
from tests.licensing.declarations_support import active_licence
from tests.licensing.factories import caller_of, catalogue_for, work_in

services = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

CI_RUNS = 3  # bench/faults.py runs 50 and more
WORKS = 40
TOTALS = (
    "lines",
    "declared_quantity",
    "matched_lines",
    "matched_quantity",
    "unmatched_lines",
    "unmatched_quantity",
    "reserved_lines",
    "reserved_quantity",
    "works_matched",
    "unit",
)


def declaration_file(rng: random.Random, isbns: list[str], reserved_isbn: str) -> bytes:
    lines = ["scheme,identifier,quantity"]
    for _ in range(rng.randint(300, 1500)):
        roll = rng.random()
        if roll < 0.75:
            identifier = rng.choice(isbns)
        elif roll < 0.8:
            identifier = reserved_isbn
        elif roll < 0.95:
            identifier = isbn13(500_000_000 + rng.randint(0, 200))  # no such work
        else:
            identifier = f"not-an-isbn-{rng.randint(0, 20)}"
        lines.append(f"isbn,{identifier},{rng.randint(0, 5000)}")
    return ("\n".join(lines) + "\n").encode()


def stored(declaration_id: int) -> dict:
    """A declaration's totals and aggregates, without ids."""
    totals = UsageDeclaration.objects.filter(pk=declaration_id).values(*TOTALS).get()
    tables = {}
    for model in (DeclarationWorkUsage, DeclarationUnmatched, DeclarationReservedIdentifier):
        names = [
            f.attname
            for f in model._meta.concrete_fields
            if f.attname not in ("id", "declaration_id")
        ]
        rows = model.objects.filter(declaration_id=declaration_id).values_list(*names)
        tables[model.__name__] = sorted(rows, key=repr)
    return {"totals": totals, **tables}


class DeclarationJob(Job):
    name = "declarations"
    kill_points = (
        "declaration.before_claim",
        "declaration.after_claim",
        "declaration.mid",
        "declaration.after_write",
    )
    mid_points = ("declaration.mid", "declaration.after_write")
    stall_points = ("declaration.after_claim", "declaration.mid")
    terminal = frozenset({DeclarationStatus.ACCEPTED, DeclarationStatus.REJECTED})

    def __init__(self, licensee, licence, isbns, reserved_isbn):
        self.licensee, self.licence = licensee, licence
        self.isbns, self.reserved_isbn = isbns, reserved_isbn
        self.clean: dict[int, dict] = {}
        self.count = 0

    def file(self, data: bytes, model: str, *, enqueue: bool) -> UsageDeclaration:
        return declaration_file_start(
            caller=caller_of(self.licensee),
            licence=self.licence,
            period="2026-Q3",
            model_name=model,
            model_version="1",
            uploaded_file=ContentFile(data, name="usage.csv"),
            enqueue=enqueue,
        )

    def submit(self, rng: random.Random) -> UsageDeclaration:
        self.count += 1
        data = declaration_file(rng, self.isbns, self.reserved_isbn)
        clean = self.file(data, f"clean-{self.count}", enqueue=False)
        declaration_process(declaration_id=clean.pk)
        clean.refresh_from_db()
        assert clean.status == DeclarationStatus.ACCEPTED, clean.message
        declaration = self.file(data, f"faulted-{self.count}", enqueue=True)
        self.clean[declaration.pk] = stored(clean.pk)
        return declaration

    def state(self, handle) -> str:
        return UsageDeclaration.objects.filter(pk=handle.pk).values_list("status", flat=True).get()

    def describe(self, handle) -> str:
        return str(
            UsageDeclaration.objects.filter(pk=handle.pk).values("status", "stage", "message").get()
        )

    def sweep(self) -> None:
        declarations_sweep()

    def check(self, handle) -> dict:
        declaration = UsageDeclaration.objects.get(pk=handle.pk)
        assert declaration.status == DeclarationStatus.ACCEPTED, self.describe(handle)
        now, clean = stored(handle.pk), self.clean[handle.pk]
        assert now["totals"] == clean["totals"], (now["totals"], clean["totals"])
        for table in (
            "DeclarationWorkUsage",
            "DeclarationUnmatched",
            "DeclarationReservedIdentifier",
        ):
            assert now[table] == clean[table], (table, len(now[table]), len(clean[table]))
        t = now["totals"]
        assert (
            t["matched_quantity"] + t["unmatched_quantity"] + t["reserved_quantity"]
            == t["declared_quantity"]
        ), t
        assert t["matched_lines"] + t["unmatched_lines"] + t["reserved_lines"] == t["lines"], t
        return {"lines": t["lines"]}


@pytest.fixture
def fault_redis():
    with private_redis_server() as server:
        yield server


@pytest.fixture
def declaration_job(rights_holder, licensee, settings):
    settings.DECLARATION_SUBMITTED_SECONDS = 1
    settings.DECLARATION_PROCESSING_SECONDS = 3
    catalogue = catalogue_for(rights_holder, "Declared under faults")
    isbns = [isbn13(400_000_000 + i) for i in range(WORKS)]
    for i, isbn in enumerate(isbns):
        work_in(catalogue, rights_holder, f"D{i}", isbn=isbn)
    reserved = isbn13(400_000_000 + WORKS)
    work_in(catalogue, rights_holder, "DR", isbn=reserved, consent="reserved")
    return DeclarationJob(licensee, active_licence(licensee), isbns, reserved)


@services[0]
@services[1]
def test_declarations_end_accepted_with_the_clean_aggregates_whatever_dies(
    declaration_job, fault_redis, tmp_path
):
    with fault_pool(tmp_path, fault_redis) as workers:
        runner = FaultRunner(declaration_job, workers, fault_redis, PrivatePostgres.from_env())
        run_faults(runner, runs=runs_wanted(CI_RUNS), base=seed_base(8000))


# --- the recovery, in process (any database) ----------------------------------------------------


def _submitted(job: DeclarationJob) -> UsageDeclaration:
    data = declaration_file(random.Random(5), job.isbns, job.reserved_isbn)
    return job.file(data, "in-process", enqueue=False)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_declaration_was_requeued_and_claimed_again_writes_nothing(declaration_job):
    """A stalled worker taken for dead: the sweeper requeued the declaration and another run
    claimed it. The stalled run, reaching the write, stops: no aggregate, no acceptance (before
    the fence it wrote the aggregates again, hit their primary key and rejected a declaration
    the other run had accepted)."""
    declaration = _submitted(declaration_job)
    taken_over = timezone.now() + timedelta(seconds=5)

    def another_run_claims(stage, percent):
        if stage == "reading":
            UsageDeclaration.objects.filter(pk=declaration.pk).update(started_at=taken_over)

    result = declaration_process(declaration_id=declaration.pk, on_progress=another_run_claims)
    assert result is None
    declaration.refresh_from_db()
    assert (declaration.status, declaration.started_at) == (
        DeclarationStatus.PROCESSING,
        taken_over,
    )
    assert not DeclarationWorkUsage.objects.filter(declaration=declaration).exists()
    assert not DeclarationUnmatched.objects.filter(declaration=declaration).exists()


@pytest.mark.django_db(transaction=True)
def test_a_lost_database_connection_puts_the_declaration_back_for_the_sweeper(
    declaration_job, monkeypatch, settings
):
    """A PostgreSQL restart mid-write: the declaration is not rejected (the licensee would
    have to file it again), it goes back to submitted and the next sweep processes it."""
    declaration = _submitted(declaration_job)

    def restarted(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(declarations, "declaration_aggregates_store", restarted)
    with pytest.raises(OperationalError):
        declaration_process(declaration_id=declaration.pk)
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.SUBMITTED
    assert declaration.stage == "requeued after a database error"
    monkeypatch.undo()
    settings.DECLARATION_SUBMITTED_SECONDS = 0
    assert declarations_sweep() == 1  # eager here: processed at once
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.ACCEPTED, declaration.message
