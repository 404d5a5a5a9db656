"""The allocation bounded by chunks of usage rows (ROYALTIES_ALLOCATION_CHUNK_ROWS): a cycle
with more usage rows than a chunk is allocated chunk by chunk in its one task (or, with
ROYALTIES_ALLOCATION_PARTITIONS > 1, fanned out over a map task per chunk at least); each
chunk reads its donors' usage summed per work and identifier and only the works its usage
names, the partials are summed per key, and the statements stay exactly those of the
one-task allocation. The scenario is test_allocation_runs's (two products, a proxied
undeclared licence, shared works, an unmatched identifier). In one task the works and shares
are read once for every chunk (`cycle_inputs.Catalogue`), the partials summed as they come
(`PartialSums`) and a proxy pool's donor usage summed from the chunks that priced the donors
(`LentUsage`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.db.models import Sum

from licensing.models import Share, Work
from royalties.engine.allocate import PARTIAL_COLUMNS, Partial, empty_partial_frame
from royalties.models import AllocationPartial, AllocationRun, AllocationRunState, CycleStatus
from royalties.selectors import cycle_inputs
from royalties.services import allocation_runs
from royalties.services.allocation_runs import (
    LentUsage,
    PartialSums,
    chunk_plan,
    task_chunk_plan,
)
from tests.royalties import cycles_support as cs
from tests.royalties.test_allocation_runs import _stored, fanout_scenario  # noqa: F401


def _licences(rows: list[tuple[int, str, bool, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["licence_id", "product", "pooled", "cost"])


def test_a_chunk_smaller_than_the_usage_makes_several_partitions_of_at_most_a_chunk():
    frame = _licences([(i, "p", False, 10) for i in range(1, 11)])
    plan = chunk_plan(frame, partitions=1, chunk_rows=25)
    assert len(plan) == 5
    assert all(len(priced) == 2 and not donors for priced, donors in plan)
    assert sorted(x for priced, _ in plan for x in priced) == list(range(1, 11))
    assert chunk_plan(frame, partitions=1, chunk_rows=1000) == [(list(range(1, 11)), [])]
    assert len(chunk_plan(frame, partitions=3, chunk_rows=1000)) == 3  # the setting's floor


def test_a_licence_larger_than_a_chunk_is_never_split():
    frame = _licences([(1, "p", False, 100), (2, "p", False, 3), (3, "p", False, 4)])
    plan = chunk_plan(frame, partitions=1, chunk_rows=10)
    assert plan == [([1], []), ([2, 3], [])]


def test_a_proxy_pool_stays_whole_and_reads_its_product_as_donors():
    frame = _licences(
        [
            (1, "a", False, 50),
            (2, "a", False, 50),
            (3, "a", True, 1),
            (4, "a", True, 1),
            (5, "b", False, 50),
        ]
    )
    plan = chunk_plan(frame, partitions=1, chunk_rows=60)
    pooled = [part for part in plan if 3 in part[0]]
    assert len(pooled) == 1 and 4 in pooled[0][0]
    assert set(pooled[0][1]) | set(pooled[0][0]) >= {1, 2}  # every declared licence of "a"
    assert sorted(x for priced, _ in plan for x in priced) == [1, 2, 3, 4, 5]
    # The donors are read summed per work: they cost at most the catalogue's works (plus
    # their identifiers), so the proxy pool fits a chunk with a declared licence.
    frame["matched"], frame["identifiers"] = frame["cost"] - 1, 1
    plan = chunk_plan(frame, partitions=1, chunk_rows=80, works=20)
    assert len(plan) == 3
    assert ([1, 3, 4], [2]) in plan  # 50 rows of licence 1, 2 + 20 + 2 of the proxy pool
    assert sorted(x for priced, _ in plan for x in priced) == [1, 2, 3, 4, 5]
    # The suspense fallback has no proxy pool: no donors anywhere.
    assert all(not d for _, d in chunk_plan(frame, partitions=1, chunk_rows=60, fallback="x"))


def test_one_task_prices_the_proxy_pools_in_chunks_of_their_own_after_their_donors():
    frame = _licences(
        [
            (1, "a", False, 50),
            (2, "a", False, 50),
            (3, "a", True, 1),
            (4, "a", True, 1),
            (5, "b", False, 50),
            (6, "b", True, 1),
            (7, "c", True, 1),  # a product without declared licences: no donors
        ]
    )
    frame["matched"], frame["identifiers"] = frame["cost"] - 1, 1
    plan = task_chunk_plan(frame, chunk_rows=60, works=20)
    assert plan[:3] == [([1], []), ([2], []), ([5], [])]  # on their own usage, first
    # The pools: "a" costs 2 + 20 + 2 (its donors summed), "b" 1 + 20 + 1, "c" 1: one chunk.
    assert plan[3:] == [([3, 4, 6, 7], [1, 2, 5])]
    assert sorted(x for priced, _ in plan for x in priced) == list(range(1, 8))
    assert task_chunk_plan(frame, chunk_rows=30, works=20)[3:] == [([3, 4], [1, 2]), ([6, 7], [5])]
    # The suspense fallback has no proxy pool.
    assert all(not d for _, d in task_chunk_plan(frame, chunk_rows=60, fallback="suspense"))


def test_chunks_store_the_identical_allocation(fanout_scenario, operator, settings):  # noqa: F811
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 1_000_000
    one = cs.allocate(operator)
    assert one.status == CycleStatus.ALLOCATED, one.message
    assert not AllocationRun.objects.exists()  # under a chunk: one task, in memory

    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 2  # every licence's usage passes a chunk
    chunked = cs.allocate(operator)
    assert chunked.status == CycleStatus.ALLOCATED, chunked.message
    assert not AllocationRun.objects.exists()  # one task still, chunk by chunk
    assert chunked.current_allocation.timings["chunks"] == 5
    assert _stored(chunked.current_allocation) == _stored(one.current_allocation)

    settings.ROYALTIES_ALLOCATION_PARTITIONS = 2  # fanned out: a task per chunk
    chunked = cs.allocate(operator)
    assert chunked.status == CycleStatus.ALLOCATED, chunked.message
    run = AllocationRun.objects.get()
    assert run.state == AllocationRunState.DONE
    # Four declared licences on their own, and the proxy pool with its two donors.
    assert run.partitions == 5
    proxied = fanout_scenario[2].pk
    part = next(p for p in run.partition_rows.all() if p.licence_ids == [proxied])
    assert part.donor_ids == sorted(x.pk for x in fanout_scenario[:2])
    assert not AllocationPartial.objects.exists()
    assert _stored(chunked.current_allocation) == _stored(one.current_allocation)


def test_chunks_reading_the_works_by_a_semi_join_store_the_identical_allocation(
    fanout_scenario,  # noqa: F811
    operator,
    settings,
    monkeypatch,
):
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    expected = _stored(cs.allocate(operator).current_allocation)
    # Past this many works, a partition names its works through a temporary table.
    monkeypatch.setattr(cycle_inputs, "_WORKS_NAMED", 1)
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 3
    for partitions in (1, 2):  # chunks in one task, and a run of map tasks
        settings.ROYALTIES_ALLOCATION_PARTITIONS = partitions
        cycle = cs.allocate(operator)
        assert cycle.status == CycleStatus.ALLOCATED, cycle.message
        assert _stored(cycle.current_allocation) == expected


def test_donor_usage_is_read_summed_and_dealt_out_to_every_donor(
    fanout_scenario,  # noqa: F811
):
    donors = fanout_scenario[:2]
    declared = cycle_inputs.declarations_for_cycle(
        licence_ids=[x.pk for x in donors],
        period_start=pd.Timestamp("2026-07-01").date(),
        period_end=pd.Timestamp("2026-09-30").date(),
    )
    ids = [pk for pks in declared.values() for pk in pks]
    assert ids
    raw = cycle_inputs.usage_frame(declarations={pk: 0 for pk in ids})
    summed = cycle_inputs.usage_summed_frame(
        declaration_ids=ids, licence_ids=[x.pk for x in donors]
    )
    assert set(summed["licence_id"]) == {x.pk for x in donors}
    assert summed["quantity"].sum() == raw["quantity"].sum()
    matched = summed[summed["work_id"].notna()]
    assert matched["work_id"].is_unique  # one row per work: DOI 1 was used by both
    assert len(matched) < len(raw[raw["work_id"].notna()])
    assert summed.loc[summed["work_id"].isna(), "ref"].tolist() == ["doi:10.5555/unknown"]
    # Fewer summed rows than donors: None (the caller reads them as they are).
    assert (
        cycle_inputs.usage_summed_frame(declaration_ids=ids, licence_ids=list(range(1, 100)))
        is None
    )


def test_one_partition_with_the_proxy_pools_of_two_products_stores_the_identical_allocation(
    fanout_scenario,  # noqa: F811
    operator,
    licensee,
    settings,
    monkeypatch,
):
    # A second proxy pool: an undeclared "ai-code" licence. Both pools go to one partition,
    # which reads the donors of both products (each product's summed apart).
    undeclared = cs.paid_licence(licensee, operator, amount=77_777, code="ai-code")
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    expected = _stored(cs.allocate(operator).current_allocation)
    declared = [x.pk for x in fanout_scenario if x.pk != fanout_scenario[2].pk]
    plan = [([fanout_scenario[2].pk, undeclared.pk], sorted(declared)), (sorted(declared), [])]
    monkeypatch.setattr(allocation_runs, "chunk_plan", lambda *args, **kwargs: plan)
    monkeypatch.setattr(allocation_runs, "task_chunk_plan", lambda *args, **kwargs: plan)
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 1
    cycle = cs.allocate(operator)  # one task, chunk by chunk
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert cycle.current_allocation.timings["chunks"] == 2
    assert _stored(cycle.current_allocation) == expected
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 2  # a run of map tasks
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    run = AllocationRun.objects.get()
    assert run.partitions == 2
    assert _stored(cycle.current_allocation) == expected


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("chunk", [1, 4, 10])
def test_any_chunk_gives_the_same_checksum(fanout_scenario, operator, settings, chunk, partitions):  # noqa: F811
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 1_000_000
    expected = cs.allocate(operator).current_allocation.checksum
    settings.ROYALTIES_ALLOCATION_PARTITIONS = partitions
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = chunk
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert cycle.current_allocation.checksum == expected


def _random_partial(rng, scale: int, rows: int) -> Partial:
    def amounts(n: int, name: str) -> dict:
        return {
            f"{name}_minor": rng.integers(0, 10**12, n, dtype="int64"),
            f"{name}_sub": rng.integers(0, scale, n, dtype="int64"),
        }

    def frame(name: str, data: dict) -> pd.DataFrame:
        return pd.DataFrame(data).astype(PARTIAL_COLUMNS[name])

    n = int(rng.integers(0, rows + 1))
    return Partial(
        scale=scale,
        fees=frame("fees", {"product": rng.choice(["a", "b"], 2), **amounts(2, "amount")}),
        holders=frame(
            "holders",
            {"holder_id": rng.integers(1, 9, n), **amounts(n, "amount"), **amounts(n, "fee")},
        ),
        suspense=frame(
            "suspense",
            {
                "reason": rng.choice(["unmatched", "reserved"], n),
                "ref": rng.choice(["doi:1", "doi:2", ""], n),
                **amounts(n, "amount"),
            },
        ),
        lines_by_work=frame(
            "lines_by_work",
            {
                "holder_id": rng.integers(1, 9, n),
                "work_id": rng.integers(1, 7, n),
                "quantity": rng.integers(0, 1000, n),
                **amounts(n, "amount"),
            },
        ),
        lines_by_source=frame(
            "lines_by_source",
            {
                "holder_id": rng.integers(1, 9, n),
                "product": rng.choice(["a", "b"], n),
                **amounts(n, "amount"),
            },
        ),
        licences=empty_partial_frame("licences"),
    )


def _exact_sums(partials: list[Partial], name: str, keys: list[str], scale: int) -> dict:
    """Python integers, no carrying: key -> each value column's exact total."""
    totals: dict = {}
    for partial in partials:
        for row in getattr(partial, name).to_dict("records"):
            key = tuple(row[k] for k in keys)
            got = totals.setdefault(key, {})
            for column, value in row.items():
                if column in keys:
                    continue
                if column.endswith("_minor"):
                    base = column.removesuffix("_minor")
                    got[base] = got.get(base, 0) + int(value) * scale
                elif column.endswith("_sub"):
                    base = column.removesuffix("_sub")
                    got[base] = got.get(base, 0) + int(value)
                else:
                    got[column] = got.get(column, 0) + int(value)
    return totals


