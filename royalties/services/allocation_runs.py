"""A cycle's allocation fanned out over partitions of its licences: map tasks, one reduce.

`cycle_allocate_run` starts a run when ``ROYALTIES_ALLOCATION_PARTITIONS`` > 1:

1. `allocation_run_start` freezes the plan in the database (the licence pools, declarations,
   releases and payout returns of this attempt; `AllocationRun`) and groups the licences into
   partitions with `royalties.engine.allocate.partition_plan` (a product's licences that may
   share its proxy pool stay together, and read the product's other licences as donors). It
   then enqueues one map task per partition, with ids only.
2. `allocation_run_map` (one per partition, any worker, any order) loads its licences' usage,
   runs `allocate_map` and, in one transaction, writes the partition's exact partial sums
   (COPY), marks the partition done and counts it on the run, whose row it locks. A partition
   already done is a no-op, so a redelivered task changes nothing. The task that counts the
   last partition hands the run to the reduce task: the database decides who is last, never a
   chord callback, and no amount ever travels through the broker or a result backend.
3. `allocation_run_reduce` reads the partials back, runs `allocate_reduce` (the one rounding
   of the cycle) and stores the allocation and statements exactly as the one-task path does,
   then deletes the scratch partials. Integer sums do not depend on how the licences were
   grouped, so the checksum is the same with one partition or many, one worker or many.

Any failure marks the run and the cycle failed with the reason (allocating again is the
retry). `allocation_runs_sweep` re-enqueues what a lost task left waiting.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from config.bulk import table_read, table_write
from royalties.engine.allocate import (
    PARTIAL_COLUMNS,
    CycleInputs,
    Partial,
    allocate_map,
    allocate_reduce,
    empty_frame,
    empty_partial_frame,
    partition_plan,
)
from royalties.models import (
    AllocationPartial,
    AllocationPartialLicence,
    AllocationPartition,
    AllocationRun,
    AllocationRunState,
    Cycle,
    CycleStatus,
    PartialKind,
    PayoutReturn,
    SuspenseRelease,
)
from royalties.selectors import cycle_inputs
from royalties.services import cycles
from royalties.services.recognition import LicencePool

logger = logging.getLogger(__name__)

ACTIVE = (AllocationRunState.MAPPING, AllocationRunState.REDUCING)
MAP_PERCENT = (10, 75)  # the cycle's progress while partitions are mapped


def _progress(cycle_id: int, stage: str, percent: int) -> None:
    Cycle.objects.filter(pk=cycle_id, status=CycleStatus.ALLOCATING).update(
        stage=stage[:60], percent=percent, updated_at=timezone.now()
    )


def _superseded(run: AllocationRun) -> bool:
    return AllocationRun.objects.filter(cycle_id=run.cycle_id, pk__gt=run.pk).exists()


# ------------------------------------------------------------------------------------ start
def allocation_run_start(
    *,
    cycle: Cycle,
    releases: list[SuspenseRelease],
    returns: list[PayoutReturn],
    partitions: int,
) -> AllocationRun | None:
    """Plan the run, store it, and enqueue one map task per partition (after the commit)."""
    from royalties.tasks import cycle_allocate_map_task

    _progress(cycle.pk, "planning the partitions", MAP_PERCENT[0])
    pools, declared = cycles.cycle_pools_load(cycle)
    params = cycles._params(cycle.policy)
    plan = partition_plan(
        plan_frame(pools, declared, params), partitions, fallback=params.fallback
    ) or [([], [])]  # no licence at all: one empty partition, so that the reduce runs
    now = timezone.now()
    with transaction.atomic():
        locked = Cycle.objects.select_for_update().get(pk=cycle.pk)
        if locked.status != CycleStatus.ALLOCATING:
            return None
        # An earlier attempt still under way is superseded (its tasks find out and stop);
        # the scratch partials of earlier attempts go.
        AllocationRun.objects.filter(cycle=cycle, state__in=ACTIVE).update(
            state=AllocationRunState.FAILED, message="superseded by a newer run", updated_at=now
        )
        AllocationPartial.objects.filter(partition__run__cycle=cycle).delete()
        AllocationPartialLicence.objects.filter(partition__run__cycle=cycle).delete()
        run = AllocationRun.objects.create(
            cycle=cycle,
            scale=params.scale,
            partitions=len(plan),
            licences=[
                {**dataclasses.asdict(p), "declarations": declared.get(p.licence_id, [])}
                for p in pools
            ],
            releases=[r.pk for r in releases],
            payout_returns=[r.pk for r in returns],
        )
        AllocationPartition.objects.bulk_create(
            AllocationPartition(run=run, index=i, licence_ids=priced, donor_ids=donors)
            for i, (priced, donors) in enumerate(plan)
        )
        Cycle.objects.filter(pk=cycle.pk).update(
            stage=f"allocating: 0 of {len(plan)} partitions", updated_at=now
        )
    # After the commit (no task may start before the plan is visible); eagerly, each task
    # runs here and now.
    for index in range(len(plan)):
        cycle_allocate_map_task.delay(run.pk, index)
    return run


def plan_frame(pools: list[LicencePool], declared: dict[int, list[int]], params) -> pd.DataFrame:
    """Each licence with its product, whether it may fall back to its product's proxy pool
    (`pooled`: no accepted declaration, no usage row with a positive quantity, or a policy
    that can weigh usage at zero, when only the engine can tell), and a cost (usage rows)."""
    ids = [d for lid in declared for d in declared[lid]]
    with_usage = cycle_inputs.declarations_with_usage(declaration_ids=ids)
    zero_weight = params.unmatched_weight_bp == 0 or any(
        int(w) == 0 for w in params.media_weight_bp.values()
    )
    rows = cycle_inputs.declaration_rows(declaration_ids=ids)
    return pd.DataFrame(
        {
            "licence_id": pd.Series([p.licence_id for p in pools], dtype="int64"),
            "product": pd.Series([p.product_code for p in pools], dtype="str"),
            "pooled": pd.Series(
                [
                    zero_weight or not any(d in with_usage for d in declared.get(p.licence_id, []))
                    for p in pools
                ],
                dtype="bool",
            ),
            "cost": pd.Series(
                [1 + sum(rows.get(d, 0) for d in declared.get(p.licence_id, [])) for p in pools],
                dtype="int64",
            ),
        }
    )


# -------------------------------------------------------------------------------------- map
def allocation_run_map(*, run_id: int, index: int) -> None:
    """Map one partition and record its partials; the last partition enqueues the reduce."""
    from royalties.tasks import cycle_allocate_reduce_task

    part = (
        AllocationPartition.objects.select_related("run__cycle__policy")
        .filter(run_id=run_id, index=index)
        .first()
    )
    if part is None or part.done_at is not None:
        return
    run = part.run
    if run.state != AllocationRunState.MAPPING or run.cycle.status != CycleStatus.ALLOCATING:
        return
    started = time.perf_counter()
    try:
        pools = {int(p["licence_id"]): p for p in run.licences}
        ids = [*part.licence_ids, *part.donor_ids]
        declared = {lid: pools[lid]["declarations"] for lid in ids if pools[lid]["declarations"]}
        usage, works, shares = cycles.cycle_usage_load(declared)
        inputs = CycleInputs(
            licences=cycles.licences_frame([_pool(pools[lid]) for lid in ids], declared),
            usage=usage,
            works=works,
            shares=shares,
            holders=empty_frame("holders"),
            releases=empty_frame("releases"),
        )
        partial = allocate_map(inputs, cycles._params(run.cycle.policy), donors=part.donor_ids)
        # One transaction, under the run's row lock (which serialises every delivery of every
        # partition of the run, and makes one task the last): check the run is still mapping,
        # claim the partition (a redelivered task finds it done), write its partials, count it.
        # The claim is a plain UPDATE of the partition row taken after the lock: a join in it
        # (`run__state=...`) would make it `id IN (subquery)`, which a second delivery waiting
        # on the first one's row re-checks against its old snapshot, under READ COMMITTED,
        # and so claimed as well (found by tests/royalties/test_allocation_faults.py).
        with transaction.atomic():
            locked = AllocationRun.objects.select_for_update().get(pk=run_id)
            if locked.state != AllocationRunState.MAPPING:  # failed or superseded meanwhile
                return
            claimed = AllocationPartition.objects.filter(pk=part.pk, done_at__isnull=True).update(
                done_at=timezone.now(), seconds=round(time.perf_counter() - started, 3)
            )
            if not claimed:  # done by another delivery of this task
                return
            partial_write(part.pk, partial)
            done, total = locked.partitions_done + 1, locked.partitions
            last = done == total
            AllocationRun.objects.filter(pk=run_id).update(
                partitions_done=done,
                state=AllocationRunState.REDUCING if last else AllocationRunState.MAPPING,
                updated_at=timezone.now(),
            )
        low, high = MAP_PERCENT
        _progress(
            run.cycle_id,
            f"allocating: {done} of {total} partitions",
            low + (high - low) * done // total,
        )
    except (OperationalError, InterfaceError):
        _database_lost(run_id)
        return
    except Exception as exc:
        allocation_run_fail(run_id=run_id, exc=exc)
        return
    if last:
        cycle_allocate_reduce_task.delay(run_id)


def _pool(fields: dict) -> LicencePool:
    names = {f.name for f in dataclasses.fields(LicencePool)}
    return LicencePool(**{k: v for k, v in fields.items() if k in names})


_SCALED = {
    # kind: (frame, columns of AllocationPartial filled from it)
    PartialKind.FEE: ("fees", {"label": "product"}),
    PartialKind.HOLDER: ("holders", {"holder_id": "holder_id"}),
    PartialKind.SUSPENSE: ("suspense", {"label": "reason", "ref": "ref"}),
    PartialKind.WORK_LINE: (
        "lines_by_work",
        {"holder_id": "holder_id", "work_id": "work_id", "quantity": "quantity"},
    ),
    PartialKind.SOURCE_LINE: ("lines_by_source", {"holder_id": "holder_id", "label": "product"}),
}
_ROW_TYPES = {
    "holder_id": pa.int64(),
    "work_id": pa.int64(),
    "label": pa.string(),
    "ref": pa.string(),
    "quantity": pa.int64(),
    "amount_minor": pa.int64(),
    "amount_sub": pa.int64(),
    "fee_minor": pa.int64(),
    "fee_sub": pa.int64(),
}
_DEFAULTS = {"label": "", "ref": "", "quantity": 0, "fee_minor": 0, "fee_sub": 0}


def partial_write(partition_id: int, partial: Partial) -> None:
    """A partition's partial as `AllocationPartial` rows (COPY) and its licences."""
    tables = []
    for kind, (name, columns) in _SCALED.items():
        frame = getattr(partial, name)
        n = len(frame)
        if not n:
            continue
        data = {
            "partition_id": pa.array([partition_id] * n, pa.int64()),
            "kind": pa.array([int(kind)] * n, pa.int16()),
        }
        for column, typ in _ROW_TYPES.items():
            source = columns.get(column, column)
            if source in frame.columns:
                values = frame[source]
                data[column] = pa.array(
                    values.astype(str) if typ == pa.string() else values.astype("int64"), typ
                )
            elif column in _DEFAULTS:
                data[column] = pa.array([_DEFAULTS[column]] * n, typ)
            else:
                data[column] = pa.nulls(n, typ)
        tables.append(pa.table(data))
    if tables:
        table_write(AllocationPartial._meta.db_table, pa.concat_tables(tables))
    lic = partial.licences
    n = len(lic)
    table_write(
        AllocationPartialLicence._meta.db_table,
        pa.table(
            {
                "partition_id": pa.array([partition_id] * n, pa.int64()),
                "licence_id": pa.array(lic["licence_id"].astype("int64")),
                "product_code": pa.array(lic["product"].astype(str), pa.string()),
                "priced": pa.array(lic["priced"].astype(bool)),
                "direct": pa.array(lic["direct"].astype(bool)),
                **{
                    c: pa.array(lic[c].astype("int64"))
                    for c in ("pool_minor", "fee_minor", "holders_minor", "suspense_minor")
                },
            }
        ),
    )


