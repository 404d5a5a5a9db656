"""Allocate one payout cycle: licence pools in, holder totals, statements and suspense out.

Pure code over frames: pandas in, pandas out, the heavy lifting set-based in an in-process
DuckDB connection. No Django, no ORM, no settings.

Money is integer minor units. Between input and output every amount is carried exactly as an
integer at a fixed-point scale `S` (`PolicyParams.scale` sub-units per minor unit) in DuckDB
integers or Python ints: `pool × S × weight` is always formed in HUGEINT (128-bit); the amounts
that follow are BIGINT when the whole cycle times `S` fits in 63 bits (fast) and HUGEINT
otherwise. DuckDB checks both for overflow: it raises (as `AllocationError`), it never wraps.
Products such as `a × bp / 10⁴` are split as `(a div 10⁴) × bp + (a mod 10⁴) × bp div 10⁴`,
which is exact and never needs a wider type. The only losses are the
floors of step 3 (`pool × S × u / W` per usage row, less than one sub-unit per row) and of the
pro-rata release split (less than one sub-unit per holder); both are far below one minor unit
and are absorbed by the single rounding of the cycle:

1. undeclared or nil licences (declared=False or zero weight): with `fallback="proxy"` all
   those of one product share ONE pool (their pools summed) over the summed usage of the
   product's declared licences — its scaled split is exactly the sum of theirs up to
   truncation, and each licence's breakdown is the pool's parts split by its share of the
   pool; with `fallback="suspense"` each whole pool goes to `no_usage` (ref = licence id);
2. weight per usage row: quantity × media weight (unmatched identifiers: the unmatched
   weight; an identifier held by a registered reservation, work_id <NA> and reserved=True,
   weighs like an unmatched one);
3. each pool over its rows by weight;
4. the administration fee per row (media beats product beats default);
5. the net of each row to the work's holders by share, or to a suspense bucket (`unmatched`
   or, for a reserved identifier, `reserved`, keyed by the ref); the row's fee is split by
   the same shares into each holder's informational `deductions_minor` (summed at scale,
   rounded down; gross = earned + deductions; no money moves on it);
6. releases out of suspense to a work's holders (the release is the staff decision, so the
   work's dispute flag is not consulted again; an unassigned part goes back to suspense), or
   pro rata to this cycle's earners by their scaled earnings from steps 3-5;
7. ONE largest-remainder rounding over all buckets (fees, holders, suspense) together, where
   a holder's remainder counts together with the rounding residue it carries from earlier
   cycles (below);
8. holder totals with brought-forward balances and thresholds;
9. statement lines rounded inside each holder's total by the same method: by work, and by
   source (one line per product, or per release; the per-licence detail is `licences`).

The totals identity `in = fees + holders + suspense` is checked exactly and raises
`AllocationError` (never `assert`).

Map and reduce. Steps 1-5 of a pool read only that pool's licences and usage, and everything
steps 6-9 need of them is a sum of per-row integers: per bucket (fee by product, holder
earnings and attributable fee, suspense reason/ref) and per statement-line key (holder × work
with its quantity, holder × product). `allocate_map` computes those sums, unrounded, for a
partition of the licences (`Partial`: each scaled amount as `minor × S + sub`), and
`allocate_reduce` adds the partials of every partition and runs steps 6-9. Integer addition
is associative, so the result (frames, totals, residues, checksum) is exactly `allocate`'s for
ANY partition that keeps each pool whole: the licences of one proxy pool together, with the
other licences of their product present at least as donors (their usage only, priced
elsewhere; `partition_plan` makes such partitions). `allocate` is the map over every licence
reduced in the same connection; `allocate_reduce` raises if the partials miss or repeat a
licence or split a proxy pool.

What is guaranteed, per cycle: every bucket gets the floor or the ceiling of its exact scaled
amount, so it lands within one minor unit of its exact rational amount (the scaled amount is
below the rational by the truncation above, a few sub-units); the parts sum exactly to what
came in; each holder's statement lines sum exactly to its earnings; no amount is negative.

Across cycles: a holder's residue is the exact scaled amount it was owed minus what it was
rounded to, in sub-units, plus the residue it came with (`holders.residue_sub`, optional, 0
without; `CycleResult.residues` hands out the new ones, for the next cycle). It is exact
bookkeeping: over any run of cycles, Σ earned × S + last residue = Σ exact scaled amounts +
first residue, so a holder's cumulative rounding error is its residue (plus truncation),
known to the sub-unit. Step 7 orders the remainders by remainder + residue, so a holder
rounded down in one cycle ranks ahead in the next by exactly what it is owed, and one rounded
up ranks behind: over repeated cycles the rounding takes turns instead of drifting (rounding
each cycle on its own can drift by up to one unit per cycle; with residues the property tests
find every holder within one unit of its exact total over repeated identical cycles). It
is not a hard bound for arbitrary sequences of cycles: every bucket of a cycle stays within
one unit of that cycle's own amount and the cycle must add up, so when more holders are owed
a whole unit than the cycle has units left (three holders each owed 0.4 after a cycle whose
larger suspense remainders took its units, then each 0.65 more with two units to hand out),
one of them carries slightly more than a unit into the next cycle, where it ranks first.
Without residues (or with zeros) the rounding is exactly the plain largest remainder.
"""

# ruff: noqa: S608 - SQL is built from module constants and validated policy integers only;
# every value that comes from data (products, media types, refs) travels in registered frames.
# Bandit B608, marked `# nosec B608` on each statement, for the same reason: the DuckDB SQL
# interpolates only module constants (PPM, BP, suspense reasons, table and column names), the
# amount type (BIGINT or HUGEINT), the policy's integers (checked by _check_policy) and ints
# computed here (ids, counts, totals, bounds).
from __future__ import annotations

import functools
import hashlib
import math
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from royalties.engine.rounding import RoundingError, largest_remainder

_T = TypeVar("_T")
_U = TypeVar("_U")

# An allocation's own DuckDB connection: its threads and the cap of its buffer manager.
DUCKDB_THREADS = 2
DUCKDB_MEMORY_LIMIT = "1GB"
# Whether numpy may ask for transparent huge pages while an allocation runs (numpy does by
# default). Off: in a worker that has run for a while, each fresh huge page made the kernel
# compact memory first (`defrag=madvise`); on bench/cycle.py's 8.2M rows, usage 1.03-1.09 s
# with them, 0.49-0.52 s without, the engine 3.02-3.05 -> 2.50-2.77 s.
HUGEPAGES = False
# Threads of the engine's own numpy work (`_pipelined`): 1 runs it all in the caller's.
ENGINE_THREADS = 2

PPM = 1_000_000  # a whole work, in parts per million
BP = 10_000  # 100 %, in basis points
# Pools whose total weight is below this are priced row by row in 64-bit numpy (exact).
_EXACT_W = 2**53
# The whole-share rows are summed in dense numpy arrays (one slot per work id and product)
# while there are at most this many slots per usage row (plus a few million).
_DENSE_SLOTS_PER_ROW = 4
_DENSE_SLOTS_ANYWAY = 1 << 22
# The matched rows are priced and split this many at a time (two slices in memory at once).
_PRICE_STEP = 500_000
# Whole-length work on the usage rows is done this many rows at a time (`_slices`).
_SLICE = 1 << 20
# Usage frames longer than this are handed to DuckDB as Arrow.
_ARROW_ROWS = 100_000

# Suspense reasons (the `reason` column of `CycleResult.suspense`).
NO_USAGE = "no_usage"
UNMATCHED = "unmatched"
RESERVED = "reserved"
DISPUTED = "disputed"
UNASSIGNED_SHARE = "unassigned_share"
UNDISTRIBUTABLE = "undistributable"

# The columns of `CycleResult.holders`, in order.
HOLDER_COLUMNS = (
    "holder_id",
    "brought_forward_minor",
    "earned_minor",
    "total_minor",
    "payable_minor",
    "carried_forward_minor",
    "gross_minor",
    "deductions_minor",
)

# Policy fallbacks for licences without usable declarations.
PROXY = "proxy"
SUSPENSE = "suspense"
FALLBACKS = (PROXY, SUSPENSE)

# The columns (and pandas dtypes) each input frame must have; `empty_inputs()` builds them.
INPUT_COLUMNS: dict[str, dict[str, str]] = {
    "licences": {
        "licence_id": "int64",
        "product": "str",
        "pool_minor": "int64",
        "declared": "bool",
    },
    "usage": {
        "licence_id": "int64",
        "work_id": "Int64",
        "ref": "str",
        "quantity": "int64",
        "reserved": "bool",
    },
    "works": {"work_id": "int64", "media_type": "str", "disputed": "bool"},
    "shares": {"work_id": "int64", "holder_id": "int64", "share_ppm": "int64"},
    "holders": {
        "holder_id": "int64",
        "brought_forward_minor": "int64",
        "threshold_minor": "int64",
        "ready": "bool",
    },
    "releases": {"release_id": "str", "amount_minor": "int64", "work_id": "Int64"},
}


class AllocationError(ArithmeticError):
    """The inputs are invalid, or the allocation does not add up (never ignored)."""


@dataclass(frozen=True)
class PolicyParams:
    """The society's distribution policy for one cycle (all rates integers)."""

    admin_fee_bp: int
    fee_bp_by_product: Mapping[str, int] = field(default_factory=dict)
    fee_bp_by_media: Mapping[str, int] = field(default_factory=dict)
    media_weight_bp: Mapping[str, int] = field(default_factory=dict)
    unmatched_weight_bp: int = BP
    threshold_minor: int = 0
    scale: int = 10**9
    # Licences undeclared or with zero usage weight: "proxy" (the usage of the declared
    # licences of the same product) or "suspense" (the whole pool to `no_usage`/licence id).
    fallback: str = "proxy"


@dataclass(frozen=True)
class CycleInputs:
    """One cycle's inputs, one currency; columns as in `INPUT_COLUMNS`."""

    licences: pd.DataFrame
    usage: pd.DataFrame
    works: pd.DataFrame
    shares: pd.DataFrame
    holders: pd.DataFrame
    releases: pd.DataFrame


@dataclass(frozen=True)
class CycleResult:
    """Everything a cycle decides, as frames sorted by their keys, plus totals and a checksum."""

    holders: pd.DataFrame
    lines_by_work: pd.DataFrame
    lines_by_source: pd.DataFrame
    suspense: pd.DataFrame
    fees: pd.DataFrame
    licences: pd.DataFrame
    totals: dict[str, int]
    checksum: str
    # Each holder's rounding residue after the cycle, in sub-units (holder_id, residue_sub;
    # non-zero ones only): the next cycle's `holders.residue_sub` input. Not in the checksum.
    residues: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            {"holder_id": pd.Series([], dtype="int64"), "residue_sub": pd.Series([], dtype="int64")}
        )
    )


# The columns of a `Partial`'s frames. A scaled amount `n` travels as two int64 columns,
# `<x>_minor = n div scale` and `<x>_sub = n mod scale` (0 <= sub < scale), so it never needs
# more than 64 bits per column (or a float) on its way through pandas or a database.
PARTIAL_COLUMNS: dict[str, dict[str, str]] = {
    "fees": {"product": "str", "amount_minor": "int64", "amount_sub": "int64"},
    "holders": {
        "holder_id": "int64",
        "amount_minor": "int64",
        "amount_sub": "int64",
        "fee_minor": "int64",
        "fee_sub": "int64",
    },
    "suspense": {"reason": "str", "ref": "str", "amount_minor": "int64", "amount_sub": "int64"},
    "lines_by_work": {
        "holder_id": "int64",
        "work_id": "int64",
        "quantity": "int64",
        "amount_minor": "int64",
        "amount_sub": "int64",
    },
    "lines_by_source": {
        "holder_id": "int64",
        "product": "str",
        "amount_minor": "int64",
        "amount_sub": "int64",
    },
    # Every licence the partition saw: `priced` (its pool was allocated here) or a donor
    # (only lent its usage to its product's proxy pool); `direct`: priced on its own usage.
    # The pool's parts are rounded inside the pool already (they are final).
    "licences": {
        "licence_id": "int64",
        "product": "str",
        "priced": "bool",
        "direct": "bool",
        "pool_minor": "int64",
        "fee_minor": "int64",
        "holders_minor": "int64",
        "suspense_minor": "int64",
    },
}


@dataclass(frozen=True)
class Partial:
    """The map step's answer for one partition of a cycle's licences: per bucket and per
    statement-line key, the exact scaled amount before any rounding (steps 1-5).

    Sums of partials are exact (integer addition), so `allocate_reduce` over the partials of
    any partition of the licences (pools kept whole) equals `allocate`."""

    scale: int
    fees: pd.DataFrame
    holders: pd.DataFrame
    suspense: pd.DataFrame
    lines_by_work: pd.DataFrame
    lines_by_source: pd.DataFrame
    licences: pd.DataFrame


def empty_partial_frame(name: str) -> pd.DataFrame:
    """An empty `Partial` frame with the right columns and dtypes."""
    return pd.DataFrame(
        {c: pd.Series([], dtype=t) for c, t in PARTIAL_COLUMNS[name].items()},
    )


def empty_frame(name: str) -> pd.DataFrame:
    """An empty input frame with the right columns and dtypes."""
    return pd.DataFrame(
        {c: pd.Series([], dtype=t) for c, t in INPUT_COLUMNS[name].items()},
    )


def empty_inputs(**frames: pd.DataFrame) -> CycleInputs:
    """`CycleInputs` with every frame not given left empty (handy in tests and callers)."""
    return CycleInputs(**{n: frames.get(n, empty_frame(n)) for n in INPUT_COLUMNS})


# --------------------------------------------------------------------------------------------
# Entry point


def allocate(
    inputs: CycleInputs,
    policy: PolicyParams,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    timings: dict[str, float] | None = None,
) -> CycleResult:
    """Allocate one cycle. Raises `AllocationError` on invalid input or a broken identity.

    The map step over every licence, then the reduce step, in one DuckDB connection (no
    partial ever leaves it). `con` lets a caller reuse one DuckDB connection across many small
    cycles (tests); it is used by one call at a time. `timings`, if given, receives seconds
    per stage.
    """
    _check_policy(policy)
    _check_columns(inputs)
    stages = timings if timings is not None else {}
    return _execute(con, lambda c: _Run(c, inputs, policy, stages).run())


def allocate_map(
    inputs: CycleInputs,
    policy: PolicyParams,
    *,
    donors: Collection[int] = (),
    con: duckdb.DuckDBPyConnection | None = None,
    timings: dict[str, float] | None = None,
) -> Partial:
    """The map step (1-5) over one partition: the pools of `inputs.licences` (but those named
    in `donors`) over their usage, unrounded.

    `inputs` holds the partition's licences, their usage, and the works and shares that usage
    names; `holders` and `releases` are not read. Licences whose pools are one proxy pool
    (with the proxy fallback, the undeclared or nil licences of a product) must come together,
    with every declared licence of their product present, priced here or as a donor: a donor
    only lends its usage to the proxy pool (it is priced in another partition). A donor
    without usage of its own raises `AllocationError`; `allocate_reduce` checks the rest.
    """
    _check_policy(policy)
    _check_columns(inputs)
    stages = timings if timings is not None else {}
    run = lambda c: _Run(c, inputs, policy, stages, donors=donors).run_map()  # noqa: E731
    return _execute(con, run)


def allocate_reduce(
    partials: Sequence[Partial],
    inputs: CycleInputs,
    policy: PolicyParams,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    timings: dict[str, float] | None = None,
) -> CycleResult:
    """The reduce step (6-9) over the partials of every partition of the cycle's licences:
    sums them, then releases, the one rounding of the cycle, holder totals and statement lines.

    `inputs` holds every licence of the cycle, the holders, the releases and the shares of the
    works releases name; `usage` and `works` are not read. Raises `AllocationError` unless
    the partials price every licence exactly once and keep each proxy pool whole.
    """
    _check_policy(policy)
    _check_columns(inputs)
    for partial in partials:
        if not isinstance(partial, Partial):
            raise AllocationError("partials must be Partial objects")
        _require(partial.scale == policy.scale, "a partial was made at another scale")
        for name, columns in PARTIAL_COLUMNS.items():
            frame = getattr(partial, name)
            missing = [c for c in columns if c not in frame.columns]
            _require(not missing, f"partial {name} lacks column(s) {', '.join(missing)}")
    stages = timings if timings is not None else {}
    return _execute(con, lambda c: _Run(c, inputs, policy, stages).run_reduce(partials))


def _execute(con: duckdb.DuckDBPyConnection | None, action: Callable[[Any], _T]) -> _T:
    """Run `action` on `con` (or on a connection of its own), DuckDB's range errors and
    rounding errors raised as `AllocationError`, the run's tables freed afterwards."""
    spill: tempfile.TemporaryDirectory | None = None
    hugepages = _madvise_hugepages(HUGEPAGES)
    if con is None:
        # Row order inside the engine's tables never matters (every output is sorted). The
        # buffer manager is capped (DuckDB spills to `spill` past it) so a full-size cycle
        # stays well inside a worker's memory next to the input and output frames.
        spill = tempfile.TemporaryDirectory(prefix="allocate-")
        con = duckdb.connect(
            config={
                "preserve_insertion_order": False,
                "threads": DUCKDB_THREADS,
                "memory_limit": DUCKDB_MEMORY_LIMIT,
                "temp_directory": spill.name,
            }
        )
    try:
        return action(con)
    except (duckdb.OutOfRangeException, duckdb.ConversionException) as exc:
        raise AllocationError(f"arithmetic out of range: {exc}") from exc
    except RoundingError as exc:
        raise AllocationError(str(exc)) from exc
    finally:
        _madvise_hugepages(hugepages)
        if spill is not None:
            con.close()  # frees every table of the run at once
            spill.cleanup()
        else:
            _cleanup(con)


def _madvise_hugepages(enabled: bool | None) -> bool | None:
    """Set whether numpy asks the kernel for transparent huge pages for its large arrays
    (numpy's own switch, private but stable since 1.x); returns the previous setting (None:
    numpy has no such switch, nothing done)."""
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is None or enabled is None:
        return None
    return bool(switch(enabled))