@pytest.mark.parametrize("waiting_rows", [1, 7, 10_000])
def test_partial_sums_are_exact_whenever_they_are_summed(waiting_rows):
    scale = 10**9
    rng = np.random.default_rng(waiting_rows)
    partials = [_random_partial(rng, scale, 40) for _ in range(12)]
    sums = PartialSums(scale, waiting_rows=waiting_rows)
    for partial in partials:
        sums.add(partial)
        assert sums.rows() <= 2 * 6 * 8 * 5 + waiting_rows + 5 * 40 + 10  # bounded, not growing
    total = sums.total()
    for name, keys in allocation_runs._PARTIAL_KEYS.items():
        frame = getattr(total, name)
        assert list(frame.columns) == list(PARTIAL_COLUMNS[name])
        assert not frame.duplicated(keys).any()
        for column in frame.columns:
            if column.endswith("_sub"):
                assert ((frame[column] >= 0) & (frame[column] < scale)).all()
        expected = _exact_sums(partials, name, keys, scale)
        assert _exact_sums([total], name, keys, scale) == expected
    assert total.licences.empty


def test_lent_usage_is_what_the_database_sums_for_the_donors(fanout_scenario):  # noqa: F811
    donors = fanout_scenario[:2]
    declared = cycle_inputs.declarations_for_cycle(
        licence_ids=[x.pk for x in donors],
        period_start=pd.Timestamp("2026-07-01").date(),
        period_end=pd.Timestamp("2026-09-30").date(),
    )
    ids = sorted(x.pk for x in donors)
    lent = LentUsage(waiting_rows=1)  # summed again after every licence
    for lid in ids:
        lent.add([lid], cycle_inputs.usage_frame(declarations={pk: lid for pk in declared[lid]}))
    frame = lent.frame(ids)
    database = cycle_inputs.usage_summed_frame(
        declaration_ids=[pk for lid in ids for pk in declared[lid]], licence_ids=ids
    )
    assert frame.dtypes.to_dict() == database.dtypes.to_dict()
    assert frame.equals(database)
    with pytest.raises(ValueError):
        lent.frame(ids[:1])  # only the licences whose usage it holds
    # Fewer summed rows than donors: None (the caller reads them from the database).
    few = LentUsage()
    few.add(list(range(1, 100)), cycle_inputs.usage_frame(declarations={declared[ids[0]][0]: 1}))
    assert few.frame(list(range(1, 100))) is None


