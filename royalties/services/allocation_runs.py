"""A cycle's allocation fanned out over partitions of its licences: map tasks, one reduce.

`cycle_allocate_run` starts a run when ``ROYALTIES_ALLOCATION_PARTITIONS`` > 1 (each map
task takes at most a chunk of ``ROYALTIES_ALLOCATION_CHUNK_ROWS`` usage rows). With one
partition, a cycle with more usage rows than a chunk is allocated chunk by chunk in its one
task instead (`allocation_chunked`: the same map, sums and reduce, in memory, no scratch rows):

1. `allocation_run_start` freezes the plan in the database (the licence pools, declarations,
   releases and payout returns of this attempt; `AllocationRun`) and groups the licences into
   partitions with `chunk_plan` (about a chunk of usage rows each, at least
   ``ROYALTIES_ALLOCATION_PARTITIONS`` of them; a product's licences that may share its
   proxy pool stay together, and read the product's other licences as donors). It then
   enqueues one map task per partition, with ids only.
2. `allocation_run_map` (one per partition, any worker, any order) loads its licences' usage
   (its donors' summed per work and identifier: they only lend it to a proxy pool) and the
   works and shares that usage names, runs `allocate_map` and, in one transaction, writes
   the partition's exact partial sums
   (COPY), marks the partition done and counts it on the run, whose row it locks. A partition
   already done is a no-op, so a redelivered task changes nothing. The task that counts the
   last partition hands the run to the reduce task: the database decides who is last, never a
   chord callback, and no amount ever travels through the broker or a result backend.
3. `allocation_run_reduce` reads the partials back added up per key in the database
   (`partials_summed`: one row per bucket and statement line, however many partitions),
   runs `allocate_reduce` (the one rounding of the cycle) and stores the allocation and
   statements exactly as the one-task path does,
   then deletes the scratch partials. Integer sums do not depend on how the licences were
   grouped, so the checksum is the same with one partition or many, one worker or many.

Any failure marks the run and the cycle failed with the reason (allocating again is the
retry). `allocation_runs_sweep` re-enqueues what a lost task left waiting.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from config.bulk import table_read, table_write
from royalties.engine.allocate import (
    PARTIAL_COLUMNS,
    PROXY,
    CycleInputs,
    Partial,
    allocate_map,
    allocate_reduce,
    empty_frame,
    empty_partial_frame,
    partition_plan,
)
from royalties.models import (
    Allocation,
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
    chunk_rows: int | None = None,
    loaded: tuple[list[LicencePool], dict[int, list[int]]] | None = None,
) -> AllocationRun | None:
    """Plan the run, store it, and enqueue one map task per partition (after the commit):
    ``partitions`` of them, or more when ``chunk_rows`` is given and the usage needs more
    chunks (`chunk_plan`). ``loaded``: `cycles.cycle_pools_load`'s answer, if at hand."""
    from royalties.tasks import cycle_allocate_map_task

    _progress(cycle.pk, "planning the partitions", MAP_PERCENT[0])
    pools, declared = loaded if loaded is not None else cycles.cycle_pools_load(cycle)
    params = cycles._params(cycle.policy)
    frame = plan_frame(pools, declared, params)
    if chunk_rows is None:
        plan = partition_plan(frame, partitions, fallback=params.fallback)
    else:
        plan = chunk_plan(
            frame,
            partitions=partitions,
            chunk_rows=chunk_rows,
            fallback=params.fallback,
            works=cycle_inputs.works_count(),
        )
    plan = plan or [([], [])]  # no licence at all: one empty partition, so that the reduce runs
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
        _scratch_delete(AllocationPartition.objects.filter(run__cycle=cycle))
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
    that can weigh usage at zero, when only the engine can tell), and a cost (usage rows;
    and apart, `matched` works and `identifiers`)."""
    ids = [d for lid in declared for d in declared[lid]]
    with_usage = cycle_inputs.declarations_with_usage(declaration_ids=ids)
    zero_weight = params.unmatched_weight_bp == 0 or any(
        int(w) == 0 for w in params.media_weight_bp.values()
    )
    parts = cycle_inputs.declaration_row_parts(declaration_ids=ids)

    def rows(lid: int, part: int) -> int:
        return sum(parts.get(d, (0, 0))[part] for d in declared.get(lid, []))

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
                [1 + rows(p.licence_id, 0) + rows(p.licence_id, 1) for p in pools],
                dtype="int64",
            ),
            # The same rows apart: works matched, and identifiers (unmatched and reserved).
            "matched": pd.Series([rows(p.licence_id, 0) for p in pools], dtype="int64"),
            "identifiers": pd.Series([rows(p.licence_id, 1) for p in pools], dtype="int64"),
        }
    )


def chunk_plan(
    licences: pd.DataFrame,
    *,
    partitions: int,
    chunk_rows: int,
    fallback: str = PROXY,
    works: int | None = None,
) -> list[tuple[list[int], list[int]]]:
    """Group the licences into map partitions of about ``chunk_rows`` usage rows each (at
    least ``partitions`` of them, when there are licences enough), each a pair (licences
    priced there, donor licences), in a deterministic order.

    The units are `partition_plan`'s: with the proxy fallback, the pooled licences of a
    product (``pooled``) are one unit, which reads the product's other licences as donors;
    every other licence is a unit of its own. A unit's cost is its licences' ``cost``; its
    donors' usage is read summed per work and identifier (`cycles.cycle_usage_load`'s
    ``lenders``), so they count at most ``works`` (the catalogue's size) plus their
    identifiers, when the frame has `matched` and `identifiers`. Units go largest first to the
    least loaded partition, or to a new one when that would pass ``chunk_rows``: no partition
    costs more than ``chunk_rows`` or its largest unit (one licence's usage is never split,
    the engine prices its pool in one piece). The result does not depend on the grouping."""
    if partitions < 1 or chunk_rows < 1:
        raise ValueError("at least one partition of at least one row")
    frame = licences.sort_values("licence_id", kind="stable")
    units: list[tuple[int, int, list[int], list[int]]] = []  # cost, first id, priced, donors
    pooled = frame["pooled"].astype(bool) & (fallback == PROXY)
    for product, group in frame[pooled].groupby("product", sort=True):
        donors = frame[(frame["product"] == product) & ~pooled]
        priced = [int(x) for x in group["licence_id"]]
        lent = int(donors["cost"].sum())
        if works is not None and {"matched", "identifiers"} <= set(donors.columns):
            lent = min(
                lent, min(int(donors["matched"].sum()), works) + int(donors["identifiers"].sum())
            )
        cost = int(group["cost"].sum()) + lent
        units.append((cost, priced[0], priced, [int(x) for x in donors["licence_id"]]))
    for row in frame[~pooled].itertuples():
        units.append((int(row.cost), int(row.licence_id), [int(row.licence_id)], []))
    units.sort(key=lambda u: (-u[0], u[1]))
    # As many partitions as the chunks the usage fills (a unit larger than a chunk fills
    # one), more if a unit does not fit the least loaded one.
    chunks = -(-sum(min(u[0], chunk_rows) for u in units) // chunk_rows)
    wanted = min(max(partitions, chunks), len(units))
    bins: list[list] = [[0, i, [], set()] for i in range(wanted)]  # load, index, priced, donors
    for cost, _, priced, donors in units:
        target = min(bins, key=lambda b: (b[0], b[1]))
        if target[0] and target[0] + cost > chunk_rows:
            target = [0, len(bins), [], set()]
            bins.append(target)
        target[0] += cost
        target[2].extend(priced)
        target[3].update(donors)
    plan = []
    for _, _, priced, donors in bins:
        if priced:
            plan.append((sorted(priced), sorted(donors - set(priced))))
    return sorted(plan, key=lambda part: part[0][0])


# ------------------------------------------------------------------------ chunks, one task
def task_chunk_plan(
    licences: pd.DataFrame, *, chunk_rows: int, fallback: str = PROXY, works: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """`chunk_plan` for the chunks of one task: the licences priced on their own usage in
    chunks of about ``chunk_rows`` rows, then the proxy pools (with the proxy fallback, a
    product's pooled licences, priced over its declared licences as donors) in chunks of
    their own, as many pools to a chunk as fit: so that every donor is priced in a chunk
    before its pool's, which sums their usage on the way (`LentUsage`), and no proxy pool's
    chunk prices another pool's donor."""
    frame = licences.sort_values("licence_id", kind="stable")
    pooled = frame["pooled"].astype(bool) & (fallback == PROXY)
    plan = chunk_plan(frame[~pooled], partitions=1, chunk_rows=chunk_rows, fallback=fallback)
    chunk: tuple[list[int], list[int]] = ([], [])
    load = 0
    for product, group in frame[pooled].groupby("product", sort=True):
        donors = frame[(frame["product"] == product) & ~pooled]
        lent = int(donors["cost"].sum())
        if works is not None and {"matched", "identifiers"} <= set(donors.columns):
            lent = min(
                lent, min(int(donors["matched"].sum()), works) + int(donors["identifiers"].sum())
            )
        cost = int(group["cost"].sum()) + lent
        if load and load + cost > chunk_rows:
            plan.append((sorted(chunk[0]), sorted(chunk[1])))
            chunk, load = ([], []), 0
        chunk[0].extend(int(x) for x in group["licence_id"])
        chunk[1].extend(int(x) for x in donors["licence_id"])
        load += cost
    if chunk[0]:
        plan.append((sorted(chunk[0]), sorted(chunk[1])))
    return plan


_PARTIAL_KEYS = {
    "fees": ["product"],
    "holders": ["holder_id"],
    "suspense": ["reason", "ref"],
    "lines_by_work": ["holder_id", "work_id"],
    "lines_by_source": ["holder_id", "product"],
}


# Rows a frame of `PartialSums` may hold unsummed, at least (past the rows summed so far).
SUMS_WAITING_ROWS = 1_000_000


class _WaitingSums:
    """Frames kept per name as a list that waits to be summed (`_sum_frames`, the subclass's)
    until the rows waiting outnumber both the rows summed so far and ``waiting_rows``, and when
    read (`_summed_frame`): the list never holds much more than the sums plus
    ``waiting_rows`` and the last frame, and each row is summed a few times, not again with
    every later frame."""

    def __init__(self, names: Collection[str], *, waiting_rows: int) -> None:
        self.waiting_rows = waiting_rows
        self._frames: dict[str, list[pd.DataFrame]] = {name: [] for name in names}
        self._summed = dict.fromkeys(names, 0)  # rows of the sums (the first frame)
        self._waiting = dict.fromkeys(names, 0)  # rows after them

    def _push(self, name: str, frame: pd.DataFrame) -> None:
        if not len(frame):
            return
        self._frames[name].append(frame)
        self._waiting[name] += len(frame)
        if self._waiting[name] > max(self._summed[name], self.waiting_rows):
            self._sum(name)

    def _sum(self, name: str) -> None:
        frame = self._sum_frames(name, self._frames[name])
        self._frames[name] = [frame] if len(frame) else []
        self._summed[name], self._waiting[name] = len(frame), 0

    def _summed_frame(self, name: str) -> pd.DataFrame | None:
        """Everything pushed as ``name`` summed (None: nothing was)."""
        if self._waiting[name]:
            self._sum(name)
        return self._frames[name][0] if self._frames[name] else None

    def _sum_frames(self, name: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
        raise NotImplementedError

    def rows(self) -> int:
        """Rows held, summed or waiting (what the sums cost in memory)."""
        return sum(self._summed.values()) + sum(self._waiting.values())


class PartialSums(_WaitingSums):
    """The exact running sums of a task's chunk partials (their licences apart), in bounded
    memory and time (`_WaitingSums`): each frame's chunks summed per key (`_summed`), as
    large as the statements they end in, not as the usage."""

    def __init__(self, scale: int, *, waiting_rows: int = SUMS_WAITING_ROWS) -> None:
        super().__init__(_PARTIAL_KEYS, waiting_rows=waiting_rows)
        self.scale = scale

    def add(self, partial: Partial) -> None:
        if partial.scale != self.scale:
            raise ValueError("a partial made at another scale")
        for name in _PARTIAL_KEYS:
            self._push(name, getattr(partial, name))

    def _sum_frames(self, name: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
        return _summed(name, frames, self.scale)

    def total(self) -> Partial:
        """Every chunk's sums added up per key (the licences empty)."""
        frames = {name: self._summed_frame(name) for name in _PARTIAL_KEYS}
        return Partial(
            scale=self.scale,
            licences=empty_partial_frame("licences"),
            **{n: f if f is not None else empty_partial_frame(n) for n, f in frames.items()},
        )


def _summed(name: str, frames: list[pd.DataFrame], scale: int) -> pd.DataFrame:
    """``frames`` (of the `Partial` frame ``name``) summed per key, each scaled amount carried
    back to ``minor × scale + sub`` with 0 <= sub < scale: exact, integers only (the subs of
    fewer than 9 × 10^9 rows below a scale of 10^9 cannot pass 63 bits). Integer keys are
    sorted and summed in numpy (about twice as fast as a pandas groupby), the others (few
    rows: products, suspense reasons and identifiers) grouped by pandas."""
    keys, columns = _PARTIAL_KEYS[name], PARTIAL_COLUMNS[name]
    values = [c for c in columns if c not in keys]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    key = _int_key(frame, keys)
    if key is not None:
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
        first = order[starts]
        out = {c: frame[c].to_numpy("int64")[first] for c in keys}
        for c in values:
            out[c] = np.add.reduceat(frame[c].to_numpy("int64")[order], starts)
        frame = pd.DataFrame(out)
    else:
        frame = frame.groupby(keys, as_index=False, sort=False)[values].sum()
    for amount in ("amount", "fee"):
        if f"{amount}_sub" in frame.columns:
            sub = frame[f"{amount}_sub"].to_numpy("int64")
            frame[f"{amount}_minor"] = frame[f"{amount}_minor"].to_numpy("int64") + sub // scale
            frame[f"{amount}_sub"] = sub % scale
    return frame[list(columns)].astype(columns)


def _int_key(frame: pd.DataFrame, keys: list[str]) -> np.ndarray | None:
    """One int64 per row that is equal exactly when the rows' ``keys`` are (one integer key
    as it is, two non-negative ones below 2^31 side by side), or None."""
    if len(keys) > 2 or not _INT_KEYS.issuperset(keys):
        return None
    if len(keys) == 1:
        return frame[keys[0]].to_numpy("int64")
    high, low = (frame[k].to_numpy("int64") for k in keys)
    if len(high) and (min(high.min(), low.min()) < 0 or max(high.max(), low.max()) >= 1 << 31):
        return None
    return (high << 32) | low


_INT_KEYS = frozenset({"holder_id", "work_id"})


class LentUsage(_WaitingSums):
    """The usage of a product's declared licences (the donors of its proxy pool) summed per
    work and reserved, and per identifier and reserved, as the chunks that price them load
    it: what `cycle_inputs.usage_summed_frame` reads from the database, bounded by the works
    and identifiers used, not by the lines (summed again, like `PartialSums`, once the rows
    waiting outnumber the rows summed and ``waiting_rows``)."""

    def __init__(self, *, waiting_rows: int = SUMS_WAITING_ROWS) -> None:
        super().__init__(("matched", "identifiers"), waiting_rows=waiting_rows)
        self.licences: set[int] = set()

    def add(self, licences: Collection[int], usage: pd.DataFrame) -> None:
        """The usage rows (`cycle_inputs.usage_frame`'s) of ``licences``, read whole."""
        self.licences.update(int(lid) for lid in licences)
        matched = usage["work_id"].notna().to_numpy()
        parts = {
            "matched": pd.DataFrame(
                {
                    "work_id": usage["work_id"].to_numpy("int64", na_value=0)[matched],
                    "reserved": usage["reserved"].to_numpy(bool)[matched],
                    "quantity": usage["quantity"].to_numpy("int64")[matched],
                }
            ),
            "identifiers": pd.DataFrame(
                {
                    "ref": usage["ref"][~matched].reset_index(drop=True),
                    "reserved": usage["reserved"].to_numpy(bool)[~matched],
                    "quantity": usage["quantity"].to_numpy("int64")[~matched],
                }
            ),
        }
        for name, part in parts.items():
            self._push(name, part)

    def _sum_frames(self, name: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
        keys = ["work_id", "reserved"] if name == "matched" else ["ref", "reserved"]
        frame = pd.concat(frames, ignore_index=True)
        return frame.groupby(keys, as_index=False, sort=True)["quantity"].sum()

    def frame(self, licence_ids: Collection[int]) -> pd.DataFrame | None:
        """The summed usage dealt out in turn over ``licence_ids`` (which must be the
        licences added), as `cycle_inputs.usage_summed_frame` makes it, or None when there
        are fewer rows than licences (the caller then reads them from the database)."""
        if set(licence_ids) != self.licences or not self.licences:
            raise ValueError("the donors are not the licences whose usage was summed")
        matched, identifiers = (self._summed_frame(n) for n in ("matched", "identifiers"))
        matched = _positive(matched, ["work_id", "reserved"])
        identifiers = _positive(identifiers, ["ref", "reserved"])
        m, n = len(matched), len(identifiers)
        lenders = np.asarray(sorted(self.licences), dtype="int64")
        if m + n < len(lenders):
            return None
        return pd.DataFrame(
            {
                "licence_id": lenders[np.arange(m + n) % len(lenders)],
                "work_id": pd.arrays.IntegerArray(
                    np.concatenate([matched["work_id"].to_numpy("int64"), np.zeros(n, "int64")]),
                    np.concatenate([np.zeros(m, bool), np.ones(n, bool)]),
                ),
                "ref": pd.Series([""] * m + identifiers["ref"].tolist(), dtype="str"),
                "quantity": np.concatenate(
                    [
                        matched["quantity"].to_numpy("int64"),
                        identifiers["quantity"].to_numpy("int64"),
                    ]
                ),
                "reserved": np.concatenate(
                    [matched["reserved"].to_numpy(bool), identifiers["reserved"].to_numpy(bool)]
                ),
            }
        )


def _positive(frame: pd.DataFrame | None, keys: list[str]) -> pd.DataFrame:
    """The rows of positive quantity, in key order (the database's HAVING and ORDER BY)."""
    if frame is None:
        return pd.DataFrame({**{k: [] for k in keys}, "quantity": np.zeros(0, "int64")})
    frame = frame[frame["quantity"].to_numpy("int64") > 0]
    return frame.sort_values(keys, kind="stable", ignore_index=True)


def _lending(
    usage: pd.DataFrame, priced: Collection[int], lenders: Collection[int], by_id: dict
) -> dict[str, tuple[list[int], pd.DataFrame]]:
    """Per product, the licences of ``priced`` that lend their usage to a proxy pool priced
    later, and their rows of ``usage`` (read whole: priced here)."""
    found: dict[str, list[int]] = {}
    for lid in priced:
        if lid in lenders:
            found.setdefault(by_id[lid].product_code, []).append(int(lid))
    out = {}
    ids = usage["licence_id"].to_numpy("int64")
    for product, group in found.items():
        out[product] = (group, usage[np.isin(ids, group)])
    return out


def allocation_chunked(
    *,
    cycle: Cycle,
    releases: list[SuspenseRelease],
    returns: list[PayoutReturn],
    chunk_rows: int,
    loaded: tuple[list[LicencePool], dict[int, list[int]]],
    started: float,
) -> Allocation | None:
    """The allocation in this one task, chunk by chunk (`chunk_plan`): each chunk's usage is
    loaded, mapped (`allocate_map`) and dropped, its partial added to the running sums
    (`PartialSums`); then the reduce, as a run's, and the store. The same result as
    `allocate` over everything, in the memory of one chunk plus the sums, with no scratch
    rows in the database (a run's map tasks write and read back every partition's partials).
    The works and shares are read once for all the chunks (`cycle_inputs.catalogue_load`),
    and the proxy pools' donor usage is summed from the chunks that priced the donors."""
    pools, declared = loaded
    params = cycles._params(cycle.policy)
    timings: dict[str, float] = {}
    frame = plan_frame(pools, declared, params)
    catalogue_size = cycle_inputs.works_count()
    plan = task_chunk_plan(
        frame, chunk_rows=chunk_rows, fallback=params.fallback, works=catalogue_size
    )
    by_id = {p.licence_id: p for p in pools}
    # The chunks that price a proxy pool go last: their donors, the declared licences of the
    # pool's product, are priced in the chunks before, whose usage is summed per product,
    # work and identifier on the way (`LentUsage`: the works used, not the lines), instead of
    # being read again from the database summed there.
    plan = sorted(plan, key=lambda part: bool(part[1]))
    lenders = {lid for _, donors in plan for lid in donors}
    lent = {
        product: LentUsage() for product in sorted({by_id[lid].product_code for lid in lenders})
    }
    seen: list[Partial] = []
    sums = PartialSums(params.scale)
    t = time.perf_counter()
    # The works and shares, read once for every chunk when the chunks' usage rows name works
    # at least half the catalogue's size in all (else each chunk reads only the works its
    # usage names, fewer rows in all than one pass over the catalogue).
    catalogue = None
    if len(plan) > 1 and 2 * int(frame["matched"].sum()) >= catalogue_size:
        catalogue = cycle_inputs.catalogue_load()
    timings["catalogue"] = round(time.perf_counter() - t, 3)
    for index, (priced, donors) in enumerate(plan):
        cycles._progress(
            cycle.pk, f"allocating: chunk {index + 1} of {len(plan)}", 10 + 65 * index // len(plan)
        )
        ids = [*priced, *donors]
        products: dict[str, list[int]] = {}
        for lid in donors:
            products.setdefault(by_id[lid].product_code, []).append(lid)
        # Each product's donors from the sums of the chunks before (when they priced every
        # one of them), else read summed from the database.
        summed, read = [], []
        for product in sorted(products):
            group = [lid for lid in products[product] if declared.get(lid)]
            frame_lent = None
            if group and set(group) == lent[product].licences:
                frame_lent = lent[product].frame(group)
            if frame_lent is None:
                read.append(products[product])
            else:
                summed.append(frame_lent)
                lent[product] = LentUsage()  # one proxy pool per product: done with them
        from_sums = {lid for frame_lent in summed for lid in frame_lent["licence_id"].unique()}
        chunk = {lid: declared[lid] for lid in ids if declared.get(lid) and lid not in from_sums}
        usage, works, shares = cycles.cycle_usage_load(
            chunk, lenders=read, catalogue=catalogue, summed=summed
        )
        del summed
        chunk = {lid: declared[lid] for lid in ids if declared.get(lid)}
        for product, group in _lending(usage, priced, lenders, by_id).items():
            lent[product].add(group[0], group[1])
        inputs = CycleInputs(
            licences=cycles.licences_frame([by_id[lid] for lid in ids], chunk),
            usage=usage,
            works=works,
            shares=shares,
            holders=empty_frame("holders"),
            releases=empty_frame("releases"),
        )
        del usage, works, shares
        partial = allocate_map(inputs, params, donors=donors)
        del inputs
        seen.append(
            Partial(
                scale=partial.scale,
                licences=partial.licences,
                **{name: empty_partial_frame(name) for name in _PARTIAL_KEYS},
            )
        )
        sums.add(partial)
        del partial
    del catalogue, lent
    total = sums.total()
    timings["map"] = round(time.perf_counter() - t, 3)
    timings["chunks"] = len(plan)
    t = time.perf_counter()
    inputs = _reduce_inputs(cycle, pools, declared, releases, returns)
    timings["load"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    partials = [*seen, total]
    result = allocate_reduce(partials, inputs, params)
    timings["engine"] = round(time.perf_counter() - t, 3)
    return cycles.cycle_allocation_finish(
        cycle_id=cycle.pk,
        result=result,
        pools=pools,
        declared=declared,
        releases=releases,
        returns=returns,
        timings=timings,
        started=started,
    )


def _reduce_inputs(cycle: Cycle, pools, declared, releases, returns) -> CycleInputs:
    """What the reduce needs besides the partials: the licences, the works and shares the
    releases name, the holders (no usage: the partials carry it)."""
    _, works, shares = cycles.cycle_usage_load(
        {}, release_work_ids=[r.work_id for r in releases if r.work_id]
    )
    return CycleInputs(
        licences=cycles.licences_frame(pools, declared),
        usage=empty_frame("usage"),
        works=works,
        shares=shares,
        holders=cycles.cycle_holders_frame(cycle, returns),
        releases=cycles.releases_frame(releases),
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
        # The donors only lend their usage to their product's proxy pool: read summed per
        # product (works, not lines).
        products: dict[str, list[int]] = {}
        for lid in part.donor_ids:
            products.setdefault(pools[lid]["product_code"], []).append(lid)
        usage, works, shares = cycles.cycle_usage_load(
            declared, lenders=[products[p] for p in sorted(products)]
        )
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
    return Partial(scale=scale, licences=_partial_licences(partition), **_partial_frames(rows))


_KEYS = ("holder_id", "work_id", "label", "ref")
_SUMMED = ("quantity", "amount_minor", "amount_sub", "fee_minor", "fee_sub")


def partials_summed(run: AllocationRun) -> Partial:
    """The partials of every partition of ``run`` added up per key in the database (one row
    per bucket and statement-line key, however many partitions saw it), licences apart: what
    the reduce reads is bounded by the statements it writes, not by the usage lines nor the
    partitions. Each scaled amount is carried back to ``minor × scale + sub`` with
    0 <= sub < scale (the sums of subs stay far inside 64 bits: fewer than 1000 partitions,
    each sub below the scale)."""
    keys, sums = ", ".join(_KEYS), ", ".join(f"SUM({c})" for c in _SUMMED)
    with transaction.atomic():
        if connection.vendor == "postgresql":  # the grouping in memory, not on disk
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
        rows = table_read(
            f"SELECT kind, {keys}, {sums} FROM {AllocationPartial._meta.db_table} "  # noqa: S608  # nosec B608 - model tables, constant columns
            f"WHERE partition_id IN (SELECT id FROM {AllocationPartition._meta.db_table} "
            f"WHERE run_id = %s) GROUP BY kind, {keys}",
            [run.pk],
            schema=pa.schema(
                [("kind", pa.int64()), *((c, _ROW_TYPES[c]) for c in (*_KEYS, *_SUMMED))]
            ),
        )
    scale = run.scale
    for name in ("amount", "fee"):
        minor, sub = rows[f"{name}_minor"].to_numpy(), rows[f"{name}_sub"].to_numpy()
        rows = rows.set_column(
            rows.schema.get_field_index(f"{name}_minor"),
            f"{name}_minor",
            pa.array(minor + sub // scale, pa.int64()),
        ).set_column(
            rows.schema.get_field_index(f"{name}_sub"),
            f"{name}_sub",
            pa.array(sub % scale, pa.int64()),
        )
    return Partial(scale=scale, licences=empty_partial_frame("licences"), **_partial_frames(rows))


def _partial_frames(rows: pa.Table) -> dict[str, pd.DataFrame]:
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
    return frames


def _partial_licences(partition: AllocationPartition) -> pd.DataFrame:
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
    return (
        licences.astype(PARTIAL_COLUMNS["licences"])
        if len(licences)
        else empty_partial_frame("licences")
    )


def _licences_only(partition: AllocationPartition, scale: int) -> Partial:
    """A partition's licences (what it priced, what it only read as donors), no sums."""
    return Partial(
        scale=scale,
        licences=_partial_licences(partition),
        **{name: empty_partial_frame(name) for name in PARTIAL_COLUMNS if name != "licences"},
    )


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
        # Each partition's licences (so that the engine still checks that every licence is
        # priced once and each proxy pool whole), and every sum added up in the database.
        partials = [_licences_only(part, run.scale) for part in parts]
        partials.append(partials_summed(run))
        pools = [_pool(p) for p in run.licences]
        declared = {int(p["licence_id"]): p["declarations"] for p in run.licences}
        declared = {k: v for k, v in declared.items() if v}
        order = {pk: i for i, pk in enumerate(run.releases)}
        releases = sorted(
            SuspenseRelease.objects.filter(pk__in=run.releases).select_related("item"),
            key=lambda r: order[r.pk],
        )
        returns = list(PayoutReturn.objects.filter(pk__in=run.payout_returns))
        inputs = _reduce_inputs(cycle, pools, declared, releases, returns)
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
    _scratch_delete(AllocationPartition.objects.filter(run_id=run_id))


def _scratch_delete(partitions) -> None:
    """Delete the partials of ``partitions`` (a queryset): `DELETE ... WHERE partition_id IN
    (those partitions)`, through the partition index, rather than Django's delete over a join
    (`id IN (SELECT id ... JOIN ...)`), which hashes every partial's id first."""
    ids = partitions.values("pk")
    AllocationPartial.objects.filter(partition_id__in=ids).delete()
    AllocationPartialLicence.objects.filter(partition_id__in=ids).delete()


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