def partition_plan(
    licences: pd.DataFrame, partitions: int, *, fallback: str = PROXY
) -> list[tuple[list[int], list[int]]]:
    """Group a cycle's licences into at most `partitions` map partitions, each a pair
    (licences priced there, donor licences), in a deterministic order.

    `licences` has `licence_id`, `product`, `pooled` (True when the licence may fall back to
    its product's proxy pool: undeclared, or possibly nil or of zero weight; when unsure,
    True) and optionally `cost` (e.g. usage rows; default 1). With the proxy fallback, the
    pooled licences of a product are one unit, which also reads the product's other licences
    as donors; every other licence is a unit of its own. Units go to the least loaded
    partition, largest first. Which partition a licence lands in never changes the result.
    """
    _require(partitions >= 1, "at least one partition")
    frame = licences.copy()
    if "cost" not in frame.columns:
        frame["cost"] = 1
    frame = frame.sort_values("licence_id", kind="stable")
    units: list[tuple[int, int, list[int], list[int]]] = []  # -cost, first id, priced, donors
    pooled = frame["pooled"].astype(bool) & (fallback == PROXY)
    for product, group in frame[pooled].groupby("product", sort=True):
        donors = frame[(frame["product"] == product) & ~pooled]
        priced = [int(x) for x in group["licence_id"]]
        cost = int(group["cost"].sum()) + int(donors["cost"].sum())
        units.append((-cost, priced[0], priced, [int(x) for x in donors["licence_id"]]))
    for row in frame[~pooled].itertuples():
        units.append((-int(row.cost), int(row.licence_id), [int(row.licence_id)], []))
    units.sort(key=lambda u: (u[0], u[1]))
    bins: list[tuple[int, int, list[int], list[int]]] = [
        (0, i, [], []) for i in range(min(partitions, len(units)))
    ]
    for negative_cost, _, priced, donors in units:
        load, index, p, d = min(bins, key=lambda b: (b[0], b[1]))
        bins[index] = (load - negative_cost, index, p + priced, sorted(set(d + donors)))
    plan = []
    for _, _, priced, donors in bins:
        priced = sorted(priced)
        plan.append((priced, [x for x in donors if x not in set(priced)]))
    return sorted(plan, key=lambda part: part[0][0])