_READ_SCHEMA = pa.schema([("kind", pa.int64()), *_ROW_TYPES.items()])


def partial_read(partition: AllocationPartition, scale: int) -> Partial:
    """A partition's partial back from its rows (the inverse of `partial_write`)."""
    rows = table_read(
        f"SELECT kind, {', '.join(_ROW_TYPES)} FROM {AllocationPartial._meta.db_table} "  # noqa: S608  # nosec B608 - model table, _ROW_TYPES columns
        "WHERE partition_id = %s",
        [partition.pk],
        schema=_READ_SCHEMA,
    )
    frames = {}
    for kind, (name, columns) in _SCALED.items():
        chosen = rows.filter(pc.equal(rows["kind"], int(kind)))
        wanted = PARTIAL_COLUMNS[name]
        source = {v: k for k, v in columns.items()}  # frame column -> row column
        if not len(chosen):
            frames[name] = empty_partial_frame(name)
            continue
        frames[name] = pd.DataFrame(
            {c: chosen[source.get(c, c)].to_pandas().astype(t) for c, t in wanted.items()}
        )
    licences = pd.DataFrame(
        list(
            AllocationPartialLicence.objects.filter(partition=partition).values(
                "licence_id",
                "product_code",
                "priced",
                "direct",
                "pool_minor",
                "fee_minor",
                "holders_minor",
                "suspense_minor",
            )
        ),
        columns=[
            "licence_id",
            "product_code",
            "priced",
            "direct",
            "pool_minor",
            "fee_minor",
            "holders_minor",
            "suspense_minor",
        ],
    ).rename(columns={"product_code": "product"})
    licences = (
        licences.astype(PARTIAL_COLUMNS["licences"])
        if len(licences)
        else empty_partial_frame("licences")
    )
    return Partial(scale=scale, licences=licences, **frames)