def test_the_catalogue_hands_out_what_the_database_reads(fanout_scenario):  # noqa: F811
    catalogue = cycle_inputs.catalogue_load()
    assert len(catalogue) == Work.objects.count()
    every = list(Work.objects.values_list("pk", flat=True))
    some = [every[1], every[1], every[3], 10**9]  # repeats, and a work that does not exist
    for wanted in (every, some, []):

        def rows(frame: pd.DataFrame) -> list:
            return sorted(map(tuple, frame.to_numpy().tolist()))

        assert rows(catalogue.works(wanted)) == rows(cycle_inputs.works_frame(work_ids=wanted))
        shares = catalogue.shares(wanted)
        assert rows(shares) == rows(cycle_inputs.shares_frame(work_ids=wanted))
        assert list(shares.columns) == ["work_id", "holder_id", "share_ppm"]
    totals = Share.objects.values("work_id").annotate(ppm=Sum("share_ppm"))
    got = catalogue.shares(every).groupby("work_id")["share_ppm"].sum().to_dict()
    assert got == {row["work_id"]: row["ppm"] for row in totals}


def test_chunks_sum_the_donors_of_a_proxy_pool_from_the_chunks_before(
    fanout_scenario,  # noqa: F811
    operator,
    licensee,
    settings,
    monkeypatch,
):
    undeclared = cs.paid_licence(licensee, operator, amount=77_777, code="ai-code")
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    expected = _stored(cs.allocate(operator).current_allocation)
    train, code = fanout_scenario[:2], fanout_scenario[3:]
    proxied = fanout_scenario[2].pk
    read = []
    summed_frame = cycle_inputs.usage_summed_frame
    monkeypatch.setattr(
        cycle_inputs,
        "usage_summed_frame",
        lambda **kw: read.append(sorted(kw["licence_ids"])) or summed_frame(**kw),
    )
    # Each proxy pool in its own chunk, which prices the other product's donors: the first
    # chunk's donors are read summed from the database, the second's summed from the first.
    plan = [
        ([proxied, *sorted(x.pk for x in code)], sorted(x.pk for x in train)),
        ([undeclared.pk, *sorted(x.pk for x in train)], sorted(x.pk for x in code)),
    ]
    monkeypatch.setattr(allocation_runs, "chunk_plan", lambda *args, **kwargs: plan)
    monkeypatch.setattr(allocation_runs, "task_chunk_plan", lambda *args, **kwargs: plan)
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 1
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert read == [sorted(x.pk for x in train)]
    assert _stored(cycle.current_allocation) == expected
    # The donors' chunks first, then the proxy pools': nothing read summed from the database.
    read.clear()
    plan[:] = [
        (sorted(x.pk for x in (*train, *code)), []),
        (sorted([proxied, undeclared.pk]), sorted(x.pk for x in (*train, *code))),
    ][::-1]  # in the wrong order: the task puts the proxy pools last itself
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert read == []
    assert _stored(cycle.current_allocation) == expected


def test_a_cycle_that_uses_few_works_reads_them_per_chunk(
    fanout_scenario,  # noqa: F811
    operator,
    settings,
    monkeypatch,
):
    settings.ROYALTIES_ALLOCATION_PARTITIONS = 1
    expected = _stored(cs.allocate(operator).current_allocation)
    loads = []
    monkeypatch.setattr(cycle_inputs, "catalogue_load", lambda: loads.append(1) / 0)
    monkeypatch.setattr(cycle_inputs, "works_count", lambda: 10**6)  # a large catalogue
    settings.ROYALTIES_ALLOCATION_CHUNK_ROWS = 2
    cycle = cs.allocate(operator)
    assert cycle.status == CycleStatus.ALLOCATED, cycle.message
    assert loads == []
    assert _stored(cycle.current_allocation) == expected