def _check_policy(policy: PolicyParams) -> None:
    def ints(name: str, value: Any, low: int, high: int | None) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise AllocationError(f"policy {name} must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            raise AllocationError(f"policy {name} = {value} is outside [{low}, {high or '∞'}]")

    ints("admin_fee_bp", policy.admin_fee_bp, 0, BP)
    for key, bp in policy.fee_bp_by_product.items():
        ints(f"fee_bp_by_product[{key!r}]", bp, 0, BP)
    for key, bp in policy.fee_bp_by_media.items():
        ints(f"fee_bp_by_media[{key!r}]", bp, 0, BP)
    for key, bp in policy.media_weight_bp.items():
        ints(f"media_weight_bp[{key!r}]", bp, 0, None)
    ints("unmatched_weight_bp", policy.unmatched_weight_bp, 0, None)
    ints("threshold_minor", policy.threshold_minor, 0, None)
    ints("scale", policy.scale, 1, None)
    if policy.fallback not in FALLBACKS:
        raise AllocationError(
            f"policy fallback must be one of {', '.join(FALLBACKS)}, got {policy.fallback!r}"
        )


def _check_columns(inputs: CycleInputs) -> None:
    for name, columns in INPUT_COLUMNS.items():
        frame = getattr(inputs, name)
        if not isinstance(frame, pd.DataFrame):
            raise AllocationError(f"{name} must be a pandas DataFrame")
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise AllocationError(f"{name} lacks column(s) {', '.join(missing)}")
        for column, dtype in columns.items():
            kind = frame[column].dtype.kind
            if dtype in {"int64", "Int64"} and kind not in "iu" and len(frame):
                raise AllocationError(
                    f"{name}.{column} must be integers, not {frame[column].dtype}"
                )


_INPUT_VIEWS = [f"e_{n}_in" for n in INPUT_COLUMNS] + ["e_fee_prod", "e_fee_media", "e_media_w"]
_RELEASE_VIEWS = ["e_relc_in", "e_rels_in", "e_relp_in", "e_donors_in", "e_priced_in"]
_PARTIAL_VIEWS = [f"p_{n}_in" for n in PARTIAL_COLUMNS]
_TABLES = [
    "e_fee",
    "e_susp",
    "e_wl",
    "e_sl",
    "e_lic",
    "e_wrk",
    "e_shr",
    "e_ws",
    "e_shx",
    "e_top",
    "e_hin",
    "e_u",
    "e_um",
    "e_lw",
    "e_pool",
    "e_lt",
    "e_price",
    "e_r",
    "e_rum",
    "e_c",
    "e_rest",
    "e_m",
    "e_un",
    "e_lsum",
    "e_relc",
    "e_ch",
    "e_b",
    "e_br",
    "e_he",
    "e_hix",
    "e_hp",
]


def _cleanup(con: duckdb.DuckDBPyConnection) -> None:
    """Free a caller's connection of this run's frames and tables (one statement)."""
    for view in _INPUT_VIEWS + _RELEASE_VIEWS + _PARTIAL_VIEWS:
        with suppress(duckdb.Error):  # never registered
            con.unregister(view)
    con.execute("; ".join(f"DROP TABLE IF EXISTS {table}" for table in _TABLES))


# --------------------------------------------------------------------------------------------
# One run


class _Run:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        inputs: CycleInputs,
        policy: PolicyParams,
        timings: dict[str, float],
        *,
        donors: Collection[int] = (),
    ) -> None:
        self.con = con
        self.inputs = inputs
        self.policy = policy
        self.timings = timings
        self.S = policy.scale
        self.donors = sorted({int(d) for d in donors})
        # The fast path's sums of `e_c` as numpy arrays (`_line_sums_fast`), in place of the
        # `e_c`, `e_hp`, `e_wl` and `e_sl` tables until one is needed (`_line_tables`).
        self.sums_np: dict[str, dict[str, np.ndarray]] | None = None
        # The shares' sums per work and the works as numpy arrays when the inputs allow
        # (`_work_shares`, `_works_arrays`); `e_wrk` is made only when SQL needs it.
        self.by_work: pd.DataFrame | None = None
        self.works_np: dict[str, np.ndarray] | None = None
        self.wrk_made = self.ws_made = self.shx_made = False
        self.w_unit = 1  # `load`: the weights' common divisor (`_weight_unit`)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def sql(self, query: str) -> None:
        self.con.execute(query)

    def one(self, query: str) -> tuple:
        rows = self.con.execute(query).fetchall()  # fetched to the end: the result is done
        if not rows:  # an aggregate always returns a row
            raise AllocationError(f"no result from: {query[:60]}")
        return rows[0]

    def run(self) -> CycleResult:
        """`allocate`: the map step over every licence, its sums reduced in place."""
        with self.stage("load"):
            self.load()
        self.map()
        return self.reduce()

    def run_map(self) -> Partial:
        with self.stage("load"):
            self.load(reduce_side=False)
        self.map()
        with self.stage("partial"):
            return self.partial()

    def run_reduce(self, partials: Sequence[Partial]) -> CycleResult:
        with self.stage("load"):
            self.load(map_side=False)
            self.load_partials(partials)
        return self.reduce()

    def map(self) -> None:
        """Steps 1-5, then their sums per bucket and per line key (`e_fee`, `e_ch`, `e_susp`,
        `e_wl`, `e_sl`) and the per-licence breakdown; the row-level tables are freed."""
        with self.stage("usage"):
            self.usage()
        with self.stage("split"):
            self.split()
        with self.stage("sums"):
            self.sums()

    def reduce(self) -> CycleResult:
        """Steps 6-9 from the sums (made by `map`, or summed from partials)."""
        with self.stage("releases"):
            self.releases()
        with self.stage("round"):
            totals = self.round()
        with self.stage("lines"):
            lines_by_work, lines_by_source = self.lines()
        with self.stage("outputs"):
            result = self.outputs(totals, lines_by_work, lines_by_source)
        return result

    # ---------------------------------------------------------------------------------- load
    def load(self, *, map_side: bool = True, reduce_side: bool = True) -> None:
        """Register and check the inputs each side reads: licences always; releases and
        holders for the reduce; works for the map; shares for both (releases to a work)."""
        con, p = self.con, self.policy
        for name in INPUT_COLUMNS:
            frame = getattr(self.inputs, name)
            if name == "usage" and len(frame) > _ARROW_ROWS:
                # DuckDB scans millions of rows faster from Arrow than from pandas' nullable
                # and string columns (the conversion shares the numpy buffers).
                frame = pa.Table.from_pandas(frame, preserve_index=False)
            con.register(f"e_{name}_in", frame)
        con.register("e_fee_prod", _mapping_frame(p.fee_bp_by_product, "product", "bp"))
        con.register("e_fee_media", _mapping_frame(p.fee_bp_by_media, "media_type", "bp"))
        # Weights in units of their greatest common divisor: a row's share of its pool is
        # floor(P × wt / W), which only the ratio wt / W decides, so dividing every weight by
        # the same integer changes no amount, and keeps the weights small enough for the
        # 64-bit path (a quarter's tokens × 10⁴ bp pass 2⁵³ at national scale).
        self.w_unit = _weight_unit(p)
        con.register(
            "e_media_w",
            _mapping_frame(
                {k: v // self.w_unit for k, v in p.media_weight_bp.items()},
                "media_type",
                "weight_bp",
            ),
        )
        con.register("e_donors_in", pd.DataFrame({"licence_id": self.donors}, dtype="int64"))

        # Licences, with the fee rate of their product (or the default); a donor only lends
        # its usage to its product's proxy pool (its own pool is allocated elsewhere).
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_lic AS SELECT
                 CAST(l.licence_id AS BIGINT) AS licence_id, CAST(l.product AS VARCHAR) AS product,
                 CAST(l.pool_minor AS BIGINT) AS pool_minor,
                 CAST(l.declared AS BOOLEAN) AS declared,
                 CAST(coalesce(fp.bp, {p.admin_fee_bp}) AS BIGINT) AS pbp,
                 CAST(dense_rank() OVER (ORDER BY CAST(l.product AS VARCHAR)) - 1 AS BIGINT)
                   AS pidx,
                 CAST(l.licence_id AS BIGINT) IN (SELECT licence_id FROM e_donors_in) AS donor
               FROM e_licences_in l LEFT JOIN e_fee_prod fp ON fp.product = l.product"""  # nosec B608
        )
        n, distinct, nulls, negative, pools, top, products, donors = self.one(
            """SELECT count(*), count(DISTINCT licence_id),
                 count(*) FILTER (licence_id IS NULL OR product IS NULL OR pool_minor IS NULL
                                  OR declared IS NULL),
                 count(*) FILTER (pool_minor < 0),
                 coalesce(sum(pool_minor) FILTER (NOT donor), 0),
                 coalesce(max(licence_id), 0), count(DISTINCT product),
                 count(*) FILTER (donor) FROM e_lic"""
        )
        _require(nulls == 0, "licences has missing values")
        _require(n == distinct, "licences has duplicate licence_id")
        _require(negative == 0, "licences has a negative pool_minor")
        _require(donors == len(self.donors), "a donor licence is not in licences")
        self.pool_minor = int(pools)
        # A product's proxied licences share ONE pool, keyed `proxy_base + pidx` (past every
        # licence id, so pool ids and licence ids never collide).
        self.proxy_base = max(int(top), 0) + 1
        _require(self.proxy_base + int(products) < 2**63, "licence_id too large")
        if reduce_side:
            self.load_releases()
        else:
            self.rel, self.releases_minor = [], 0
        # Every scaled amount of the cycle is at most (pools + releases) × S: when that fits
        # in 64 bits, BIGINT carries them (fast; overflow still raises), otherwise HUGEINT.
        in_scaled = (self.pool_minor + self.releases_minor) * self.S
        self.AMT = "BIGINT" if in_scaled < 2**63 else "HUGEINT"

        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_shr AS SELECT
                 CAST(work_id AS BIGINT) AS work_id, CAST(holder_id AS BIGINT) AS holder_id,
                 CAST(share_ppm AS BIGINT) AS share_ppm
               FROM e_shares_in"""
        )
        nulls, out_of_range, n = self.one(
            f"""SELECT count(*) FILTER (work_id IS NULL OR holder_id IS NULL
                                        OR share_ppm IS NULL),
                       count(*) FILTER (share_ppm < 1 OR share_ppm > {PPM}), count(*)
                FROM e_shr"""  # nosec B608
        )
        _require(nulls == 0, "shares has missing values")
        if out_of_range:
            work_id = self.one(
                f"SELECT min(work_id) FROM e_shr WHERE share_ppm < 1 OR share_ppm > {PPM}"  # nosec B608
            )[0]
            raise AllocationError(f"shares of work {work_id} has a share_ppm outside 1..{PPM}")
        shares = self.inputs.shares
        distinct = _distinct_ints(shares["work_id"], shares["holder_id"])
        if distinct is None:
            pairs = self.one("SELECT count(*) FROM (SELECT DISTINCT work_id, holder_id FROM e_shr)")
            distinct = pairs[0] == n
        if not distinct:
            work_id = self.one(
                """SELECT min(work_id) FROM (SELECT work_id FROM e_shr
                   GROUP BY work_id, holder_id HAVING count(*) > 1)"""
            )[0]
            raise AllocationError(f"shares of work {work_id} names a holder twice")
        # Per work: total ppm, number of shares, the first holder (carries the row's net once
        # in sums) and, for whole works with several shares, the top holder (takes the dust).
        by_work = self.by_work = _work_shares(self.inputs.shares)
        if by_work is not None:  # the same sums in numpy (int64 columns: no SQL group-by)
            over = np.flatnonzero(by_work["tot"].to_numpy() > PPM)[:1]  # sorted by work_id
            work_id, tot = (None, None)
            if len(over):
                work_id, tot = (
                    int(by_work["work_id"].iloc[over[0]]),
                    int(by_work["tot"].iloc[over[0]]),
                )
        else:
            self._ws_sql()
            found = self.con.execute(
                f"SELECT work_id, tot FROM e_ws WHERE tot > {PPM} ORDER BY work_id LIMIT 1"  # nosec B608
            ).fetchall()
            work_id, tot = found[0] if found else (None, None)
        if work_id is not None:
            raise AllocationError(f"shares of work {work_id} sum to {tot} ppm, over {PPM}")
        if map_side:
            self.load_works()
        if reduce_side:
            self.load_holders()

    def load_works(self) -> None:
        """The works with their weight, fee and dispute (the shares as step 5 uses them are
        made when it needs them: `_split_rows`)."""
        unique = _distinct_ints(self.inputs.works["work_id"])
        # The works in numpy when the columns are plain (`_works_arrays`), else `e_wrk`.
        self.works_np = _works_arrays(self.inputs.works, self.by_work, self.policy, self.w_unit)
        if self.works_np is not None:
            _require(bool(unique), "works has duplicate work_id")
            return
        self._works_sql()
        count_distinct = "count(DISTINCT work_id)" if unique is None else "count(*)"
        n, distinct, nulls = self.one(
            f"""SELECT count(*), {count_distinct},
                 count(*) FILTER (work_id IS NULL OR disputed IS NULL) FROM e_wrk"""  # nosec B608
        )
        _require(nulls == 0, "works has missing work_id or disputed")
        _require(n == distinct and unique is not False, "works has duplicate work_id")

    def _ws_sql(self) -> None:
        """`e_ws`, per work: total ppm, number of shares, largest ppm and the first holder
        (carries the row's net once in sums). Made once, when SQL needs it."""
        if self.ws_made:
            return
        self.ws_made = True
        if self.by_work is not None:  # summed in numpy already
            self.con.register("e_priced_in", self.by_work)
            self.sql("CREATE OR REPLACE TEMP TABLE e_ws AS SELECT * FROM e_priced_in")
            self.con.unregister("e_priced_in")
            return
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_ws AS SELECT work_id,
                 sum(share_ppm) AS tot, count(*) AS n, max(share_ppm) AS hi,
                 min(holder_id) AS first_holder
               FROM e_shr GROUP BY work_id"""
        )

    def _shares_sql(self) -> None:
        """`e_top` (whole works with several shares: the top holder, who takes the dust) and
        `e_shx` (the shares step 5 splits row by row: those of works that are not one whole
        share, with the work's first holder and whether the shares make a whole work).
        Made once, when SQL needs them."""
        if self.shx_made:
            return
        self.shx_made = True
        self._ws_sql()
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_top AS
            SELECT s.work_id, min(s.holder_id) AS top FROM e_shr s JOIN e_ws w
              ON w.work_id = s.work_id AND s.share_ppm = w.hi
            WHERE w.n > 1 AND w.tot = {PPM} GROUP BY s.work_id"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_shx AS
            SELECT s.work_id, s.holder_id, s.share_ppm, s.holder_id = w.first_holder AS first,
                   w.tot = {PPM} AS whole
            FROM e_shr s JOIN e_ws w ON w.work_id = s.work_id
            WHERE NOT (w.n = 1 AND w.tot = {PPM})"""  # nosec B608
        )

    def _split_rows(self, top: int) -> dict[str, np.ndarray]:
        """The shares `_Shares` splits rows over (works 0..top that are not one whole share),
        by (work, holder): in numpy when the columns allow (`_split_arrays`), else SQL."""
        got = _split_arrays(self.inputs.shares, top)
        return got if got is not None else self._split_rows_sql(top)

    def _split_rows_sql(self, top: int) -> dict[str, np.ndarray]:
        self._shares_sql()
        return _columns(
            self.con,
            f"""SELECT s.work_id, s.holder_id, s.share_ppm, s.whole,
                   coalesce(t.top, 0) AS top
            FROM e_shx s LEFT JOIN e_top t ON t.work_id = s.work_id
            WHERE s.work_id BETWEEN 0 AND {int(top)}
            ORDER BY s.work_id, s.holder_id""",  # nosec B608
        )

    def _works_sql(self) -> None:
        """`e_wrk`: the works with their usage weight, media fee rate (or NULL), dispute flag
        and shares; `h1`: the holder of a work's one whole share (NULL for any other work).
        Made once, when a step needs it in SQL (`load_works` checked the works)."""
        if self.wrk_made:
            return
        self.wrk_made = True
        self._ws_sql()
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_wrk AS SELECT
                 CAST(w.work_id AS BIGINT) AS work_id, CAST(w.disputed AS BOOLEAN) AS disputed,
                 CAST(coalesce(mw.weight_bp, {BP // self.w_unit}) AS BIGINT) AS wbp,
                 CAST(fm.bp AS BIGINT) AS mbp, ws.work_id IS NOT NULL AS has_shares,
                 CASE WHEN ws.n = 1 AND ws.tot = {PPM} THEN ws.first_holder END AS h1
               FROM e_works_in w LEFT JOIN e_media_w mw ON mw.media_type = w.media_type
                 LEFT JOIN e_fee_media fm ON fm.media_type = w.media_type
                 LEFT JOIN e_ws ws ON ws.work_id = CAST(w.work_id AS BIGINT)"""  # nosec B608
        )

    def load_holders(self) -> None:
        """Holders with their balance, threshold, readiness and carried rounding residue
        (`residue_sub`, optional: 0 when the column is absent)."""
        residue = (
            "CAST(residue_sub AS BIGINT)"
            if "residue_sub" in self.inputs.holders.columns
            else "CAST(0 AS BIGINT)"
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_hin AS SELECT
                 CAST(holder_id AS BIGINT) AS holder_id,
                 CAST(brought_forward_minor AS BIGINT) AS bf,
                 CAST(threshold_minor AS BIGINT) AS thr, CAST(ready AS BOOLEAN) AS ready,
                 {residue} AS res
               FROM e_holders_in"""  # nosec B608
        )
        n, distinct, nulls, negative = self.one(
            """SELECT count(*), count(DISTINCT holder_id),
                 count(*) FILTER (holder_id IS NULL OR bf IS NULL OR thr IS NULL OR ready IS NULL
                                  OR res IS NULL),
                 count(*) FILTER (bf < 0 OR thr < 0) FROM e_hin"""
        )
        _require(nulls == 0, "holders has missing values")
        _require(n == distinct, "holders has duplicate holder_id")
        _require(negative == 0, "holders has a negative brought_forward_minor or threshold_minor")

    def load_releases(self) -> None:
        self.rel = self.con.execute(
            """SELECT CAST(release_id AS VARCHAR), CAST(amount_minor AS BIGINT),
                      CAST(work_id AS BIGINT)
               FROM e_releases_in ORDER BY 1"""
        ).fetchall()
        ids = [r[0] for r in self.rel]
        _require(all(i is not None for i in ids), "releases has a missing release_id")
        _require(len(set(ids)) == len(ids), "releases has duplicate release_id")
        for release_id, amount, _ in self.rel:
            _require(
                amount is not None and amount > 0,
                f"release {release_id} has a non-positive amount_minor",
            )
        self.releases_minor = sum(r[1] for r in self.rel)

    # --------------------------------------------------------------------------------- usage
    def usage(self) -> None:
        """Steps 1-2: usage rows weighted, then proxied for undeclared or nil licences.

        Matched rows (`e_u`, keyed by work) and unmatched rows (`e_um`, keyed by ref) are kept
        apart so that the millions of matched rows never carry a string. `route`: 0 to the
        work's holders, 2 reserved, 3 disputed, 4 a work without shares. In the common case
        (`_matched_rows`: 64-bit amounts, dense work ids, valid rows) the matched rows stay
        numpy arrays instead of `e_u`, with the same values; DuckDB has the unmatched ones.
        """
        p = self.policy
        self.fast = self._matched_rows()
        if self.fast is None:
            self._matched_sql()
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_um AS
            SELECT CAST(u.licence_id AS BIGINT) AS licence_id,
              coalesce(CAST(u.ref AS VARCHAR), '') AS ref, CAST(u.quantity AS BIGINT) AS q,
              CAST(u.quantity AS BIGINT) * {p.unmatched_weight_bp // self.w_unit} AS wt,
              l.pbp AS bp,
              coalesce(CAST(u.reserved AS BOOLEAN), false) AS reserved,
              false AS proxy, l.licence_id IS NULL AS unknown_licence,
              u.reserved IS NULL AS no_reserved
            FROM e_usage_in u LEFT JOIN e_lic l ON l.licence_id = u.licence_id
            WHERE u.work_id IS NULL"""  # nosec B608
        )
        if self.fast is None:
            checks = self.one(
                """SELECT count(*) FILTER (licence_id IS NULL OR q IS NULL OR no_reserved),
                     count(*) FILTER (q < 0), count(*) FILTER (unknown_work),
                     count(*) FILTER (unknown_licence AND licence_id IS NOT NULL)
                   FROM e_u"""
            )
        else:  # `_matched_rows` found every matched row valid
            checks = (0, 0, 0, 0)
        checks_um = self.one(
            """SELECT count(*) FILTER (licence_id IS NULL OR q IS NULL OR no_reserved),
                 count(*) FILTER (q < 0), count(*) FILTER (ref = ''),
                 count(*) FILTER (unknown_licence AND licence_id IS NOT NULL)
               FROM e_um"""
        )
        _require(
            checks[0] + checks_um[0] == 0, "usage has missing licence_id, quantity or reserved"
        )
        _require(checks[1] + checks_um[1] == 0, "usage has a negative quantity")
        if checks[2]:
            example = self.one("SELECT min(work_id) FROM e_u WHERE unknown_work")[0]
            raise AllocationError(f"usage names work {example}, which is not in works")
        _require(checks_um[2] == 0, "usage has an unmatched row (work_id <NA>) without a ref")
        _require(checks[3] + checks_um[3] == 0, "usage names a licence_id that is not in licences")

        # A licence uses its own rows when declared with some weight (a pool of its own, id
        # = licence id). Otherwise, with the proxy fallback, all such licences of one product
        # share ONE pool (id `proxy_base + pidx`, their pools summed) over the summed rows of
        # the product's direct licences: its scaled split is exactly the sum of theirs, up to
        # truncation. With the suspense fallback they get no rows (step 7: `no_usage`).
        base = self.proxy_base
        matched = "e_u"
        if self.fast is not None:  # the matched weight per licence, summed in numpy
            matched = "e_uw_in"
            self.con.register(
                matched,
                pd.DataFrame({"licence_id": self.fast["ids"], "wt": self.fast["lic_wt"]}),
            )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_lw AS
            WITH w AS (SELECT licence_id, sum(wt) AS wt FROM (
                SELECT licence_id, wt FROM {matched} UNION ALL SELECT licence_id, wt FROM e_um)
              GROUP BY licence_id)
            SELECT l.licence_id, l.product, l.pidx, l.pbp, l.pool_minor, l.donor,
                   l.declared AND coalesce(w.wt, 0) > 0 AS direct,
                   CASE WHEN l.declared AND coalesce(w.wt, 0) > 0 THEN l.licence_id
                        ELSE {base} + l.pidx END AS pool_id
            FROM e_lic l LEFT JOIN w ON w.licence_id = l.licence_id"""  # nosec B608
        )
        if self.fast is not None:
            self.con.unregister(matched)
        lender = self.one("SELECT min(licence_id) FROM e_lw WHERE donor AND NOT direct")[0]
        if lender is not None:
            raise AllocationError(
                f"donor licence {lender} has no usage of its own to lend to a proxy pool"
            )
        proxy = p.fallback == PROXY
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_pool AS
            SELECT pool_id, product, pidx, CAST(pool_minor AS HUGEINT) AS pool_minor,
                   1 AS k, false AS proxy
            FROM e_lw WHERE direct AND NOT donor
            UNION ALL
            SELECT pool_id, product, pidx, sum(pool_minor), count(*), true
            FROM e_lw WHERE NOT direct AND {str(proxy).lower()}
            GROUP BY pool_id, product, pidx"""  # nosec B608
        )
        proxied = self.one("SELECT count(*) FROM e_pool WHERE proxy")[0]
        if self.fast is not None:
            self._pool_rows()
        if proxied:
            # Each proxied licence used to carry a copy of the donor rows: the pool's rows
            # keep counting the quantity once per licence (k) for the statement lines.
            if self.fast is None:
                self.sql(
                    """INSERT INTO e_u
                    WITH donor AS (
                      SELECT l.product, u.work_id, u.route, sum(u.q) AS q, sum(u.wt) AS wt,
                             any_value(u.bp) AS bp, any_value(u.h1) AS h1
                      FROM e_u u JOIN e_lw l ON l.licence_id = u.licence_id
                      WHERE l.direct AND u.wt > 0 AND l.product IN (
                        SELECT product FROM e_pool WHERE proxy)
                      GROUP BY l.product, u.work_id, u.route)
                    SELECT p.pool_id, d.work_id, CAST(d.q * p.k AS BIGINT), CAST(d.wt AS BIGINT),
                           d.bp, d.route, true, false, false, false, d.h1
                    FROM e_pool p JOIN donor d ON d.product = p.product WHERE p.proxy"""
                )
            self.sql(
                """INSERT INTO e_um
                WITH donor AS (
                  SELECT l.product, u.ref, u.reserved, sum(u.q) AS q, sum(u.wt) AS wt,
                         any_value(u.bp) AS bp
                  FROM e_um u JOIN e_lw l ON l.licence_id = u.licence_id
                  WHERE l.direct AND u.wt > 0 AND l.product IN (
                    SELECT product FROM e_pool WHERE proxy)
                  GROUP BY l.product, u.ref, u.reserved)
                SELECT p.pool_id, d.ref, CAST(d.q * p.k AS BIGINT), CAST(d.wt AS BIGINT), d.bp,
                       d.reserved, true, false, false
                FROM e_pool p JOIN donor d ON d.product = p.product WHERE p.proxy"""
            )

    def _matched_sql(self) -> None:
        """Step 2 for the matched rows in SQL (`e_u`): any input, checked after."""
        self._works_sql()
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_u AS
            SELECT CAST(u.licence_id AS BIGINT) AS licence_id, CAST(u.work_id AS BIGINT) AS work_id,
              CAST(u.quantity AS BIGINT) AS q,
              CAST(u.quantity AS BIGINT) * w.wbp AS wt,
              coalesce(w.mbp, l.pbp) AS bp,
              CAST(CASE WHEN u.reserved THEN 2 WHEN w.disputed THEN 3
                   WHEN NOT w.has_shares THEN 4 ELSE 0 END AS TINYINT)
                AS route,
              false AS proxy,
              w.work_id IS NULL AS unknown_work, l.licence_id IS NULL AS unknown_licence,
              u.reserved IS NULL AS no_reserved, w.h1
            FROM e_usage_in u LEFT JOIN e_wrk w ON w.work_id = u.work_id
              LEFT JOIN e_lic l ON l.licence_id = u.licence_id
            WHERE u.work_id IS NOT NULL"""
        )

    def _matched_rows(self) -> dict[str, Any] | None:
        """Step 2 for the matched rows in numpy, in the common case; None (nothing done)
        when it does not apply, and `_matched_sql` does the same in SQL.

        The common case: 64-bit amounts; plain int64 licence ids and quantities, bool
        reserved; work ids dense enough for arrays indexed by work id; every matched row
        naming a known work and licence with a quantity >= 0 (anything else goes to the SQL
        path, which raises the right error); every weight and sum of weights below 2⁶³, the
        total quantity below 2⁶³ even times the number of licences plus one (a proxy pool
        counts its donors' quantity k times, so numpy's int64 sums cannot wrap); and the
        whole cycle's weight below 2⁵³ (so every pool's is: `_price_rows` applies). Per
        row: weight q × wbp, fee rate (media, else product), route; the same values `e_u`
        would hold. Returns the rows, the work and licence lookup arrays, and each licence's
        summed matched weight."""
        usage = self.inputs.usage
        if self.AMT != "BIGINT" or not len(usage):
            return None
        if (
            usage["licence_id"].dtype != np.int64
            or usage["quantity"].dtype != np.int64
            or usage["reserved"].dtype != np.bool_
            or str(usage["work_id"].dtype) not in {"Int64", "int64"}
        ):
            return None
        lic = self.con.execute("SELECT licence_id, pidx, pbp FROM e_lic ORDER BY licence_id")
        lic = {k: np.asarray(v, dtype="int64") for k, v in lic.fetchnumpy().items()}
        works = self.works_np
        if works is None:
            self._works_sql()
            works = _columns(
                self.con,
                """SELECT work_id, wbp, coalesce(mbp, -1) AS mbp,
                 CAST(CASE WHEN disputed THEN 3 WHEN NOT has_shares THEN 4 ELSE 0 END
                   AS TINYINT) AS route,
                 coalesce(h1, 0) AS h1, h1 IS NOT NULL AS has_h1
               FROM e_wrk""",
            )
        ids = lic["licence_id"]
        if not len(ids) or not len(works["work_id"]):
            return None
        n_pidx = int(lic["pidx"].max()) + 1
        work_ids = np.asarray(works["work_id"], dtype="int64")
        least, top = int(work_ids.min()), int(work_ids.max())
        n = len(usage)
        if least < 0 or (top + 1) * n_pidx > _DENSE_SLOTS_PER_ROW * n + _DENSE_SLOTS_ANYWAY:
            return None
        # Views with numpy's own dtypes: an unpickled frame's dtype is an equal copy, which
        # sends `np.add.at` down its slow generic path.
        quantity = usage["quantity"].to_numpy().view(np.int64)
        wbp = np.asarray(works["wbp"], dtype="int64")
        unmatched_wt = self.policy.unmatched_weight_bp // self.w_unit
        w_max = max(int(wbp.max()), unmatched_wt, 1)
        q_max = int(quantity.max())
        if int(quantity.min()) < 0 or q_max * w_max * n >= 2**63:
            return None
        if int(quantity.sum()) * (len(ids) + 1) >= 2**63:  # the sum is exact: q_max × n < 2⁶³
            return None
        unmatched = usage["work_id"].isna().to_numpy()
        n_unmatched = int(unmatched.sum())
        work_all = _int64_values(usage["work_id"])  # any value where missing: never read
        if not n_unmatched or unmatched[n - n_unmatched :].all():
            # No unmatched row, or all of them last (the usual order): views, not copies.
            matched: slice | np.ndarray = slice(0, n - n_unmatched)
        else:
            matched = np.flatnonzero(~unmatched)
        work = work_all[matched]
        q = quantity[matched]
        lid = usage["licence_id"].to_numpy().view(np.int64)[matched]
        reserved = usage["reserved"].to_numpy().view(np.bool_)[matched]
        del work_all, unmatched
        if len(work) and (int(work.min()) < 0 or int(work.max()) > top):
            return None
        # The weight of each work (-1: not in works), then of each row (q × weight), the
        # route and the licence index of each row, a slice at a time into arrays made once
        # (fresh temporaries of every row cost more than the arithmetic on this hardware).
        wbp_w = np.full(top + 1, -1, dtype="int64")
        wbp_w[work_ids] = wbp
        route_w = np.zeros(top + 1, dtype="int8")
        route_w[work_ids] = np.asarray(works["route"], dtype="int8")
        rows = len(work)
        wt = np.empty(rows, dtype="int64")
        route = np.empty(rows, dtype="int8")
        li = np.empty(rows, dtype="int64")
        lic_wt = np.zeros(len(ids), dtype="int64")

        rows_of = {"wt": wt, "work": work, "q": q, "lid": lid, "route": route, "li": li}
        rows_of["reserved"] = reserved
        try:  # each slice written by one `_weigh` (in a thread), summed by one add, in order
            _pipelined(
                _slices(rows),
                functools.partial(_weigh, rows=rows_of, wbp_w=wbp_w, route_w=route_w, ids=ids),
                lambda at: _add_runs(lic_wt, li[at], wt[at]),
            )
        except _NotFast:
            return None
        del reserved, lid, rows_of
        wbp_w[wbp_w < 0] = 0
        unmatched_q = int(quantity.sum()) - int(q.sum())  # exact: q_max × n < 2⁶³
        total = int(wt.sum()) + unmatched_q * unmatched_wt
        if total >= _EXACT_W:
            return None

        def by_work(column: str, dtype: str, fill: Any) -> np.ndarray:
            out = np.full(top + 1, fill, dtype=dtype)
            out[work_ids] = np.asarray(works[column], dtype=dtype)
            return out

        # `pbp` by product (the rate of every licence of it).
        pbp = np.zeros(n_pidx, dtype="int64")
        pbp[lic["pidx"]] = lic["pbp"]
        return {
            "li": li,
            "work": work,
            "q": q,
            "wt": wt,
            "route": route,
            "ids": ids,
            "pidx": lic["pidx"],
            "n_pidx": n_pidx,
            "pbp": pbp,
            "top": top,
            "route_w": route_w,
            "wbp_w": wbp_w,
            "mbp_w": by_work("mbp", "int64", -1),
            "h1_w": by_work("h1", "int64", 0),
            "has_h1_w": by_work("has_h1", "bool", False),
            "lic_wt": lic_wt,
        }

    def _pool_rows(self) -> None:
        """The priced matched rows of `_matched_rows`, as `e_u` would give them to steps 3-4:
        each direct pool's own rows of weight > 0 and, for each product's proxy pool, the
        rows of the product's direct licences of weight > 0 summed per (work, route), the
        quantity times the pool's licence count k (exact int64 sums, bounded by the checks
        of `_matched_rows`). Rows carry a pool key: the licence's index for its own pool,
        `len(ids) + pidx` for a proxy pool. Frees the per-row arrays it no longer needs."""
        fast = self.fast
        if fast is None:  # pragma: no cover - only called on the fast path
            raise AllocationError("no matched rows to pool")
        ids, top = fast["ids"], fast["top"]
        lw = self.con.execute(
            "SELECT licence_id, direct, donor FROM e_lw ORDER BY licence_id"
        ).fetchnumpy()
        direct = np.asarray(lw["direct"], dtype=bool)
        own_pool = direct & ~np.asarray(lw["donor"], dtype=bool)
        proxies = self.con.execute(
            "SELECT pidx, k FROM e_pool WHERE proxy ORDER BY pidx"
        ).fetchall()
        li, wt = fast.pop("li"), fast.pop("wt")
        work, q, route = fast.pop("work"), fast.pop("q"), fast.pop("route")
        segments = []
        if proxies:
            # Donor rows: direct licences of a product with a proxy pool, weight > 0, summed
            # per (product slot, work, reserved) (reserved or not decides the route). The
            # weight is q × wbp of the work, so a group's is its summed q × wbp, and the
            # group exists (has a row of weight > 0) exactly when both are > 0: only q is
            # summed, over every row of a lending licence.
            slot_of = np.full(fast["n_pidx"], -1, dtype="int64")
            slot_of[[int(x) for x, _ in proxies]] = np.arange(len(proxies))
            slot_lic = slot_of[fast["pidx"]]
            lends = direct & (slot_lic >= 0)
            base_l = np.where(lends, slot_lic * (top + 1) * 2, -1)  # per licence
            size = len(proxies) * (top + 1) * 2
            acc_q = np.zeros(size, dtype="int64")

            rows_of = {"li": li, "work": work, "route": route, "q": q}
            _pipelined(
                _slices(len(li)),
                functools.partial(_lent, rows=rows_of, base=base_l),
                lambda ready: np.add.at(acc_q, *ready),
            )
            del base_l, rows_of
            used = np.flatnonzero(acc_q)
            p_work = (used // 2) % (top + 1)
            p_wbp = fast["wbp_w"][p_work]
            used, p_work, p_wbp = used[p_wbp > 0], p_work[p_wbp > 0], p_wbp[p_wbp > 0]
            reserved = (used % 2).astype(bool)
            p_slot = used // (2 * (top + 1))
            p_route = np.where(reserved, np.int8(2), fast["route_w"][p_work]).astype("int8")
            k = np.asarray([int(x) for _, x in proxies], dtype="int64")
            pidx = np.asarray([int(x) for x, _ in proxies], dtype="int64")
            p_q = acc_q[used]
            segments.append(
                {
                    "pk": len(ids) + pidx[p_slot],
                    "work": p_work,
                    "q": p_q * k[p_slot],
                    "wt": p_q * p_wbp,
                    "route": p_route,
                }
            )
            del acc_q, used, reserved, p_work, p_slot, p_route, p_q, p_wbp
        own = np.empty(len(li), dtype=bool)
        for at in _slices(len(li)):
            np.logical_and(wt[at] > 0, own_pool[li[at]], out=own[at])
        if own.all():
            segments.insert(0, {"pk": li, "work": work, "q": q, "wt": wt, "route": route})
        else:
            segments.insert(
                0,
                {
                    "pk": li[own],
                    "work": work[own],
                    "q": q[own],
                    "wt": wt[own],
                    "route": route[own],
                },
            )
        del li, wt, work, q, route, own
        fast["segments"] = segments
        # Each pool's matched weight (its rows' weights are all > 0).
        pool_wt = np.zeros(len(ids) + fast["n_pidx"], dtype="int64")
        for segment in segments:
            _add_runs(pool_wt, segment["pk"], segment["wt"])
        fast["pool_ids"] = np.concatenate(
            [ids, self.proxy_base + np.arange(fast["n_pidx"], dtype="int64")]
        )
        fast["pool_wt"] = pool_wt

    # --------------------------------------------------------------------------------- split
    def split(self) -> None:
        """Steps 3-5: pools over rows, fee per row, net to holders or suspense.

        Rows whose `licence_id` is not a pool id (the own rows of a proxied or fallen-back
        licence) are not priced. The split to holders is summed per (holder, work, product)
        (`e_c`): a work's one whole share takes each row's net as it is, so its rows are
        summed before the holder is attached; the other works' rows are split row by row
        (each share's floor is per row) and summed after (in numpy on the fast path of
        `_matched_rows`, in SQL otherwise: the same integers either way).
        """
        S, AMT, fast = self.S, self.AMT, self.fast
        # Weight per pool (the matched rows' summed by `_pool_rows` on the fast path).
        matched = "SELECT licence_id, wt FROM e_u WHERE wt > 0"
        if fast is not None:
            matched = "SELECT licence_id, wt FROM e_uw_in"
            self.con.register(
                "e_uw_in",
                pd.DataFrame({"licence_id": fast["pool_ids"], "wt": fast["pool_wt"]})[
                    fast["pool_wt"] > 0
                ],
            )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_lt AS
            SELECT x.licence_id AS pool_id, sum(x.wt) AS W FROM (
                {matched}
                UNION ALL SELECT licence_id, wt FROM e_um WHERE wt > 0) x
              SEMI JOIN e_pool p ON p.pool_id = x.licence_id
            GROUP BY x.licence_id"""  # nosec B608
        )
        if fast is not None:
            self.con.unregister("e_uw_in")
        pools = self.con.execute(
            f"""SELECT p.pool_id, p.pidx, p.pool_minor * CAST({S} AS HUGEINT), t.W
            FROM e_pool p JOIN e_lt t ON t.pool_id = p.pool_id ORDER BY p.pool_id"""  # nosec B608
        ).fetchall()
        # Per-licence sums of rows summed before `e_r` (`_price_rows`), for the fees and the
        # licence breakdown: fee, net, rows and net routed to holders.
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_lsum (licence_id BIGINT, fee {AMT}, net {AMT},
                 k BIGINT, routed {AMT})"""
        )
        # Step 3-4 per row: a = floor(pool × S × wt / W), fee = floor(a × bp / 10000) and
        # net = a − fee (the product a × bp split as (a div 10⁴) × bp + (a mod 10⁴) × bp div
        # 10⁴ so it never widens). In 64-bit numpy when every amount fits (`_price_rows`),
        # otherwise in 128-bit SQL per distinct (pool, weight, fee rate).
        if pools and AMT == "BIGINT" and all(int(w) < _EXACT_W for *_, w in pools):
            summed = self._price_rows(pools)
        else:
            if fast is not None:  # no pool has weight: no matched row is priced
                _require(not pools, "arithmetic out of range: a pool's weight")
                self.sql(
                    """CREATE OR REPLACE TEMP TABLE e_u (licence_id BIGINT, work_id BIGINT,
                         q BIGINT, wt BIGINT, bp BIGINT, route TINYINT, h1 BIGINT)"""
                )
            self._price_sql()
            summed = False
        # The weighted usage is priced: free its memory before the holder split.
        self.fast = None
        self.sql("DROP TABLE IF EXISTS e_u; DROP TABLE e_um")
        # Step 5, a work's one whole share: the holder takes each row's net (and fee),
        # summed per (work, product) (done by `_price_rows` already, when it could).
        if not summed:
            self._whole_sql()
        if fast is None or not summed:  # else done by `_price_matched`
            self._split_shares()

    def _whole_sql(self) -> None:
        AMT = self.AMT
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_c AS
            SELECT h1 AS holder_id, work_id, pidx, CAST(sum(q) AS BIGINT) AS q,
                   CAST(sum(net) AS {AMT}) AS amt, CAST(sum(fee) AS {AMT}) AS fee
            FROM e_r WHERE route = 0 AND h1 IS NOT NULL
            GROUP BY h1, work_id, pidx"""  # nosec B608
        )

    def _split_shares(self) -> None:
        AMT = self.AMT
        self._shares_sql()
        # Any other work: each share of a row gets floor(net × ppm / 10⁶) (split the same way
        # as the fee), and `net_once` carries the row's net once, on its first holder.
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_m AS
            SELECT r.licence_id, r.work_id, r.pidx, s.holder_id, r.q, s.whole,
              (r.net // {PPM}) * s.share_ppm + ((r.net % {PPM}) * s.share_ppm) // {PPM} AS amt,
              (r.fee // {PPM}) * s.share_ppm + ((r.fee % {PPM}) * s.share_ppm) // {PPM} AS fee,
              CASE WHEN s.first THEN r.net ELSE 0 END AS net_once
            FROM e_r r JOIN e_shx s ON s.work_id = r.work_id
            WHERE r.route = 0 AND r.h1 IS NULL"""  # nosec B608
        )
        self.sql(
            f"""INSERT INTO e_c
            SELECT holder_id, work_id, pidx, CAST(sum(q) AS BIGINT), CAST(sum(amt) AS {AMT}),
                   CAST(sum(fee) AS {AMT})
            FROM e_m GROUP BY holder_id, work_id, pidx"""  # nosec B608
        )
        # What the floors leave, summed per (work, product): the dust of a whole work (to its
        # top holder, as a line of its own) or the unassigned rest of a partial work; and the
        # unassigned rest per licence (its breakdown).
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_rest AS
            SELECT m.work_id, m.pidx, sum(m.net_once) - sum(m.amt) AS rest,
                   any_value(t.top) AS top
            FROM e_m m LEFT JOIN e_top t ON t.work_id = m.work_id
            GROUP BY m.work_id, m.pidx"""
        )
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_un AS
            SELECT licence_id, sum(net_once) - sum(amt) AS un FROM e_m WHERE NOT whole
            GROUP BY licence_id"""
        )
        self.sql("DROP TABLE e_m")
        self.sql(
            f"""INSERT INTO e_c
            SELECT top, work_id, pidx, 0, CAST(rest AS {AMT}), 0 FROM e_rest
            WHERE top IS NOT NULL AND rest > 0"""  # nosec B608
        )
        self.sql("DELETE FROM e_rest WHERE top IS NOT NULL")  # only unassigned rests remain

    def _price_sql(self) -> None:
        """Steps 3-4 in 128-bit SQL, once per distinct (pool, weight, fee rate)."""
        S, AMT = self.S, self.AMT
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_price AS
            WITH k AS (
              SELECT DISTINCT licence_id, wt, bp FROM (
                SELECT licence_id, wt, bp FROM e_u WHERE wt > 0
                UNION ALL SELECT licence_id, wt, bp FROM e_um WHERE wt > 0) x
              SEMI JOIN e_lt t ON t.pool_id = x.licence_id),
            a AS (
              SELECT k.licence_id, k.wt, k.bp, CAST(
                  (p.pool_minor * CAST({S} AS HUGEINT) * k.wt) // t.W
                AS {AMT}) AS a
              FROM k JOIN e_pool p ON p.pool_id = k.licence_id
                JOIN e_lt t ON t.pool_id = k.licence_id),
            f AS (SELECT *, (a // {BP}) * bp + ((a % {BP}) * bp) // {BP} AS fee FROM a)
            SELECT licence_id, wt, bp, fee, a - fee AS net FROM f"""  # nosec B608
        )
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_r AS
            SELECT u.licence_id, u.work_id, u.q, u.route, u.h1, o.pidx, p.fee, p.net
            FROM e_u u
              JOIN e_price p ON p.licence_id = u.licence_id AND p.wt = u.wt AND p.bp = u.bp
              JOIN e_pool o ON o.pool_id = u.licence_id
            WHERE u.wt > 0"""
        )
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_rum AS
            SELECT u.licence_id, u.ref, u.reserved, p.fee, p.net
            FROM e_um u
              JOIN e_price p ON p.licence_id = u.licence_id AND p.wt = u.wt AND p.bp = u.bp
            WHERE u.wt > 0"""
        )
        self.sql("DROP TABLE e_price")

    def _price_rows(self, pools: list[tuple]) -> bool:
        """Steps 3-4 row by row in 64-bit numpy, exactly, when every amount fits.

        With P = pool × S = Q × W + R (Q, R per pool, in Python ints), floor(P × wt / W) =
        Q × wt + floor(R × wt / W); Q × wt <= P × wt / W <= P < 2⁶³. The last floor is
        estimated in double precision (R, wt < W < 2⁵³ are exact doubles; the estimate e is
        off by at most 2) and corrected exactly: d = R × wt − e × W lies in (−3W, 3W), so
        its int64 value (numpy wraps the products modulo 2⁶⁴) is the true one, and
        floor(R × wt / W) = e + d div W. Rows are priced a few pools at a time.

        The rows of works with one whole share (route 0, `h1`), most of them, never reach
        `e_r` when work ids are dense enough: they are summed here per (work, product) into
        `e_c` and per licence into `e_lsum` (numpy integer sums: every sum is at most the
        cycle's scaled total or its total quantity, both checked below 2⁶³). Returns whether
        it did so.

        On the fast path (`_matched_rows`) the matched rows come straight from numpy arrays
        (`_price_matched`; no `e_u` and no re-reads), where the rows of works with several
        shares (or a partial one) are split too (`_Shares`, as `_split_shares` would), so
        `e_r` keeps only the rows routed to suspense."""
        ids = np.asarray([int(p[0]) for p in pools], dtype="int64")
        pidx = np.asarray([int(p[1]) for p in pools], dtype="int64")
        big_w = np.asarray([int(p[3]) for p in pools], dtype="int64")
        q_all = np.asarray([int(p[2]) // int(p[3]) for p in pools], dtype="int64")
        r_all = np.asarray([int(p[2]) % int(p[3]) for p in pools], dtype="int64")

        def priced(at: np.ndarray, wt: np.ndarray, bp: np.ndarray) -> dict[str, Any]:
            w, r = big_w[at], r_all[at]
            e = np.floor(r.astype("float64") * wt.astype("float64") / w.astype("float64"))
            e = e.astype("int64")
            with np.errstate(over="ignore"):
                d = r * wt - e * w  # wraps modulo 2⁶⁴; the true value is small
            low = e + d // w
            if len(low) and ((low < 0) | (low > wt)).any():  # never: the proof above
                raise AllocationError("arithmetic out of range: a row's share of its pool")
            a = q_all[at] * wt + low
            fee = _part(a, bp, BP)
            return {"pidx": pidx[at], "fee": fee, "net": a - fee}

        fast = self.fast
        if fast is not None:  # dense by `_matched_rows`
            n_pidx, top, dense = fast["n_pidx"], fast["top"], True
        else:
            n_pidx = int(pidx.max()) + 1
            least, top, rows, q_max = self.one(
                """SELECT coalesce(min(work_id), 0), coalesce(max(work_id), 0), count(*),
                          coalesce(max(q), 0) FROM e_u WHERE wt > 0"""
            )
            dense = (
                int(least) >= 0
                and (int(top) + 1) * n_pidx
                <= _DENSE_SLOTS_PER_ROW * int(rows) + _DENSE_SLOTS_ANYWAY
                and int(q_max) * max(int(rows), 1) < 2**63
            )
        if dense:
            size = (int(top) + 1) * n_pidx
            # One spare slot past the (work, product) slots: `routed_sums` sends the rows it
            # does not sum there (never read), so that no row has to be copied out.
            acc_q = np.zeros(size + 1, dtype="int64")
            acc_net = np.zeros(size + 1, dtype="int64")
            acc_fee = np.zeros(size + 1, dtype="int64")
            lic_fee = np.zeros(len(ids), dtype="int64")
            lic_net = np.zeros(len(ids), dtype="int64")
            lic_k = np.zeros(len(ids), dtype="int64")

        def whole_sums(
            whole: np.ndarray,
            at,
            work,
            q,
            out: dict[str, Any],
            *,
            by_work: bool = True,
            by_licence: bool = True,
        ) -> None:
            fee, net = out["fee"][whole], out["net"][whole]
            if by_work:
                key = work[whole] * n_pidx + out["pidx"][whole]
                np.add.at(acc_q, key, q[whole])
                np.add.at(acc_net, key, net)
                np.add.at(acc_fee, key, fee)
            if not by_licence:
                return
            at = at[whole]
            _add_runs(lic_fee, at, fee)
            _add_runs(lic_net, at, net)
            lic_k[:] += np.bincount(at, minlength=len(ids))

        def routed_sums(key: np.ndarray, q: np.ndarray, out: dict[str, Any], runs) -> None:
            """`whole_sums` of rows keyed by (work, product) (the rows not to be summed keyed
            to the spare slot), and per licence the sums `_runs` made of the routed rows."""
            np.add.at(acc_q, key, q)
            np.add.at(acc_net, key, out["net"])
            np.add.at(acc_fee, key, out["fee"])
            at, fee, net, k = runs
            np.add.at(lic_fee, at, fee)
            np.add.at(lic_net, at, net)
            np.add.at(lic_k, at, k)

        def store(name: str, frame: pa.Table, first: bool) -> None:
            self.con.register("e_priced_in", frame)
            if first:
                self.sql(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM e_priced_in")  # nosec B608
            else:
                self.sql(f"INSERT INTO {name} SELECT * FROM e_priced_in")  # nosec B608
            self.con.unregister("e_priced_in")

        shared: _Shares | None = None
        if fast is not None:
            shared = self._price_matched(ids, pidx, priced, routed_sums, store)
            chunks: list[list[int]] = []
        else:
            # Chunks of pools of about a million rows each keep the numpy temporaries small.
            counts = dict(
                self.con.execute(
                    """SELECT licence_id, count(*) FROM (
                      SELECT licence_id FROM e_u WHERE wt > 0
                      UNION ALL SELECT licence_id FROM e_um WHERE wt > 0)
                    GROUP BY licence_id"""
                ).fetchall()
            )
            chunks = [[]]
            filled = 0  # rows in the last chunk (`size` is the accumulators' slots)
            for pool_id in ids.tolist():
                if filled >= 1_000_000:
                    chunks.append([])
                    filled = 0
                chunks[-1].append(pool_id)
                filled += int(counts.get(pool_id, 0))
        for name, source, columns, parts in (
            ("e_r", "e_u", ["licence_id", "work_id", "q", "route", "h1"], chunks),
            ("e_rum", "e_um", ["licence_id", "ref", "reserved"], [ids.tolist()]),
        ):
            for index, chunk in enumerate(parts):
                table = self.con.sql(
                    f"""SELECT {", ".join(columns)}, wt, bp FROM {source}
                    WHERE wt > 0 AND licence_id BETWEEN {chunk[0]} AND {chunk[-1]}
                      AND licence_id IN (SELECT pool_id FROM e_lt)"""  # nosec B608
                ).to_arrow_table()
                at = np.searchsorted(ids, table.column("licence_id").to_numpy())
                out = priced(at, table.column("wt").to_numpy(), table.column("bp").to_numpy())
                if name == "e_r" and dense:
                    whole = (table.column("route").to_numpy() == 0) & table.column(
                        "h1"
                    ).is_valid().to_numpy(zero_copy_only=False)
                    work = table.column("work_id").to_numpy()
                    whole_sums(whole, at, work, table.column("q").to_numpy(), out)
                    table = table.filter(pa.array(~whole))
                    out = {k: v[~whole] for k, v in out.items()}
                    del whole, work
                frame = pa.table(
                    {
                        **{c: table.column(c) for c in columns},
                        **({"pidx": out["pidx"]} if name == "e_r" else {}),
                        "fee": out["fee"],
                        "net": out["net"],
                    }
                )
                del table, out, at
                store(name, frame, index == 0)
                del frame
        if not dense:
            return False
        acc_q, acc_net, acc_fee = acc_q[:size], acc_net[:size], acc_fee[:size]
        # The whole-share rows' sums: per (work, product) to the work's one holder, per licence.
        if fast is not None:
            # `e_c` is never made: its sums (`e_wl`, `e_hp`) straight from the accumulators.
            self.sums_np = _line_sums_fast(acc_q, acc_net, acc_fee, fast["h1_w"], n_pidx, shared)
            del acc_q, acc_net, acc_fee
        else:
            used = np.flatnonzero(acc_q)  # every priced row has wt > 0, so q > 0
            self._works_sql()
            holders = self.con.execute(
                "SELECT work_id, h1 FROM e_wrk WHERE h1 IS NOT NULL AND work_id BETWEEN 0 AND "  # nosec B608
                f"{int(top)}"
            ).fetchnumpy()
            h1 = np.zeros(int(top) + 1, dtype="int64")
            h1[np.asarray(holders["work_id"], dtype="int64")] = np.asarray(holders["h1"], "int64")
            work = used // n_pidx
            self.con.register(
                "e_priced_in",
                pd.DataFrame(
                    {
                        "holder_id": h1[work],
                        "work_id": work,
                        "pidx": used % n_pidx,
                        "q": acc_q[used],
                        "amt": acc_net[used],
                        "fee": acc_fee[used],
                    }
                ),
            )
            self.sql("CREATE OR REPLACE TEMP TABLE e_c AS SELECT * FROM e_priced_in")
            self.con.unregister("e_priced_in")
        self.con.register(
            "e_priced_in",
            pd.DataFrame(
                {"licence_id": ids, "fee": lic_fee, "net": lic_net, "k": lic_k, "routed": lic_net}
            ),
        )
        self.sql("INSERT INTO e_lsum SELECT * FROM e_priced_in WHERE k > 0")
        self.con.unregister("e_priced_in")
        return True

    def _price_matched(
        self,
        ids: np.ndarray,
        pidx: np.ndarray,
        priced: Callable[..., dict[str, Any]],
        routed_sums: Callable[..., None],
        store: Callable[[str, pa.Table, bool], None],
    ) -> _Shares:
        """`_price_rows` for the rows of `_pool_rows` (the fast path), a few million rows at
        a time: each row priced in its pool; the rows routed to a work's holders summed per
        licence by `routed_sums`, per (work, product) too for a work's one whole share, and
        split over the shares of any other work (`_Shares.prepare` and `add`, step 5 as
        `_split_shares` does it); the rest (suspense routes) stored as `e_r`, the columns
        and values the SQL path gives it. Returns the split shares (their sums, for `e_c`'s)."""
        fast = self.fast
        if fast is None:  # pragma: no cover - only called on the fast path
            raise AllocationError("no matched rows to price")
        # Pool key (licence index, or len(ids) + pidx for a proxy pool) -> index in `ids`.
        pool_ids = fast["pool_ids"]
        at_of = np.minimum(np.searchsorted(ids, pool_ids), len(ids) - 1)
        valid = ids[at_of] == pool_ids
        mbp_w, h1_w, has_h1_w = fast["mbp_w"], fast["h1_w"], fast["has_h1_w"]
        n_pidx = fast["n_pidx"]
        spare = (fast["top"] + 1) * n_pidx  # `routed_sums`' slot for the rows it does not sum
        pool_pbp = fast["pbp"][pidx]  # the fee rate of each pool's product
        shares = _Shares(self._split_rows(fast["top"]), fast["top"], n_pidx, len(ids))

        def prepare(part: dict[str, np.ndarray]) -> dict[str, Any]:
            """Everything of a slice of rows but the adds into shared sums: numpy releases
            the GIL for these, so `_pipelined` runs them beside the adds of the slice before."""
            pk, work, route, q = part["pk"], part["work"], part["route"], part["q"]
            if not valid[pk].all():  # never: every priced row's pool has weight
                raise AllocationError("a priced usage row has no pool")
            at = at_of[pk]
            bp = mbp_w[work]
            bp = np.where(bp >= 0, bp, pool_pbp[at])  # media beats product
            out = priced(at, part["wt"], bp)
            del bp
            routed = route == 0
            whole = routed & has_h1_w[work]
            key = work * n_pidx + out["pidx"]
            key[~whole] = spare
            runs = _runs(
                at,
                np.where(routed, out["fee"], 0),
                np.where(routed, out["net"], 0),
                routed.astype("int64"),
            )
            # Row indexes, not boolean masks: numpy gathers by index much faster.
            several = np.flatnonzero(routed & ~whole)
            split = shares.prepare(
                at[several],
                work[several],
                q[several],
                out["pidx"][several],
                out["net"][several],
                out["fee"][several],
            )
            del several, whole
            rest = np.flatnonzero(~routed)
            work_r = work[rest]
            frame = pa.table(
                {
                    "licence_id": ids[at[rest]],
                    "work_id": work_r,
                    "q": q[rest],
                    "route": route[rest],
                    "h1": pa.array(h1_w[work_r], mask=~has_h1_w[work_r]),
                    "pidx": out["pidx"][rest],
                    "fee": out["fee"][rest],
                    "net": out["net"][rest],
                }
            )
            return {"key": key, "q": q, "out": out, "runs": runs, "split": split, "frame": frame}

        first = True

        def add(ready: dict[str, Any]) -> None:
            nonlocal first
            routed_sums(ready["key"], ready["q"], ready["out"], ready["runs"])
            shares.add(ready["split"])
            store("e_r", ready["frame"], first)
            first = False

        slices = (
            {k: v[start : start + _PRICE_STEP] for k, v in segment.items()}
            for segment in fast.pop("segments")
            for start in range(0, max(len(segment["pk"]), 1), _PRICE_STEP)
        )
        _pipelined(slices, prepare, add)
        shares.finish(ids, store)
        return shares

    # ---------------------------------------------------------------------------------- sums
    def sums(self) -> None:
        """The map's answer, still exact: each bucket's and each statement line's scaled sum
        before releases and rounding, and each licence's pool rounded inside the pool.

        `e_fee` (product), `e_ch` (holder: earnings and attributable fee), `e_susp` (reason,
        ref), `e_wl` (holder, work: quantity too) and `e_sl` (holder, product). Every one is
        a sum of per-row amounts, so the sums of partitions add up to the sums of the whole.
        """
        S, AMT = self.S, self.AMT
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_fee AS
            WITH fl AS (SELECT licence_id, sum(fee) AS fee FROM (
                  SELECT licence_id, fee FROM e_r UNION ALL SELECT licence_id, fee FROM e_rum
                  UNION ALL SELECT licence_id, fee FROM e_lsum)
                GROUP BY licence_id)
            SELECT l.product, CAST(sum(fl.fee) AS {AMT}) AS n
            FROM fl JOIN e_pool l ON l.pool_id = fl.licence_id GROUP BY l.product"""  # nosec B608
        )
        # Per (holder, product) first (a product is one pidx): the holder sums and the
        # source lines are both sums of it (no sum is negative, so none of its parts
        # overflows where the whole does not).
        if self.sums_np is not None:  # summed in numpy already (64-bit amounts)
            self.con.register("e_priced_in", pd.DataFrame(self.sums_np.pop("ch")))
            self.sql("CREATE OR REPLACE TEMP TABLE e_ch AS SELECT * FROM e_priced_in")
            self.con.unregister("e_priced_in")
        else:
            self.sql(
                f"""CREATE OR REPLACE TEMP TABLE e_hp AS
                SELECT holder_id, pidx, CAST(sum(amt) AS {AMT}) AS amt,
                       CAST(sum(fee) AS {AMT}) AS fee
                FROM e_c GROUP BY holder_id, pidx"""  # nosec B608
            )
            self.sql(
                f"""CREATE OR REPLACE TEMP TABLE e_ch AS
                SELECT holder_id, CAST(sum(amt) AS {AMT}) AS amt,
                       CAST(sum(fee) AS {AMT}) AS fee
                FROM e_hp GROUP BY holder_id"""  # nosec B608
            )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_susp AS
            SELECT reason, ref, CAST(sum(n) AS {AMT}) AS n FROM (
                SELECT CASE route WHEN 2 THEN '{RESERVED}' WHEN 3 THEN '{DISPUTED}'
                                  ELSE '{UNASSIGNED_SHARE}' END AS reason,
                       CAST(work_id AS VARCHAR) AS ref, n
                FROM (SELECT route, work_id, sum(net) AS n FROM e_r WHERE route <> 0
                      GROUP BY route, work_id)
                UNION ALL
                SELECT '{UNASSIGNED_SHARE}', CAST(work_id AS VARCHAR), sum(rest) FROM e_rest
                GROUP BY work_id
                UNION ALL
                SELECT CASE WHEN reserved THEN '{RESERVED}' ELSE '{UNMATCHED}' END, ref,
                       sum(net)
                FROM e_rum GROUP BY reserved, ref
                UNION ALL
                SELECT '{NO_USAGE}', CAST(licence_id AS VARCHAR),
                       CAST(pool_minor AS HUGEINT) * CAST({S} AS HUGEINT)
                FROM e_lw WHERE NOT donor AND pool_id NOT IN (SELECT pool_id FROM e_lt))
            GROUP BY reason, ref"""  # nosec B608
        )
        self.licence_breakdown = self._licence_breakdown()
        self.sql(
            "DROP TABLE e_r; DROP TABLE e_rum; DROP TABLE e_rest; DROP TABLE e_un; "
            "DROP TABLE e_lsum"
        )
        # Shares and works are done with (releases read `e_shr` only).
        self.sql(
            "DROP TABLE IF EXISTS e_shx; DROP TABLE IF EXISTS e_top; DROP TABLE IF EXISTS e_ws;"
            " DROP TABLE IF EXISTS e_wrk"
        )
        if self.sums_np is not None:  # `e_wl` and `e_sl` when needed (`_line_tables`)
            return
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_wl AS
            SELECT holder_id, work_id, CAST(sum(q) AS BIGINT) AS q, CAST(sum(amt) AS {AMT}) AS n
            FROM e_c GROUP BY holder_id, work_id"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_sl AS
            SELECT c.holder_id, p.product, CAST(c.amt AS {AMT}) AS n
            FROM e_hp c JOIN (SELECT DISTINCT pidx, product FROM e_pool) p ON p.pidx = c.pidx"""  # nosec B608
        )
        self.sql("DROP TABLE e_c; DROP TABLE e_hp")  # every line is summed

    def _line_tables(self) -> None:
        """`e_wl` and `e_sl` from the fast path's numpy sums (as `sums` makes them from `e_c`
        otherwise); nothing to do when they are tables already."""
        if self.sums_np is None:
            return
        sums, self.sums_np = self.sums_np, None
        self.con.register("e_priced_in", pd.DataFrame(sums["wl"]))
        self.sql("CREATE OR REPLACE TEMP TABLE e_wl AS SELECT * FROM e_priced_in")
        self.con.unregister("e_priced_in")
        self.con.register("e_priced_in", pd.DataFrame(sums["hp"]))
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_sl AS
            SELECT c.holder_id, p.product, c.amt AS n
            FROM e_priced_in c JOIN (SELECT DISTINCT pidx, product FROM e_pool) p
              ON p.pidx = c.pidx"""
        )
        self.con.unregister("e_priced_in")

    def partial(self) -> Partial:
        """The sums as frames, each scaled amount split into (minor, sub) int64 columns."""
        S = self.S

        def split(column: str, name: str) -> str:
            return (
                f"CAST({column} // {S} AS BIGINT) AS {name}_minor, "
                f"CAST({column} % {S} AS BIGINT) AS {name}_sub"
            )

        def frame(name: str, query: str) -> pd.DataFrame:
            out = self.con.execute(query).df()
            return out.astype(PARTIAL_COLUMNS[name]) if len(out) else empty_partial_frame(name)

        self._line_tables()
        seen = self.con.execute(
            "SELECT licence_id, product, NOT donor AS priced, direct FROM e_lw ORDER BY licence_id"
        ).df()
        licences = seen.merge(self.licence_breakdown, on="licence_id", how="left")
        for column in ("pool_minor", "fee_minor", "holders_minor", "suspense_minor"):
            licences[column] = licences[column].fillna(0)
        return Partial(
            scale=S,
            fees=frame("fees", f"SELECT product, {split('n', 'amount')} FROM e_fee ORDER BY 1"),  # nosec B608
            holders=frame(
                "holders",
                f"SELECT holder_id, {split('amt', 'amount')}, {split('fee', 'fee')} FROM e_ch "  # nosec B608
                "ORDER BY 1",
            ),
            suspense=frame(
                "suspense",
                f"SELECT reason, ref, {split('n', 'amount')} FROM e_susp ORDER BY 1, 2",  # nosec B608
            ),
            lines_by_work=frame(
                "lines_by_work",
                f"SELECT holder_id, work_id, q AS quantity, {split('n', 'amount')} FROM e_wl",  # nosec B608
            ),
            lines_by_source=frame(
                "lines_by_source",
                f"SELECT holder_id, product, {split('n', 'amount')} FROM e_sl",  # nosec B608
            ),
            licences=licences.astype(PARTIAL_COLUMNS["licences"])
            if len(licences)
            else empty_partial_frame("licences"),
        )

    def load_partials(self, partials: Sequence[Partial]) -> None:
        """Sum the partials into the tables `map` makes (exact: integer addition), after
        checking that they price every licence once and keep each proxy pool whole."""
        S, AMT = self.S, self.AMT
        self.licence_breakdown = self._partial_licences(partials)

        def joined(name: str) -> pd.DataFrame:
            frames = [getattr(p, name) for p in partials if len(getattr(p, name))]
            if not frames:
                return empty_partial_frame(name)
            out = pd.concat(frames, ignore_index=True)
            for column in PARTIAL_COLUMNS[name]:
                if column.endswith("_sub") and ((out[column] < 0) | (out[column] >= S)).any():
                    raise AllocationError(f"partial {name}.{column} is outside [0, scale)")
                if column.endswith("_minor") and (out[column] < 0).any():
                    raise AllocationError(f"partial {name}.{column} is negative")
            return out

        def n(name: str) -> str:
            return f"CAST(sum(CAST({name}_minor AS HUGEINT) * {S} + {name}_sub) AS {AMT})"

        for name in PARTIAL_COLUMNS:
            if name != "licences":
                self.con.register(f"p_{name}_in", joined(name))
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_fee AS
            SELECT CAST(product AS VARCHAR) AS product, {n("amount")} AS n
            FROM p_fees_in GROUP BY 1"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_ch AS
            SELECT CAST(holder_id AS BIGINT) AS holder_id, {n("amount")} AS amt,
                   {n("fee")} AS fee
            FROM p_holders_in GROUP BY 1"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_susp AS
            SELECT CAST(reason AS VARCHAR) AS reason, CAST(ref AS VARCHAR) AS ref,
                   {n("amount")} AS n
            FROM p_suspense_in GROUP BY 1, 2"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_wl AS
            SELECT CAST(holder_id AS BIGINT) AS holder_id, CAST(work_id AS BIGINT) AS work_id,
                   CAST(sum(quantity) AS BIGINT) AS q, {n("amount")} AS n
            FROM p_lines_by_work_in GROUP BY 1, 2"""  # nosec B608
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_sl AS
            SELECT CAST(holder_id AS BIGINT) AS holder_id, CAST(product AS VARCHAR) AS product,
                   {n("amount")} AS n
            FROM p_lines_by_source_in GROUP BY 1, 2"""  # nosec B608
        )
        for name in PARTIAL_COLUMNS:
            if name != "licences":
                self.con.unregister(f"p_{name}_in")

    def _partial_licences(self, partials: Sequence[Partial]) -> pd.DataFrame:
        """The licence breakdown of the partials, checked against the cycle's licences: each
        priced exactly once, at its pool, and each product's proxy pool made in one partition
        that saw every licence of the product priced on its own usage."""
        frames = []
        for index, partial in enumerate(partials):
            frame = partial.licences[list(PARTIAL_COLUMNS["licences"])].copy()
            frame["part"] = index
            frames.append(frame)
        seen = (
            pd.concat(frames, ignore_index=True)
            if frames
            else empty_partial_frame("licences").assign(part=pd.Series([], dtype="int64"))
        )
        seen["licence_id"] = seen["licence_id"].astype("int64")
        seen["priced"] = seen["priced"].astype(bool)
        seen["direct"] = seen["direct"].astype(bool)
        priced = seen[seen["priced"]]
        twice = priced["licence_id"][priced["licence_id"].duplicated()]
        if len(twice):
            raise AllocationError(f"licence {int(twice.min())} is priced by two partials")
        pools = dict(self.con.execute("SELECT licence_id, pool_minor FROM e_lic").fetchall())
        got = dict(zip(priced["licence_id"].tolist(), priced["pool_minor"].tolist(), strict=True))
        missing = sorted(set(pools) - set(got))
        if missing:
            raise AllocationError(f"licence {missing[0]} is missing from the partials")
        unknown = sorted(set(got) - set(pools))
        if unknown:
            raise AllocationError(f"a partial prices licence {unknown[0]}, not in licences")
        wrong = sorted(k for k, v in got.items() if int(v) != int(pools[k]))
        if wrong:
            raise AllocationError(f"a partial priced licence {wrong[0]} at another pool")
        if self.policy.fallback == PROXY:
            for product, group in priced[~priced["direct"]].groupby("product", sort=True):
                parts = set(group["part"].tolist())
                if len(parts) > 1:
                    raise AllocationError(
                        f"the proxy pool of product {product} is split over partitions"
                    )
                there = set(seen.loc[seen["part"] == parts.pop(), "licence_id"].tolist())
                own = priced[(priced["product"] == product) & priced["direct"]]
                lacking = sorted(set(own["licence_id"].tolist()) - there)
                if lacking:
                    raise AllocationError(
                        f"the proxy pool of product {product} lacks the usage of licence "
                        f"{lacking[0]}"
                    )
        out = priced[["licence_id", "pool_minor", "fee_minor", "holders_minor", "suspense_minor"]]
        return out.sort_values("licence_id").reset_index(drop=True).astype("int64")

    # ------------------------------------------------------------------------------ releases
    def releases(self) -> None:
        """Step 6, in Python ints: releases are few, pro-rata ones touch every earner."""
        S = self.S
        rel = self.rel
        suspense: list[tuple[str, str, int]] = []
        by_work = sorted({r[2] for r in rel if r[2] is not None})
        shares: dict[int, list[tuple[int, int]]] = {w: [] for w in by_work}
        if by_work:
            self.con.register("e_relc_in", pd.DataFrame({"work_id": by_work}, dtype="int64"))
            for work_id, holder_id, ppm in self.con.execute(
                """SELECT s.work_id, s.holder_id, s.share_ppm FROM e_shr s
                   JOIN e_relc_in w ON w.work_id = s.work_id ORDER BY 1, 2"""
            ).fetchall():
                shares[work_id].append((holder_id, ppm))
            self.con.unregister("e_relc_in")
        # `e_ch`: each holder's scaled earnings and attributable fee (steps 3-5), summed once.
        earners: list[tuple[int, int]] = []
        earned_total = 0
        # With 64-bit amounts, pro-rata parts are computed in SQL (scaled × e < 2¹²⁶).
        in_sql = self.AMT == "BIGINT"
        if any(r[2] is None for r in rel):
            earned_total = int(self.one("SELECT coalesce(sum(amt), 0) FROM e_ch WHERE amt > 0")[0])
            if not in_sql:
                earners = self.con.execute(
                    "SELECT holder_id, amt FROM e_ch WHERE amt > 0 ORDER BY holder_id"
                ).fetchall()
        pro_rata: list[tuple[int, int]] = []
        c_holder: list[int] = []
        c_work: list[int | None] = []
        c_release: list[int] = []
        c_amount: list[int] = []
        for index, (release_id, amount, work_id) in enumerate(rel):
            scaled = amount * S
            if work_id is not None:
                parts, rest = split_by_shares(scaled, shares[work_id])
                for h, a in parts:
                    if a:
                        c_holder.append(h)
                        c_work.append(work_id)
                        c_release.append(index)
                        c_amount.append(a)
                if rest:
                    suspense.append((UNASSIGNED_SHARE, str(work_id), rest))
            elif earned_total == 0:
                suspense.append((UNDISTRIBUTABLE, release_id, scaled))
            elif in_sql:
                pro_rata.append((index, scaled))
            else:
                amounts = [scaled * e // earned_total for _, e in earners]
                c_holder.extend(h for (h, _), a in zip(earners, amounts, strict=True) if a)
                c_amount.extend(a for a in amounts if a)
                c_work.extend([None] * (len(c_amount) - len(c_work)))
                c_release.extend([index] * (len(c_amount) - len(c_release)))
        self.release_ids = [r[0] for r in rel]
        # Amounts travel as int64 when they fit (the usual case), as text otherwise.
        wide = self.AMT != "BIGINT"
        self.con.register(
            "e_relc_in",
            pd.DataFrame(
                {
                    "holder_id": np.asarray(c_holder, dtype="int64"),
                    "work_id": pd.array(c_work, dtype="Int64"),
                    "release_idx": np.asarray(c_release, dtype="int64"),
                    "amt": (
                        pd.Series([str(a) for a in c_amount], dtype="str")
                        if wide
                        else np.asarray(c_amount, dtype="int64")
                    ),
                }
            ),
        )
        self.con.register(
            "e_rels_in",
            pd.DataFrame(
                {
                    "reason": pd.Series([s[0] for s in suspense], dtype="str"),
                    "ref": pd.Series([s[1] for s in suspense], dtype="str"),
                    "n": pd.Series([str(s[2]) for s in suspense], dtype="str"),
                }
            ),
        )
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_relc AS
            SELECT CAST(holder_id AS BIGINT) AS holder_id, CAST(work_id AS BIGINT) AS work_id,
                   CAST(release_idx AS BIGINT) AS release_idx, CAST(amt AS {self.AMT}) AS amt
            FROM e_relc_in"""  # nosec B608
        )
        if pro_rata:
            self.con.register(
                "e_relp_in",
                pd.DataFrame(
                    {
                        "release_idx": np.asarray([p[0] for p in pro_rata], dtype="int64"),
                        "scaled": np.asarray([p[1] for p in pro_rata], dtype="int64"),
                    }
                ),
            )
            self.sql(
                f"""INSERT INTO e_relc
                SELECT holder_id, NULL, release_idx, amt FROM (
                  SELECT c.holder_id, r.release_idx, CAST(
                      (CAST(r.scaled AS HUGEINT) * c.amt) // CAST('{earned_total}' AS HUGEINT)
                    AS BIGINT) AS amt
                  FROM e_ch c CROSS JOIN e_relp_in r WHERE c.amt > 0)
                WHERE amt > 0"""  # nosec B608
            )
            self.con.unregister("e_relp_in")

    # --------------------------------------------------------------------------------- round
    def round(self) -> dict[str, int]:
        """Step 7: one largest-remainder rounding over every bucket of the cycle.

        Each bucket gets the floor of its scaled amount, or one unit more: the units still
        missing go to the largest remainders, where a holder's remainder counts together with
        the rounding residue it carries from earlier cycles (`res`, sub-units; 0 without one),
        ties to the smallest key. Without residues this is plain largest remainder.
        """
        S, AMT = self.S, self.AMT
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_b AS
            WITH b AS (
              SELECT 0 AS kind, product, NULL::BIGINT AS holder_id, NULL::VARCHAR AS reason,
                     NULL::VARCHAR AS ref, CAST(n AS {AMT}) AS n
              FROM e_fee
              UNION ALL
              SELECT 1, NULL, holder_id, NULL, NULL, CAST(sum(amt) AS {AMT}) FROM (
                SELECT holder_id, amt FROM e_ch UNION ALL SELECT holder_id, amt FROM e_relc)
              GROUP BY holder_id
              UNION ALL
              SELECT 2, NULL, NULL, reason, ref, CAST(sum(n) AS {AMT}) FROM (
                SELECT reason, ref, CAST(n AS HUGEINT) AS n FROM e_susp
                UNION ALL
                SELECT reason, ref, CAST(n AS HUGEINT) FROM e_rels_in)
              GROUP BY reason, ref)
            SELECT b.*, b.n // {S} AS fl, b.n % {S} AS rm, coalesce(h.res, 0) AS res
            FROM b LEFT JOIN e_hin h ON b.kind = 1 AND h.holder_id = b.holder_id
            WHERE b.n > 0"""  # nosec B608
        )
        in_minor = self.pool_minor + self.releases_minor
        floors, buckets = self.one("SELECT coalesce(sum(fl), 0), count(*) FROM e_b")
        missing = in_minor - int(floors)
        if missing < 0 or missing > buckets:
            raise AllocationError(
                f"cannot round: {missing} minor units missing over {buckets} buckets "
                f"(in {in_minor}, floors {floors})"
            )
        # The units go to the first `missing` buckets ordered by (rm + res descending, kind,
        # product, holder_id, reason, ref), keys unique per bucket: those above the value of
        # the `missing`-th (`cut`), and the first of those equal to it by key. Only the tied
        # ones are sorted by key (a window over every bucket sorts them all by their strings).
        up = "false"
        if missing:
            cut = int(
                self.one(
                    f"""SELECT CAST(rm AS HUGEINT) + res AS v FROM e_b
                    ORDER BY v DESC LIMIT 1 OFFSET {missing - 1}"""  # nosec B608
                )[0]
            )
            above = int(
                self.one(
                    f"""SELECT count(*) FROM e_b
                    WHERE CAST(rm AS HUGEINT) + res > CAST('{cut}' AS HUGEINT)"""  # nosec B608
                )[0]
            )
            up = f"""CAST(rm AS HUGEINT) + res > CAST('{cut}' AS HUGEINT) OR rowid IN (
                SELECT rowid FROM e_b WHERE CAST(rm AS HUGEINT) + res = CAST('{cut}' AS HUGEINT)
                ORDER BY kind, product, holder_id, reason, ref LIMIT {missing - above})"""  # nosec B608
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_br AS
            SELECT kind, product, holder_id, reason, ref, n, res,
              CAST(fl + CASE WHEN {up} THEN 1 ELSE 0 END AS BIGINT) AS minor
            FROM e_b"""  # nosec B608
        )
        # Each holder's earned total, and the fee attributable to its usage (the fee part of
        # each routed row split by the same share ppm, summed at scale, rounded down).
        self.sql(
            f"""CREATE OR REPLACE TEMP TABLE e_he AS
            WITH d AS (SELECT holder_id, CAST(fee // {S} AS BIGINT) AS ded FROM e_ch)
            SELECT b.holder_id, b.minor AS earned, coalesce(d.ded, 0) AS ded
            FROM e_br b LEFT JOIN d ON d.holder_id = b.holder_id WHERE b.kind = 1"""  # nosec B608
        )
        # What each holder carries to the next cycle: its residue plus this cycle's scaled
        # amount minus what it was rounded to (holders without a bucket keep theirs).
        self.residues = (
            self.con.execute(
                f"""SELECT holder_id, residue_sub FROM (
              SELECT holder_id,
                     CAST(CAST(n AS HUGEINT) + res - CAST(minor AS HUGEINT) * {S} AS BIGINT)
                       AS residue_sub
              FROM e_br WHERE kind = 1
              UNION ALL
              SELECT holder_id, res FROM e_hin WHERE res <> 0
                AND holder_id NOT IN (SELECT holder_id FROM e_br WHERE kind = 1))
            WHERE residue_sub <> 0 ORDER BY holder_id"""  # nosec B608
            )
            .df()
            .astype("int64")
        )
        fee, holders, suspense = (
            int(x)
            for x in self.one(
                """SELECT coalesce(sum(minor) FILTER (kind = 0), 0),
                          coalesce(sum(minor) FILTER (kind = 1), 0),
                          coalesce(sum(minor) FILTER (kind = 2), 0) FROM e_br"""
            )
        )
        if fee + holders + suspense != in_minor:
            raise AllocationError(
                f"totals identity broken: in {in_minor} != fees {fee} + holders {holders} "
                f"+ suspense {suspense}"
            )
        return {
            "pool_minor": self.pool_minor,
            "releases_minor": self.releases_minor,
            "in_minor": in_minor,
            "fee_minor": fee,
            "holders_minor": holders,
            "suspense_minor": suspense,
        }

    # --------------------------------------------------------------------------------- lines
    def lines(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Step 9: statement lines, rounded inside each holder's earned total.

        DuckDB sums the lines (with each holder's dense index `gid`) and sorts them by (gid,
        key); numpy ranks their remainders inside each holder (integer sorts beat a
        partitioned window over millions of lines).
        """
        self.sql(
            """CREATE OR REPLACE TEMP TABLE e_hix AS
            SELECT holder_id, row_number() OVER (ORDER BY holder_id) - 1 AS gid FROM e_he"""
        )
        he = self.con.execute("SELECT holder_id, earned FROM e_he ORDER BY holder_id").fetchnumpy()
        self.he_ids = np.asarray(he["holder_id"], dtype="int64")
        self.he_earned = np.asarray(he["earned"], dtype="int64")
        products = np.asarray(
            self.con.execute("SELECT DISTINCT pidx, product FROM e_lic ORDER BY pidx").fetchnumpy()[
                "product"
            ],
            dtype=object,
        )
        w, s = self._line_sums(len(products))

        o, amount = self._round_lines(w)
        knull = w["knull"][o]
        by_work = pd.DataFrame(
            {
                "holder_id": self.he_ids[w["gid"][o]],
                "work_id": pd.arrays.IntegerArray(w["kval"][o], knull),
                "quantity": w["quantity"][o],
                "amount_minor": amount,
            }
        )
        # Source lines: one per product (keys 0..P-1), then one per release (keys P..).
        o, amount = self._round_lines(s)
        key = s["key"][o]
        names = pa.array([*products, *self.release_ids, ""], pa.string())
        is_release = key >= len(products)
        blank = len(names) - 1

        def text(index: np.ndarray) -> pd.Series:  # names by index, decoded in Arrow
            decoded = pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), names)
            return pd.Series(decoded.cast(pa.string()).to_pandas(), dtype="str")

        by_source = pd.DataFrame(
            {
                "holder_id": self.he_ids[s["gid"][o]],
                "product": text(np.where(is_release, blank, key)),
                "release_id": text(np.where(is_release, key, blank)),
                "amount_minor": amount,
            }
        )
        return by_work, by_source

    def _line_sums(self, n_products: int) -> tuple[dict, dict]:
        S, AMT = self.S, self.AMT
        if self.sums_np is not None:
            if not self.one("SELECT count(*) FROM e_relc")[0]:
                return self._line_sums_np()
            self._line_tables()  # releases to works are summed into the lines in SQL
        # Lines come in any order (`_round_lines` sorts them by their unique (gid, key)).
        # `e_wl` has one row per (holder, work): releases to a work are summed into it.
        x = f"""SELECT holder_id, work_id, CAST(sum(q) AS BIGINT) AS quantity,
                     CAST(sum(amt) AS {AMT}) AS n
              FROM (SELECT holder_id, work_id, q, n AS amt FROM e_wl
                    UNION ALL SELECT holder_id, work_id, 0, amt FROM e_relc)
              GROUP BY holder_id, work_id"""  # nosec B608
        if not self.one("SELECT count(*) FROM e_relc")[0]:
            x = "SELECT holder_id, work_id, q AS quantity, n FROM e_wl"
        w = self.con.execute(
            f"""WITH x AS ({x})
            SELECT h.gid, x.work_id IS NULL AS knull, coalesce(x.work_id, 0) AS kval,
                   x.quantity, CAST(x.n // {S} AS BIGINT) AS fl, CAST(x.n % {S} AS BIGINT) AS rm
            FROM x JOIN e_hix h ON h.holder_id = x.holder_id WHERE x.n > 0"""  # nosec B608
        ).fetchnumpy()
        knull = np.asarray(w["knull"], dtype=bool)
        w = {k: np.asarray(v, dtype="int64") for k, v in w.items() if k != "knull"}
        w["knull"] = knull

        # The line key orders work ids ascending, the releases to all earners (no work) last.
        low = int(w["kval"].min()) if len(knull) else 0
        top = int(w["kval"].max()) - low + 1 if len(knull) else 0
        w["key"] = np.where(knull, top, w["kval"] - low)
        s = self.con.execute(
            f"""WITH x AS (
              SELECT c.holder_id, p.pidx AS key, CAST(sum(c.n) AS {AMT}) AS n
              FROM e_sl c JOIN (SELECT DISTINCT product, pidx FROM e_lic) p
                ON p.product = c.product
              GROUP BY c.holder_id, p.pidx
              UNION ALL
              SELECT holder_id, {n_products} + release_idx, CAST(sum(amt) AS {AMT})
              FROM e_relc GROUP BY holder_id, release_idx)
            SELECT h.gid, x.key,
                   CAST(x.n // {S} AS BIGINT) AS fl, CAST(x.n % {S} AS BIGINT) AS rm
            FROM x JOIN e_hix h ON h.holder_id = x.holder_id WHERE x.n > 0"""  # nosec B608
        ).fetchnumpy()
        s = {k: np.asarray(v, dtype="int64") for k, v in s.items()}

        self.sql("DROP TABLE e_wl; DROP TABLE e_sl")
        return w, s

    def _line_sums_np(self) -> tuple[dict, dict]:
        """`_line_sums` from the fast path's numpy sums, when there are no releases: the same
        lines (amount > 0, of a holder of `e_he`), each as floor and remainder."""
        sums, self.sums_np = self.sums_np, None
        if sums is None:  # pragma: no cover - only called with the sums
            raise AllocationError("no line sums")
        S = self.S

        def lines(frame: dict[str, np.ndarray], amount: str, key: str) -> dict[str, np.ndarray]:
            keep = np.flatnonzero(frame[amount] > 0)
            gid, found = _positions(self.he_ids, frame["holder_id"][keep])
            if not found.all():  # an inner join on the holders of `e_he`
                keep, gid = keep[found], gid[found]
            n = frame[amount][keep]
            return {"gid": gid, "k": frame[key][keep], "fl": n // S, "rm": n % S, "keep": keep}

        w = lines(sums["wl"], "n", "work_id")
        w["quantity"] = sums["wl"]["q"][w.pop("keep")]
        kval = w.pop("k")
        w["kval"] = kval
        w["knull"] = np.zeros(len(kval), dtype=bool)
        low = int(kval.min()) if len(kval) else 0
        w["key"] = kval - low
        s = lines(sums["hp"], "amt", "pidx")
        s["key"] = s.pop("k")
        del s["keep"]
        return w, s

    def _round_lines(self, lines: dict) -> tuple[np.ndarray, np.ndarray]:
        """Largest remainder inside each holder's earned total.

        `lines` holds gid (the holder's index in `he_ids`), key (a dense line key: the
        tie-break, smallest first), fl (floor of the scaled amount) and rm (its remainder) per
        line. Returns the order that sorts lines by (holder, key), with zero lines dropped,
        and the rounded amounts.
        """
        S = self.S
        gid, key = lines["gid"], lines["key"]
        fl, rm = lines["fl"], lines["rm"]
        n = len(gid)
        if n == 0:
            return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
        width = int(key.max()) + 1
        groups = len(self.he_ids)
        if groups * width < 2**62:
            by_key = _argsort_stable(gid * width + key, groups * width)
        else:  # pragma: no cover - astronomically many keys
            by_key = np.lexsort((key, gid))
        gid, fl, rm = gid[by_key], fl[by_key], rm[by_key]
        starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
        counts = np.diff(np.r_[starts, n])
        missing = self.he_earned[gid[starts]] - np.add.reduceat(fl, starts)
        if ((missing < 0) | (missing > counts)).any():
            bad = self.he_ids[gid[starts][(missing < 0) | (missing > counts)][0]]
            raise AllocationError(f"cannot round the statement lines of holder {bad}")
        # Rank inside each holder by remainder, largest first; a stable sort keeps ties in
        # key order (the lines are already sorted by key inside each holder).
        if groups * S < 2**62:
            by_rm = np.argsort(gid * S + (S - 1 - rm), kind="stable")
        else:  # pragma: no cover - huge scale
            by_rm = np.lexsort((S - 1 - rm, gid))
        row_start = np.repeat(starts, counts)
        rank = np.empty(n, dtype="int64")
        rank[by_rm] = np.arange(n) - row_start[by_rm]
        # No `rm > 0` condition: a holder rounded up on the strength of the residue it
        # carried can have lines that are all whole units (rm = 0), and the unit it was given
        # still goes to one of them (the first by key). Without residues the units missing
        # never outnumber the lines with a remainder, so it changes nothing there.
        amount = fl + (rank < np.repeat(missing, counts))
        keep = np.flatnonzero(amount > 0)
        return by_key[keep], amount[keep]

    # ------------------------------------------------------------------------------- outputs
    def outputs(
        self,
        totals: dict[str, int],
        lines_by_work: pd.DataFrame,
        lines_by_source: pd.DataFrame,
    ) -> CycleResult:
        con, S = self.con, self.S
        holders = con.execute(
            f"""WITH j AS (
              SELECT coalesce(e.holder_id, h.holder_id) AS holder_id,
                     coalesce(h.bf, 0) AS bf, coalesce(e.earned, 0) AS earned,
                     coalesce(e.ded, 0) AS ded,
                     coalesce(h.ready, true) AS ready,
                     greatest(coalesce(h.thr, 0), {self.policy.threshold_minor}) AS thr
              FROM e_he e FULL OUTER JOIN e_hin h ON h.holder_id = e.holder_id)
            SELECT holder_id, bf AS brought_forward_minor, earned AS earned_minor,
                   bf + earned AS total_minor,
                   CASE WHEN ready AND bf + earned >= thr AND bf + earned > 0
                        THEN bf + earned ELSE 0 END AS payable_minor, ded AS deductions_minor
            FROM j WHERE earned > 0 OR bf > 0 ORDER BY holder_id"""  # nosec B608
        ).df()
        holders["carried_forward_minor"] = holders["total_minor"] - holders["payable_minor"]
        # Informational: gross = earned + the fee attributable to the holder's usage.
        holders["gross_minor"] = holders["earned_minor"] + holders["deductions_minor"]
        holders = holders[[*HOLDER_COLUMNS]]
        # Through Arrow: its strings become pandas' `str` columns without Python objects.
        suspense = (
            con.sql(
                "SELECT reason, ref, minor AS amount_minor FROM e_br WHERE kind = 2 AND minor > 0 "
                "ORDER BY reason, ref"
            )
            .to_arrow_table()
            .to_pandas()
        )
        fees = con.execute(
            "SELECT product, minor AS amount_minor FROM e_br WHERE kind = 0 AND minor > 0 "
            "ORDER BY product"
        ).df()
        licences = self.licence_breakdown

        for frame in (holders, suspense, fees, lines_by_work, lines_by_source, licences):
            for column in frame.columns:
                if column.endswith("_minor") or column in {"holder_id", "quantity"}:
                    frame[column] = frame[column].astype("int64")
        lines_by_work["work_id"] = lines_by_work["work_id"].astype("Int64")
        for frame, column in ((suspense, "reason"), (suspense, "ref"), (fees, "product")):
            frame[column] = frame[column].astype("str")
        for column in ("product", "release_id"):
            lines_by_source[column] = lines_by_source[column].astype("str")

        totals = dict(totals)
        totals["payable_minor"] = int(holders["payable_minor"].sum())
        totals["carried_forward_minor"] = int(holders["carried_forward_minor"].sum())
        # The identity again, from the frames handed out (not from the SQL that made them).
        fee, held, susp = (
            int(fees["amount_minor"].sum()),
            int(holders["earned_minor"].sum()),
            int(suspense["amount_minor"].sum()),
        )
        if (fee, held, susp) != (
            totals["fee_minor"],
            totals["holders_minor"],
            totals["suspense_minor"],
        ) or fee + held + susp != totals["in_minor"]:
            raise AllocationError("totals identity broken in the result frames")
        brought = int(holders["brought_forward_minor"].sum())
        if totals["payable_minor"] + totals["carried_forward_minor"] != brought + held:
            raise AllocationError("payable + carried forward != brought forward + earned")
        for name, frame in (
            ("holders", holders),
            ("suspense", suspense),
            ("fees", fees),
            ("lines_by_work", lines_by_work),
            ("lines_by_source", lines_by_source),
            ("licences", licences),
        ):
            minor = [c for c in frame.columns if c.endswith("_minor")]
            if len(frame) and (frame[minor] < 0).to_numpy().any():
                raise AllocationError(f"negative amount in {name}")
        _check_lines(lines_by_work, holders, "lines_by_work")
        _check_lines(lines_by_source, holders, "lines_by_source")
        del S
        return CycleResult(
            holders=holders,
            lines_by_work=lines_by_work,
            lines_by_source=lines_by_source,
            suspense=suspense,
            fees=fees,
            licences=licences,
            totals=totals,
            checksum=result_checksum(
                holders.drop(columns=["gross_minor", "deductions_minor"]), suspense, fees
            ),
            residues=self.residues.reset_index(drop=True),
        )

    def _licence_breakdown(self) -> pd.DataFrame:
        """Each licence's pool as fee + holders + suspense, rounded inside the pool.

        A proxied licence's parts are its combined pool's parts split in proportion to the
        licences' pools (floors: a few more sub-units short, still far below one unit).
        """
        S = self.S
        pools = {
            int(pool_id): (int(total), int(fee), int(held), int(net) - int(held), int(k))
            for pool_id, total, fee, held, net, k in self.con.execute(
                """WITH r AS (SELECT licence_id, sum(fee) AS fee, sum(net) AS net,
                                     sum(k) AS k, sum(routed) AS routed
                              FROM (SELECT licence_id, fee, net, 1 AS k,
                                           CASE WHEN route = 0 THEN net ELSE 0 END AS routed
                                    FROM e_r
                                    UNION ALL SELECT licence_id, fee, net, 1, 0 FROM e_rum
                                    UNION ALL SELECT licence_id, fee, net, k, routed FROM e_lsum)
                              GROUP BY licence_id)
                SELECT p.pool_id, p.pool_minor, CAST(coalesce(r.fee, 0) AS HUGEINT),
                  CAST(coalesce(r.routed, 0) AS HUGEINT) - CAST(coalesce(u.un, 0) AS HUGEINT),
                  CAST(coalesce(r.net, 0) AS HUGEINT), coalesce(r.k, 0)
                FROM e_pool p JOIN e_lt t ON t.pool_id = p.pool_id
                  LEFT JOIN r ON r.licence_id = p.pool_id
                  LEFT JOIN e_un u ON u.licence_id = p.pool_id"""
            ).fetchall()
        }
        rows = self.con.execute(
            "SELECT licence_id, pool_minor, pool_id, direct FROM e_lw WHERE NOT donor "
            "ORDER BY licence_id"
        ).fetchall()
        out: dict[str, list[int]] = {
            "licence_id": [],
            "pool_minor": [],
            "fee_minor": [],
            "holders_minor": [],
            "suspense_minor": [],
        }
        for licence_id, pool, pool_id, direct in rows:
            if pool_id not in pools:  # no usage at all: the whole pool is in suspense
                exact, short = [0, 0, int(pool) * S], 0
            else:
                total, fee, held, susp, k = pools[pool_id]
                exact, short = [fee, held, susp], k
                if not direct:
                    exact = [x * pool // total if total else 0 for x in exact]
                    short = k + len(exact)
            # Step 3 truncates each row by less than one sub-unit: at most k short in all.
            parts = largest_remainder(
                exact,
                S,
                int(pool),
                keys=[0, 1, 2],
                max_shortfall=min(max(short, 1), S - 1),
            )
            out["licence_id"].append(licence_id)
            out["pool_minor"].append(pool)
            out["fee_minor"].append(parts[0])
            out["holders_minor"].append(parts[1])
            out["suspense_minor"].append(parts[2])
        return pd.DataFrame({k: pd.Series(v, dtype="int64") for k, v in out.items()})


# --------------------------------------------------------------------------------------------
# Helpers


class _Shares:
    """Step 5 in numpy for the fast path: the rows of works that are not one whole share,
    split row by row over the work's shares exactly as `_split_shares` does in SQL.

    Each share of a row gets floor(net × ppm / 10⁶) (and of its fee), split as (x div 10⁶) ×
    ppm + (x mod 10⁶) × ppm div 10⁶ (int64 throughout: x < 2⁶³, ppm <= 10⁶), summed per
    (share, product) for `e_c`; what the floors leave of a row (its net minus its shares'
    parts) is summed per (work, product) (`e_rest`: a whole work's dust goes to its top
    holder, as a line of its own in `e_c`; a partial work's rest stays for suspense) and,
    for partial works, per licence (`e_un`). Every sum is bounded by the cycle's scaled total
    or its total quantity (checked by `_matched_rows`), so int64 sums are exact."""

    def __init__(self, got: dict[str, np.ndarray], top: int, n_pidx: int, n_pools: int):
        self.work = np.asarray(got["work_id"], dtype="int64")
        self.holder = np.asarray(got["holder_id"], dtype="int64")
        self.ppm = np.asarray(got["share_ppm"], dtype="int64")
        count = np.bincount(self.work, minlength=top + 1)
        self.count = count
        self.start = np.cumsum(count) - count
        # The works that have such shares, each with an index, wholeness and top holder.
        firsts = (
            np.flatnonzero(np.r_[True, self.work[1:] != self.work[:-1]])
            if len(self.work)
            else np.zeros(0, dtype="int64")
        )
        self.works = self.work[firsts]
        self.widx = np.zeros(top + 1, dtype="int64")
        self.widx[self.works] = np.arange(len(self.works))
        self.whole = np.asarray(got["whole"], dtype=bool)[firsts]
        self.top = np.asarray(got["top"], dtype="int64")[firsts]
        self.n_pidx = n_pidx
        size = len(self.work) * n_pidx
        self.acc_q = np.zeros(size, dtype="int64")
        self.acc_amt = np.zeros(size, dtype="int64")
        self.acc_fee = np.zeros(size, dtype="int64")
        groups = len(self.works) * n_pidx
        self.rest = np.zeros(groups, dtype="int64")
        self.rest_seen = np.zeros(groups, dtype=bool)
        self.un = np.zeros(n_pools, dtype="int64")
        self.un_seen = np.zeros(n_pools, dtype=bool)

    def prepare(
        self,
        at: np.ndarray,
        work: np.ndarray,
        q: np.ndarray,
        pidx: np.ndarray,
        net: np.ndarray,
        fee: np.ndarray,
    ) -> dict[str, np.ndarray] | None:
        """The split of these rows over their works' shares, ready for `add` (no shared state
        written: it may run beside another slice's `add`)."""
        if not len(work):
            return None
        count = self.count[work]
        if (count == 0).any():  # never: a routed row's work has shares
            raise AllocationError("a usage row routed to a work without shares")
        offsets = np.cumsum(count) - count
        row = np.repeat(np.arange(len(work)), count)
        share = self.start[work][row] + (np.arange(len(row)) - offsets[row])
        ppm = self.ppm[share]
        net_r, fee_r = net[row], fee[row]
        amt = _part(net_r, ppm, PPM)
        fee_s = _part(fee_r, ppm, PPM)
        del net_r, fee_r, ppm
        key = share * self.n_pidx + pidx[row]
        del share
        rest = net - np.add.reduceat(amt, offsets)  # the row's net once, less its parts
        group = self.widx[work] * self.n_pidx + pidx
        partial = np.flatnonzero(~self.whole[self.widx[work]])
        at_partial, un = _runs(at[partial], rest[partial])
        return {
            "key": key,
            "q": q[row],
            "amt": amt,
            "fee": fee_s,
            "group": group,
            "rest": rest,
            "at_partial": at_partial,
            "un": un,
        }

    def add(self, ready: dict[str, np.ndarray] | None) -> None:
        """Add a `prepare`d split into the sums."""
        if ready is None:
            return
        key = ready["key"]
        np.add.at(self.acc_q, key, ready["q"])
        np.add.at(self.acc_amt, key, ready["amt"])
        np.add.at(self.acc_fee, key, ready["fee"])
        np.add.at(self.rest, ready["group"], ready["rest"])
        self.rest_seen[ready["group"]] = True
        np.add.at(self.un, ready["at_partial"], ready["un"])
        self.un_seen[ready["at_partial"]] = True

    def finish(self, ids: np.ndarray, store: Callable[[str, pa.Table, bool], None]) -> None:
        """`e_rest` (partial works' rests) and `e_un` stored; `dust` set: the (work index,
        product) groups of whole works whose rest (> 0) goes to the work's top holder."""
        n_pidx = self.n_pidx
        group = np.flatnonzero(self.rest_seen)
        w = group // n_pidx
        whole = self.whole[w]
        self.dust = group[whole & (self.rest[group] > 0)]
        left = group[~whole]
        store(
            "e_rest",
            pa.table(
                {
                    "work_id": self.works[left // n_pidx],
                    "pidx": left % n_pidx,
                    "rest": self.rest[left],
                    "top": pa.nulls(len(left), pa.int64()),
                }
            ),
            True,
        )
        seen = np.flatnonzero(self.un_seen)
        store("e_un", pa.table({"licence_id": ids[seen], "un": self.un[seen]}), True)


def _line_sums_fast(
    acc_q: np.ndarray,
    acc_net: np.ndarray,
    acc_fee: np.ndarray,
    h1: np.ndarray,
    n_pidx: int,
    shares: _Shares | None,
) -> dict[str, dict[str, np.ndarray]]:
    """What `sums` makes of `e_c` (per holder × work: `e_wl`; per holder × product: `e_hp`),
    straight from the fast path's accumulators, the same integers as the SQL group-bys.

    `acc_*`: the whole-share rows per (work, product) slot (`work × n_pidx + pidx`), each to
    the work's one holder `h1[work]`; `shares`: the split rows per (share, product) and the
    dust of whole works (to the top holder, with no quantity or fee). A (holder, work) or
    (holder, product) exists when some row of `e_c` has it: every priced row has q > 0, a
    work with one whole share never has other shares, and a dust line's work and product
    always have a row of its top holder's share. int64 sums are exact: each is bounded by
    the cycle's scaled total or total quantity (checked by `_matched_rows`)."""
    works_q = acc_q.reshape(-1, n_pidx).sum(axis=1)
    works_n = acc_net.reshape(-1, n_pidx).sum(axis=1)
    w_used = np.flatnonzero(works_q)
    used = np.flatnonzero(acc_q)
    parts_h = [h1[used // n_pidx]]
    parts_p = [used % n_pidx]
    parts_amt = [acc_net[used]]
    parts_fee = [acc_fee[used]]
    del used
    wl = {"holder_id": [h1[w_used]], "work_id": [w_used], "q": [works_q[w_used]], "n": []}
    wl["n"].append(works_n[w_used])
    del works_q, works_n, w_used
    if shares is not None and len(shares.work):
        share_q = shares.acc_q.reshape(-1, n_pidx).sum(axis=1)
        share_n = shares.acc_amt.reshape(-1, n_pidx).sum(axis=1)
        dust = shares.dust
        if len(dust):
            # Each whole work's top holder's share (whole works here have several shares).
            share_w = shares.widx[shares.work]
            is_top = shares.whole[share_w] & (shares.holder == shares.top[share_w])
            top_share = np.full(len(shares.works), -1, dtype="int64")
            top_share[share_w[is_top]] = np.flatnonzero(is_top)
            to = top_share[dust // n_pidx]
            if (to < 0).any() or (share_q[np.maximum(to, 0)] == 0).any():  # never
                raise AllocationError("a whole work's dust has no top holder's line")
            np.add.at(share_n, to, shares.rest[dust])
            parts_h.append(shares.holder[to])
            parts_p.append(dust % n_pidx)
            parts_amt.append(shares.rest[dust])
            parts_fee.append(np.zeros(len(dust), dtype="int64"))
        s_used = np.flatnonzero(share_q)
        wl["holder_id"].append(shares.holder[s_used])
        wl["work_id"].append(shares.work[s_used])
        wl["q"].append(share_q[s_used])
        wl["n"].append(share_n[s_used])
        keys = np.flatnonzero(shares.acc_q)
        parts_h.append(shares.holder[keys // n_pidx])
        parts_p.append(keys % n_pidx)
        parts_amt.append(shares.acc_amt[keys])
        parts_fee.append(shares.acc_fee[keys])
    holder = np.concatenate(parts_h)
    ids, inverse = _dense_ids(holder)
    key = inverse * n_pidx + np.concatenate(parts_p)
    del holder, inverse
    hp_amt = np.zeros(len(ids) * n_pidx, dtype="int64")
    hp_fee = np.zeros(len(ids) * n_pidx, dtype="int64")
    seen = np.zeros(len(ids) * n_pidx, dtype=bool)
    np.add.at(hp_amt, key, np.concatenate(parts_amt))
    np.add.at(hp_fee, key, np.concatenate(parts_fee))
    seen[key] = True
    del key
    hp = np.flatnonzero(seen)
    return {
        "wl": {k: np.concatenate(v) for k, v in wl.items()},
        "hp": {"holder_id": ids[hp // n_pidx], "pidx": hp % n_pidx, "amt": hp_amt[hp]},
        # Every holder of `ids` has a line, so each is in `e_ch`.
        "ch": {
            "holder_id": ids,
            "amt": hp_amt.reshape(-1, n_pidx).sum(axis=1),
            "fee": hp_fee.reshape(-1, n_pidx).sum(axis=1),
        },
    }


def _dense_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct `values` and each value's index among them (`np.unique` with
    `return_inverse`, by a lookup array when the values are small non-negative ints)."""
    if not len(values):
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="int64")
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high < 4 * len(values) + (1 << 22):
        present = np.zeros(high + 1, dtype=bool)
        present[values] = True
        index = np.cumsum(present, dtype="int64") - 1
        return np.flatnonzero(present), index[values]
    ids, inverse = np.unique(values, return_inverse=True)
    return ids.astype("int64"), inverse.astype("int64").reshape(-1)


def split_by_shares(
    amount: int, shares: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], int]:
    """Split a scaled amount over a work's `(holder_id, share_ppm)` shares (step 5, exactly).

    Each share gets `floor(amount × ppm / 1e6)`. If the shares make a whole work, the sub-unit
    dust goes to the largest share (ties: smallest holder_id) and nothing is left; otherwise
    the rest is returned, for the work's `unassigned_share` suspense.
    """
    parts = [(h, amount * ppm // PPM) for h, ppm in shares]
    rest = amount - sum(a for _, a in parts)
    if shares and sum(ppm for _, ppm in shares) == PPM:
        top = min(shares, key=lambda s: (-s[1], s[0]))[0]
        parts = [(h, a + rest if h == top else a) for h, a in parts]
        rest = 0
    return parts, rest


def result_checksum(holders: pd.DataFrame, suspense: pd.DataFrame, fees: pd.DataFrame) -> str:
    """sha256 of the canonical CSV of the decisions that move money."""
    digest = hashlib.sha256()
    for name, frame in (("holders", holders), ("suspense", suspense), ("fees", fees)):
        digest.update(f"# {name}\n".encode())
        digest.update(_csv_bytes(frame))
    return digest.hexdigest()


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    """`frame.to_csv(index=False, lineterminator="\\n")`, encoded; byte for byte the same, but
    written by Arrow when no value needs quoting (integers, plain strings: the usual case)."""

    def plain(values: pd.Series) -> bool:  # written the same without quotes
        if values.dtype == "int64":
            return True
        if values.dtype != "str" or values.isna().any() or len(frame.columns) == 1:
            return False
        return not (len(values) and values.str.contains(r'[,"\r\n]', regex=True).any())

    names = pd.Series([str(c) for c in frame.columns], dtype="str")
    plain_frame = not names.str.contains(r'[,"\r\n]', regex=True).any() and all(
        plain(frame[c]) for c in frame.columns
    )
    if not plain_frame:
        return frame.to_csv(index=False, lineterminator="\n").encode()
    out = pa.BufferOutputStream()
    pa_csv.write_csv(
        pa.Table.from_pandas(frame, preserve_index=False),
        out,
        pa_csv.WriteOptions(quoting_style="none", quoting_header="none"),
    )
    return out.getvalue().to_pybytes()


def _check_lines(lines: pd.DataFrame, holders: pd.DataFrame, name: str) -> None:
    holder = lines["holder_id"].to_numpy()
    earned = holders["earned_minor"].to_numpy()
    ids = holders["holder_id"].to_numpy()[earned > 0]
    if len(holder) and (holder[1:] >= holder[:-1]).all() and (ids[1:] > ids[:-1]).all():
        # Lines sorted by holder (as `lines` makes them): one sum per run, in numpy.
        starts = np.flatnonzero(np.r_[True, holder[1:] != holder[:-1]])
        sums_np = np.add.reduceat(lines["amount_minor"].to_numpy(), starts)
        if (
            len(starts) != len(ids)
            or not (holder[starts] == ids).all()
            or not (sums_np == earned[earned > 0]).all()
        ):
            raise AllocationError(f"{name} do not sum to each holder's earned_minor")
        return
    sums = lines.groupby("holder_id")["amount_minor"].sum()
    earned = holders.set_index("holder_id")["earned_minor"]
    earned = earned[earned > 0]
    if not sums.reindex(earned.index, fill_value=0).equals(earned) or len(sums) != len(earned):
        raise AllocationError(f"{name} do not sum to each holder's earned_minor")


def _mapping_frame(mapping: Mapping[str, int], key: str, value: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            key: pd.Series(list(mapping.keys()), dtype="str"),
            value: pd.Series(list(mapping.values()), dtype="int64"),
        }
    )


def _add_runs(out: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """`np.add.at(out, index, values)` (exact integer sums), one add per run of equal
    indexes when `index` comes in long runs (rows grouped by licence); a slice at a time."""
    for at in _slices(len(index)):
        np.add.at(out, *_runs(index[at], values[at]))


def _slices(n: int) -> Iterator[slice]:
    """[0, n) in slices of `_SLICE`: work on every row done a slice at a time reuses the
    same few megabytes instead of touching fresh memory for each whole-length temporary."""
    for start in range(0, n, _SLICE):
        yield slice(start, min(start + _SLICE, n))


def _int64_values(column: pd.Series) -> np.ndarray:
    """An int64 (or nullable Int64) column's values as int64 without a copy when it can;
    where a value is missing, the number there is arbitrary (read the mask apart)."""
    if column.dtype == np.int64:
        return column.to_numpy().view(np.int64)
    data = getattr(column.array, "_data", None)  # pandas' masked arrays: values and mask
    if isinstance(data, np.ndarray) and data.dtype == np.int64 and len(data) == len(column):
        return data
    return column.to_numpy(dtype="int64", na_value=-1)


def _columns(con: duckdb.DuckDBPyConnection, query: str) -> dict[str, np.ndarray]:
    """The result's columns as numpy arrays, through Arrow (several times faster than
    `fetchnumpy` for a million rows). For NOT NULL columns only: a null raises."""
    table = con.sql(query).to_arrow_table()
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if column.null_count:  # never: the queries coalesce
            raise AllocationError(f"unexpected missing values in {name}")
        columns[name] = column.to_numpy()
    return columns


def _split_arrays(shares: pd.DataFrame, top: int) -> dict[str, np.ndarray] | None:
    """`e_shx` with `e_top`'s top holder (0 when none), as `_Shares` reads them, in numpy:
    the shares of works 0..top that are not one whole share, by (work, holder), with whether
    the work's shares make a whole and, for a whole work of several shares, its top holder
    (the largest share, the smallest holder id among equals). None unless the columns are
    int64 (checked already: no missing values, no holder twice on a work)."""
    if not all(shares[c].dtype == np.int64 for c in ("work_id", "holder_id", "share_ppm")):
        return None
    work = shares["work_id"].to_numpy().view(np.int64)
    keep = np.flatnonzero((work >= 0) & (work <= top))
    work = work[keep]
    holder = shares["holder_id"].to_numpy().view(np.int64)[keep]
    ppm = shares["share_ppm"].to_numpy().view(np.int64)[keep]
    empty = {
        "work_id": work[:0],
        "holder_id": holder[:0],
        "share_ppm": ppm[:0],
        "whole": np.zeros(0, dtype=bool),
        "top": work[:0],
    }
    if not len(work):
        return empty
    low = int(holder.min())
    span = int(holder.max()) - low + 1
    if (top + 1) * span >= 2**62:
        return None
    order = _argsort_stable(work * span + (holder - low), (top + 1) * span)
    work, holder, ppm = work[order], holder[order], ppm[order]
    starts = np.flatnonzero(np.r_[True, work[1:] != work[:-1]])
    n = np.diff(np.r_[starts, len(work)])
    tot = np.add.reduceat(ppm, starts)
    of = np.repeat(np.arange(len(starts)), n)  # each share's work, by index
    # The first share (smallest holder) at the work's largest ppm: its top holder.
    at_hi = np.flatnonzero(ppm == np.maximum.reduceat(ppm, starts)[of])
    first_hi = at_hi[np.r_[True, of[at_hi][1:] != of[at_hi][:-1]]]
    whole = tot == PPM
    top_holder = np.where((n > 1) & whole, holder[first_hi], 0)
    split = np.flatnonzero(~((n == 1) & whole)[of])
    return {
        "work_id": work[split],
        "holder_id": holder[split],
        "share_ppm": ppm[split],
        "whole": whole[of][split],
        "top": top_holder[of][split],
    }


def _weight_unit(policy: PolicyParams) -> int:
    """The greatest common divisor of every usage weight the policy can give (media weights,
    the default 10⁴ bp, the unmatched weight); 1 when they are all 0."""
    return math.gcd(BP, policy.unmatched_weight_bp, *policy.media_weight_bp.values()) or 1


def _works_arrays(
    works: pd.DataFrame, by_work: pd.DataFrame | None, policy: PolicyParams, unit: int = 1
) -> dict[str, np.ndarray] | None:
    """`e_wrk` as `_matched_rows` reads it, in numpy: per work its id, weight (by media, else
    10⁴ bp), media fee rate (-1: none), route (3 disputed, 4 no shares, else 0) and the holder
    of its one whole share (`h1`, `has_h1`). None unless the columns are plain (int64 ids,
    bool disputed, string media) and the shares' sums per work were made in numpy."""
    if (
        by_work is None
        or works["work_id"].dtype != np.int64
        or works["disputed"].dtype != np.bool_
        or not pd.api.types.is_string_dtype(works["media_type"].dtype)
    ):
        return None
    work_id = works["work_id"].to_numpy().view(np.int64)
    codes, media = pd.factorize(works["media_type"], use_na_sentinel=True)  # missing: -1
    names = list(media)  # compared as they are, as SQL's equality does
    # One more entry, last, for a missing media type (-1): no weight given, no fee rate.
    weights = [*(policy.media_weight_bp.get(m, BP) for m in names), BP]
    wbp = np.array([w // unit for w in weights], dtype="int64")  # in `_weight_unit`s
    mbp = np.array([*(policy.fee_bp_by_media.get(m, -1) for m in names), -1], dtype="int64")
    ws_work = by_work["work_id"].to_numpy("int64")  # sorted, unique
    at = np.minimum(np.searchsorted(ws_work, work_id), max(len(ws_work) - 1, 0))
    has_shares = ws_work[at] == work_id if len(ws_work) else np.zeros(len(work_id), bool)
    h1 = np.zeros(len(work_id), dtype="int64")
    has_h1 = np.zeros(len(work_id), dtype=bool)
    if len(ws_work):
        has_h1 = (
            has_shares
            & (by_work["n"].to_numpy("int64")[at] == 1)
            & (by_work["tot"].to_numpy("int64")[at] == PPM)
        )
        h1 = np.where(has_h1, by_work["first_holder"].to_numpy("int64")[at], 0)
    disputed = works["disputed"].to_numpy().view(np.bool_)
    route = np.where(disputed, 3, np.where(has_shares, 0, 4)).astype("int8")
    return {
        "work_id": work_id,
        "wbp": wbp[codes],
        "mbp": mbp[codes],
        "route": route,
        "h1": h1,
        "has_h1": has_h1,
    }


def _runs(index: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """(index, *values) for `np.add.at(out, index, value)`, shortened to one entry per run
    of equal indexes (each run's values summed) when `index` comes in long runs: the same
    exact integer sums, `_add_runs` in two halves (this one releases the GIL)."""
    if not len(index):
        return (index, *values)
    starts = np.flatnonzero(index[1:] != index[:-1]) + 1
    if len(starts) * 8 > len(index):  # short runs: adding row by row is as fast
        return (index, *values)
    starts = np.r_[0, starts]
    return (index[starts], *(np.add.reduceat(v, starts) for v in values))


def _part(x: np.ndarray, rate: np.ndarray, whole: int) -> np.ndarray:
    """floor(x × rate / whole) for 0 <= rate <= whole without widening: (x div whole) ×
    rate + (x mod whole) × rate div whole, the remainder taken as x − (x div whole) ×
    whole (the same integer as numpy's `%`, for any sign, and cheaper)."""
    high = x // whole
    low = x - high * whole
    np.multiply(high, rate, out=high)
    np.multiply(low, rate, out=low)
    np.floor_divide(low, whole, out=low)
    np.add(high, low, out=high)
    return high


def _weigh(
    at: slice,
    rows: dict[str, np.ndarray],
    wbp_w: np.ndarray,
    route_w: np.ndarray,
    ids: np.ndarray,
) -> slice:
    """`_matched_rows` on the rows `at`: weight q × wbp of the row's work, licence index and
    route written into `rows` (this slice only); `_NotFast` when a work has no weight (not
    in works) or a licence is not in `ids`."""
    wt, work = rows["wt"][at], rows["work"][at]
    np.take(wbp_w, work, out=wt, mode="clip")  # in range: checked
    if len(wt) and int(wt.min()) < 0:
        raise _NotFast
    np.multiply(wt, rows["q"][at], out=wt)
    li = _index_of(ids, rows["lid"][at])
    if li is None:
        raise _NotFast
    rows["li"][at] = li
    route = rows["route"][at]
    np.take(route_w, work, out=route, mode="clip")
    route[rows["reserved"][at]] = 2
    return at


def _lent(at: slice, rows: dict[str, np.ndarray], base: np.ndarray) -> tuple[np.ndarray, ...]:
    """`_pool_rows`' donor sums on the rows `at`: (key, q) of the rows of lending licences,
    the key `base` of the licence's proxy slot + work × 2 + reserved."""
    key = base[rows["li"][at]]
    lend = np.flatnonzero(key >= 0)
    work, route, q = rows["work"][at], rows["route"][at], rows["q"][at]
    if len(lend) == len(key):
        key += work * 2
        key += route == 2
        return key, q
    return key[lend] + work[lend] * 2 + (route[lend] == 2), q[lend]


class _NotFast(Exception):
    """A slice of `_matched_rows` found the common case does not hold: take the SQL path."""


def _pipelined(items: Iterator[_T], prepare: Callable[[_T], _U], add: Callable[[_U], None]) -> None:
    """`add(prepare(item))` for each item in order, with the next item's `prepare` running
    in a second thread meanwhile (numpy releases the GIL for most of it, `np.add.at` does
    not): the adds happen in the same order as one after the other, so every sum is the
    same. An error in either raises here; one thread (`ENGINE_THREADS` = 1) runs them in
    turn."""
    if ENGINE_THREADS < 2:
        for item in items:
            add(prepare(item))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="allocate") as pool:
        pending: Future[_U] | None = None
        for item in items:
            following = pool.submit(prepare, item)
            if pending is not None:
                add(pending.result())
            pending = following
        if pending is not None:
            add(pending.result())


def _work_shares(shares: pd.DataFrame) -> pd.DataFrame | None:
    """Per work of `shares` (int64 columns, checked already: no missing values, every ppm in
    1..10⁶): total ppm, number of shares, largest ppm and smallest holder id, as `e_ws`
    (exact int64 sums: at most 10⁶ × rows). None when the columns are not int64."""
    if not len(shares) or not all(
        shares[c].dtype == np.int64 for c in ("work_id", "holder_id", "share_ppm")
    ):
        return None
    work = shares["work_id"].to_numpy().view(np.int64)
    low = int(work.min())
    span = int(work.max()) - low + 1
    if span >= 2**62:
        return None
    order = _argsort_stable(work - low, span)
    work = work[order]
    starts = np.flatnonzero(np.r_[True, work[1:] != work[:-1]])
    ppm = shares["share_ppm"].to_numpy().view(np.int64)[order]
    holder = shares["holder_id"].to_numpy().view(np.int64)[order]
    return pd.DataFrame(
        {
            "work_id": work[starts],
            "tot": np.add.reduceat(ppm, starts),
            "n": np.diff(np.r_[starts, len(work)]),
            "hi": np.maximum.reduceat(ppm, starts),
            "first_holder": np.minimum.reduceat(holder, starts),
        }
    )


def _distinct_ints(*columns: pd.Series) -> bool | None:
    """Whether the rows of these int64 columns are pairwise distinct, by one sort of the
    values (a key packed from the columns); None when numpy cannot tell (other dtypes,
    missing or negative values, or keys past 63 bits): ask SQL."""
    if not all(c.dtype == np.int64 for c in columns) or not len(columns[0]):
        return None
    key = np.zeros(len(columns[0]), dtype="int64")
    span = 1
    for column in columns:
        values = column.to_numpy().view(np.int64)
        low, high = int(values.min()), int(values.max())
        if low < 0 or span * (high + 1) >= 2**63:
            return None
        key = key * (high + 1) + values if span > 1 else values
        span *= high + 1
    key = np.sort(key)
    return not bool((key[1:] == key[:-1]).any())


def _argsort_stable(keys: np.ndarray, bound: int) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for keys in [0, bound): when each key's position
    fits beside it in 63 bits, one sort of the values `key × 2^b + position` (a value sort is
    much faster than an index sort, and the positions make it stable and exact)."""
    n = len(keys)
    bits = max((n - 1).bit_length(), 1)
    if bound <= 0 or bound > (2**63 - 1) >> bits:
        return np.argsort(keys, kind="stable")
    packed = np.sort((keys << bits) | np.arange(n, dtype="int64"))
    return packed & ((1 << bits) - 1)


def _positions(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of `values`' index in the sorted unique `ids` and whether it is there at all
    (a lookup array when the ids and values are small non-negative ints)."""
    if not len(ids) or not len(values):
        return np.zeros(len(values), dtype="int64"), np.zeros(len(values), dtype=bool)
    low, high = min(int(ids[0]), int(values.min())), max(int(ids[-1]), int(values.max()))
    if low >= 0 and high < 4 * len(values) + (1 << 22):
        table = np.full(high + 1, -1, dtype="int64")
        table[ids] = np.arange(len(ids), dtype="int64")
        at = table[values]
        found = at >= 0
        return np.maximum(at, 0), found
    at = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return at, ids[at] == values


def _index_of(ids: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    """The index of each of `values` in the sorted unique `ids`, or None if one is not there
    (per run of equal values when they come in long runs; else a lookup array when the ids
    are small, or a binary search)."""
    if not len(values):
        return np.zeros(0, dtype="int64")
    starts = np.flatnonzero(values[1:] != values[:-1]) + 1
    if len(starts) * 8 <= len(values):
        at = _index_of_values(ids, values[np.r_[0, starts]])
        if at is None:
            return None
        return np.repeat(at, np.diff(np.r_[0, starts, len(values)]))
    return _index_of_values(ids, values)


def _index_of_values(ids: np.ndarray, values: np.ndarray) -> np.ndarray | None:
    low, high = int(values.min()), int(values.max())
    if low < int(ids[0]) or high > int(ids[-1]):
        return None
    if int(ids[0]) >= 0 and int(ids[-1]) < max(4 * len(values), 1 << 20):
        table = np.full(int(ids[-1]) + 1, -1, dtype="int64")
        table[ids] = np.arange(len(ids), dtype="int64")
        at = table[values]
        return at if (at >= 0).all() else None
    at = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
    return at if (ids[at] == values).all() else None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AllocationError(message)