# ----------------------------------------------------------------------------------- reduce
def allocation_run_reduce(*, run_id: int) -> None:
    """Sum the partials into the allocation and its statements (the one rounding), once."""
    run = AllocationRun.objects.select_related("cycle__policy").filter(pk=run_id).first()
    if run is None or run.state != AllocationRunState.REDUCING:
        return
    cycle = run.cycle
    if cycle.status != CycleStatus.ALLOCATING or _superseded(run):
        AllocationRun.objects.filter(pk=run_id, state=AllocationRunState.REDUCING).update(
            state=AllocationRunState.FAILED,
            message="the cycle is no longer allocating with this run",
            updated_at=timezone.now(),
        )
        return
    # The whole fan-out's wall time counts as the allocation's total.
    started = time.perf_counter() - (timezone.now() - run.created_at).total_seconds()
    timings: dict[str, float] = {}
    try:
        _progress(cycle.pk, "reducing the partials", 78)
        t = time.perf_counter()
        parts = list(run.partition_rows.order_by("index"))
        partials = [partial_read(part, run.scale) for part in parts]
        pools = [_pool(p) for p in run.licences]
        declared = {int(p["licence_id"]): p["declarations"] for p in run.licences}
        declared = {k: v for k, v in declared.items() if v}
        order = {pk: i for i, pk in enumerate(run.releases)}
        releases = sorted(
            SuspenseRelease.objects.filter(pk__in=run.releases).select_related("item"),
            key=lambda r: order[r.pk],
        )
        returns = list(PayoutReturn.objects.filter(pk__in=run.payout_returns))
        _, works, shares = cycles.cycle_usage_load(
            {}, release_work_ids=[r.work_id for r in releases if r.work_id]
        )
        inputs = CycleInputs(
            licences=cycles.licences_frame(pools, declared),
            usage=empty_frame("usage"),
            works=works,
            shares=shares,
            holders=cycles.cycle_holders_frame(cycle, returns),
            releases=cycles.releases_frame(releases),
        )
        timings["load"] = round(time.perf_counter() - t, 3)
        timings["map"] = round(sum(p.seconds for p in parts), 3)
        timings["partitions"] = len(parts)
        t = time.perf_counter()
        result = allocate_reduce(partials, inputs, cycles._params(cycle.policy))
        timings["engine"] = round(time.perf_counter() - t, 3)
        allocation = cycles.cycle_allocation_finish(
            cycle_id=cycle.pk,
            result=result,
            pools=pools,
            declared=declared,
            releases=releases,
            returns=returns,
            timings=timings,
            started=started,
        )
    except (OperationalError, InterfaceError):
        _database_lost(run_id)
        return
    except Exception as exc:
        allocation_run_fail(run_id=run_id, exc=exc)
        return
    if allocation is None:  # another delivery of this task stored it first: nothing to do
        return
    AllocationRun.objects.filter(pk=run_id).update(
        state=AllocationRunState.DONE,
        allocation=allocation,
        timings=timings,
        updated_at=timezone.now(),
    )
    # The partials were scratch: the allocation is the truth now.
    AllocationPartial.objects.filter(partition__run_id=run_id).delete()
    AllocationPartialLicence.objects.filter(partition__run_id=run_id).delete()


