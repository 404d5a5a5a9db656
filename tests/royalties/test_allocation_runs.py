"""The allocation fanned out over partitions of the licences (map tasks, one reduce, the
database in between) stores exactly what the one-task allocation stores: the same checksum,
statements, lines, licence breakdown, suspense and residues. Tasks run eagerly here, except
in the `services` test, where a real worker with two processes runs them on the real Redis
against the real PostgreSQL test database (skipped locally without them; CI runs it). Its
worker is started here rather than by tests.services.start_worker, which runs one process.

The scenario: two products; product "ai-training" has three licences, one of them undeclared
(its pool is proxied over the usage of the other two), product "ai-code" has two; five works
of two holders (one work shared 1/3 : 2/3, one 70% assigned), one unmatched identifier.
Pools that are not round numbers make every sub-unit count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from royalties.models import (
    AllocationPartial,
    AllocationPartition,
    AllocationResidue,
    AllocationRun,
    AllocationRunState,
    Cycle,
    CycleLicence,
    CycleStatus,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
)
from royalties.services import allocation_runs
from royalties.services.cycles import cycle_allocate, cycle_create, cycle_holders_frame
from tests import services as test_services
from tests.conftest import skip_or_fail
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs
from tests.services import ROOT, broker_reachable, wait_for

pytestmark = pytest.mark.django_db

DOIS = [f"10.5555/blanket.{i}" for i in range(5)]


@pytest.fixture
def fanout_scenario(operator, licensee, rights_holder, co_holder):
    cs.policy(operator, admin_fee_bp=1250)
    catalogue = catalogue_for(rights_holder, "Backlist")
    third = [
        {"holder": rights_holder.organisation.code, "share": "33.3333"},
        {"holder": co_holder.organisation.code, "share": "66.6667"},
    ]
    partly = [{"holder": co_holder.organisation.code, "share": "70"}]
    work_in(catalogue, rights_holder, "W0", doi=DOIS[0])
    work_in(catalogue, rights_holder, "W1", doi=DOIS[1], shares=third)
    work_in(catalogue, rights_holder, "W2", doi=DOIS[2], shares=partly)
    work_in(catalogue, rights_holder, "W3", doi=DOIS[3], shares=third)
    work_in(catalogue, rights_holder, "W4", doi=DOIS[4])
    training = [
        cs.paid_licence(licensee, operator, amount=365_007, code="ai-training"),
        cs.paid_licence(licensee, operator, amount=730_013, code="ai-training"),
        cs.paid_licence(licensee, operator, amount=100_003, code="ai-training"),  # undeclared
    ]
    code = [
        cs.paid_licence(licensee, operator, amount=511_111, code="ai-code"),
        cs.paid_licence(licensee, operator, amount=222_229, code="ai-code"),
    ]
    cs.usage(licensee, training[0], [("doi", DOIS[0], 7), ("doi", DOIS[1], 11)], model="m1")
    cs.usage(
        licensee,
        training[1],
        [("doi", DOIS[1], 3), ("doi", DOIS[2], 13), ("doi", "10.5555/unknown", 5)],
        model="m2",
    )
    cs.usage(licensee, code[0], [("doi", DOIS[3], 17), ("doi", DOIS[4], 1)], model="m3")
    cs.usage(licensee, code[1], [("doi", DOIS[0], 2), ("doi", DOIS[3], 9)], model="m4")
    return training + code


def _stored(allocation) -> dict:
    statements = Statement.objects.filter(allocation=allocation)
    return {
        "checksum": allocation.checksum,
        "totals": allocation.totals,
        "statements": sorted(
            statements.values_list(
                "holder_id",
                "brought_forward_minor",
                "gross_minor",
                "deductions_minor",
                "earned_minor",
                "payable_minor",
                "carried_forward_minor",
            )
        ),
        "work_lines": sorted(
            StatementWorkLine.objects.filter(statement__allocation=allocation).values_list(
                "statement__holder_id", "work_id", "quantity", "amount_minor"
            )
        ),
        "source_lines": sorted(
            StatementSourceLine.objects.filter(statement__allocation=allocation).values_list(
                "statement__holder_id", "product_code", "release_ref", "amount_minor"
            )
        ),
        "licences": sorted(
            CycleLicence.objects.filter(allocation=allocation).values_list(
                "licence_id", "pool_minor", "fee_minor", "holders_minor", "suspense_minor"
            )
        ),
        "suspense": sorted(
            SuspenseItem.objects.filter(allocation=allocation).values_list(
                "reason", "ref", "amount_minor"
            )
        ),
        "residues": sorted(
            AllocationResidue.objects.filter(allocation=allocation).values_list(
                "holder_id", "residue_sub"
            )
        ),
    }


def test_one_partition_and_several_store_the_identical_allocation(
    fanout_scenario, operator, settings
):
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    one = cs.allocate(operator)
    assert one.status == CycleStatus.ALLOCATED, one.message
    assert not AllocationRun.objects.exists()  # one partition: one task, in memory

    settings.ROYALTIES_ALLOCATION_PARTITIONS = 4
    many = cs.allocate(operator)
    assert many.status == CycleStatus.ALLOCATED, many.message
    run = AllocationRun.objects.get()
    # Five units of work in four partitions: each declared licence alone, and the undeclared
    # licence's proxy pool, which reads the other "ai-training" licences as donors.
    assert run.state == AllocationRunState.DONE
    assert run.allocation_id == many.current_allocation_id
    assert run.partitions == run.partitions_done == 4
    proxied = fanout_scenario[2].pk
    assert [proxied] in [p.licence_ids for p in run.partition_rows.all()]
    assert not AllocationPartial.objects.exists()  # the scratch partials are gone
    assert many.current_allocation.timings["partitions"] == 4

    first, second = _stored(one.current_allocation), _stored(many.current_allocation)
    assert second == first
    assert first["statements"] and first["work_lines"] and first["residues"]

    settings.ROYALTIES_ALLOCATION_PARTITIONS = 2  # and re-allocating again, other partitions
    again = cs.allocate(operator)
    assert _stored(again.current_allocation) == first


def test_a_redelivered_map_task_changes_nothing(fanout_scenario, operator, settings):
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 3
    cycle = cs.allocate(operator)
    run = AllocationRun.objects.get()
    stored = _stored(cycle.current_allocation)
    for part in AllocationPartition.objects.filter(run=run):
        allocation_runs.allocation_run_map(run_id=run.pk, index=part.index)
    allocation_runs.allocation_run_reduce(run_id=run.pk)
    run.refresh_from_db()
    assert (run.state, run.partitions_done) == (AllocationRunState.DONE, run.partitions)
    assert not AllocationPartial.objects.exists()
    cycle.refresh_from_db()
    assert cycle.allocations.count() == 1
    assert _stored(cycle.current_allocation) == stored


def test_a_failed_map_task_fails_the_run_and_the_cycle(
    fanout_scenario, operator, settings, monkeypatch
):
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 3

    def broken(*args, **kwargs):
        raise RuntimeError("the worker ran out of luck")

    monkeypatch.setattr(allocation_runs, "allocate_map", broken)
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.FAILED
    assert "ran out of luck" in cycle.message
    run = AllocationRun.objects.get()
    assert run.state == AllocationRunState.FAILED
    assert cycle.current_allocation is None

    monkeypatch.undo()  # allocating again is the retry: a new run, which succeeds
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert AllocationRun.objects.filter(state=AllocationRunState.DONE).count() == 1


def test_the_sweeper_enqueues_the_reduce_a_lost_task_never_did(
    fanout_scenario, operator, settings, monkeypatch
):
    from royalties import tasks

    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    expected = _stored(cs.allocate(operator).current_allocation)
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 3
    # The worker dies between committing the last partition and enqueueing the reduce.
    monkeypatch.setattr(tasks.cycle_allocate_reduce_task, "delay", lambda *args: None)
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATING
    run = AllocationRun.objects.get()
    assert (run.state, run.partitions_done) == (AllocationRunState.REDUCING, run.partitions)
    monkeypatch.undo()

    assert allocation_runs.allocation_runs_sweep() == 0  # not stuck for long enough yet
    AllocationRun.objects.filter(pk=run.pk).update(
        updated_at=timezone.now() - timedelta(seconds=settings.ALLOCATION_STUCK_SECONDS + 1)
    )
    assert allocation_runs.allocation_runs_sweep() == 1
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert _stored(cycle.current_allocation) == expected


def test_the_next_cycle_carries_each_holders_rounding_residue(fanout_scenario, operator, approver):
    q3 = cs.approve(approver, cs.allocate(operator, "2026-Q3"))
    residues = dict(
        AllocationResidue.objects.filter(allocation=q3.current_allocation).values_list(
            "holder_id", "residue_sub"
        )
    )
    assert residues and all(abs(r) < 10**9 for r in residues.values())
    q4 = cycle_create(caller=cs.staff_caller(operator), period="2026-Q4")
    holders = cycle_holders_frame(q4, [])
    carried = dict(zip(holders["holder_id"], holders["residue_sub"], strict=True))
    assert {h: carried[h] for h in residues} == residues


WORKER_PARTITIONS = 3


@pytest.fixture(scope="module")
def fanout_worker(django_db_setup, django_db_blocker):
    """A worker with two processes (prefork, concurrency 2) splitting allocations into
    WORKER_PARTITIONS partitions, on a queue of its own."""
    broker = django_settings.CELERY_BROKER_URL
    if not broker:
        skip_or_fail("CELERY_BROKER_URL is not set: no real broker to run a worker on")
    if not broker_reachable(broker):
        skip_or_fail(f"the broker at {broker} does not answer")
    if connection.vendor != "postgresql":
        skip_or_fail("a worker in another process needs a shared database: set DATABASE_URL")
    queue = f"blanket-fanout-{os.getpid()}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test_worker",
        "DATABASE_URL": test_services.test_database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "ROYALTIES_ALLOCATION_PARTITIONS": str(WORKER_PARTITIONS),
    }
    log = open(ROOT / "var" / f"celery-{queue}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            queue,
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process, queue
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_with_two_processes_allocates_the_same_checksum_over_partitions(
    fanout_worker, fanout_scenario, operator, settings
):
    from config.celery import app

    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1  # first: one task, in this process
    one = cs.allocate(operator)
    assert one.status == CycleStatus.ALLOCATED, one.message
    expected = _stored(one.current_allocation)

    process, queue = fanout_worker
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager, app.conf.task_default_queue = False, queue
    try:
        cycle_allocate(caller=cs.staff_caller(operator), cycle=one)  # queued on commit
        wait_for(
            lambda: Cycle.objects.get(pk=one.pk).status != CycleStatus.ALLOCATING,
            timeout=120,
            what="the worker to allocate the cycle over its partitions",
        )
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
    cycle = Cycle.objects.get(pk=one.pk)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    run = AllocationRun.objects.get(cycle=cycle)
    assert run.state == AllocationRunState.DONE
    assert run.partitions == run.partitions_done == WORKER_PARTITIONS
    assert run.allocation_id == cycle.current_allocation_id
    assert cycle.current_allocation.number == 2
    assert _stored(cycle.current_allocation) == expected
    assert process.poll() is None  # the worker is still up: no task crashed it