def _database_lost(run_id: int) -> None:
    """A task lost its database connection (a restart, a failover): nothing of its
    transaction was committed, so the run stays as it was and the sweeper enqueues the task
    again after ALLOCATION_STUCK_SECONDS, instead of failing the whole allocation."""
    logger.warning("allocation run %s: database connection lost; left to the sweeper", run_id)
    if not connection.in_atomic_block:
        connection.close()  # the broken connection; the next query opens a new one


def allocation_run_fail(*, run_id: int, exc: BaseException) -> None:
    """The run -> failed with the reason, and its cycle too unless a newer run took over."""
    run = AllocationRun.objects.filter(pk=run_id).first()
    if run is None:
        return
    AllocationRun.objects.filter(pk=run_id, state__in=ACTIVE).update(
        state=AllocationRunState.FAILED, message=str(exc)[:2000], updated_at=timezone.now()
    )
    if not _superseded(run):
        cycles.cycle_allocation_fail(cycle_id=run.cycle_id, exc=exc)


# ------------------------------------------------------------------------------------ sweep
def allocation_runs_sweep() -> int:
    """Re-enqueue the tasks of runs that made no progress for ALLOCATION_STUCK_SECONDS (a
    worker lost between a commit and an enqueue, or a task lost by the broker). Duplicates
    are harmless: a partition is mapped once, a run reduced once. Also re-enqueues the
    allocation task of a cycle left `allocating` with no run under way and no progress for as
    long (the task killed or its message lost before a run existed, or in the one-task
    allocation): it does nothing unless the cycle is still allocating, and an allocation is
    stored only while it is (under the cycle's row lock), so a duplicate is harmless too.
    Returns the runs and cycles touched."""
    from royalties.tasks import (
        cycle_allocate_map_task,
        cycle_allocate_reduce_task,
        cycle_allocate_task,
    )

    now = timezone.now()
    stale = now - timedelta(seconds=settings.ALLOCATION_STUCK_SECONDS)
    touched = 0
    lost = (
        Cycle.objects.filter(status=CycleStatus.ALLOCATING, updated_at__lt=stale)
        .exclude(allocation_runs__state__in=ACTIVE)
        .values_list("pk", flat=True)
    )
    for cycle_id in list(lost):
        if Cycle.objects.filter(
            pk=cycle_id, status=CycleStatus.ALLOCATING, updated_at__lt=stale
        ).update(updated_at=now, stage="allocating again (the task was lost)"):
            logger.warning("allocation of cycle %s was lost; enqueued again", cycle_id)
            cycle_allocate_task.delay(cycle_id)
            touched += 1
    for run in AllocationRun.objects.filter(
        state__in=ACTIVE, updated_at__lt=stale, cycle__status=CycleStatus.ALLOCATING
    ):
        if _superseded(run):
            AllocationRun.objects.filter(pk=run.pk, state__in=ACTIVE).update(
                state=AllocationRunState.FAILED, message="superseded by a newer run"
            )
            continue
        AllocationRun.objects.filter(pk=run.pk).update(updated_at=timezone.now())
        touched += 1
        if run.state == AllocationRunState.REDUCING:
            cycle_allocate_reduce_task.delay(run.pk)
            continue
        for index in run.partition_rows.filter(done_at__isnull=True).values_list(
            "index", flat=True
        ):
            cycle_allocate_map_task.delay(run.pk, index)
    return touched
