"""The engine's numpy helpers give exactly what the numpy or pandas calls they replace give."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from royalties.engine.allocate import (
    BP,
    PPM,
    AllocationError,
    _add_runs,
    _argsort_stable,
    _columns,
    _dense_ids,
    _distinct_ints,
    _index_of,
    _part,
    _pipelined,
    _positions,
    _runs,
    _work_shares,
)

RNG = np.random.default_rng(20261125)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000, 50_000])
@pytest.mark.parametrize("bound", [1, 3, 50, 2**40, 2**62])
def test_argsort_stable_is_numpys_stable_argsort(n: int, bound: int) -> None:
    keys = RNG.integers(0, bound, n, dtype="int64")
    assert np.array_equal(_argsort_stable(keys, bound), np.argsort(keys, kind="stable"))


def test_add_runs_sums_like_add_at_in_runs_or_not() -> None:
    for index in (
        np.repeat(RNG.integers(0, 20, 30), RNG.integers(1, 400, 30)),  # long runs, repeated
        RNG.integers(0, 20, 5000),  # short runs
        np.zeros(0, dtype="int64"),
    ):
        values = RNG.integers(0, 2**40, len(index), dtype="int64")
        expected = np.zeros(20, dtype="int64")
        np.add.at(expected, index, values)
        got = np.zeros(20, dtype="int64")
        _add_runs(got, index, values)
        assert np.array_equal(got, expected)


def test_index_of_finds_every_value_or_says_none() -> None:
    ids = np.unique(RNG.integers(0, 5000, 300))
    for values in (
        np.repeat(RNG.choice(ids, 40), RNG.integers(1, 500, 40)),
        RNG.choice(ids, 3000),
    ):
        at = _index_of(ids, values)
        assert at is not None and np.array_equal(ids[at], values)
        assert _index_of(ids, np.r_[values, ids[-1] + 1]) is None
        missing = np.setdiff1d(np.arange(ids[-1]), ids)[:1]
        assert _index_of(ids, np.r_[values, missing]) is None
    big = np.array([2**40, 2**41, 2**50], dtype="int64")
    assert np.array_equal(_index_of(big, np.array([2**50, 2**40, 2**40])), [2, 0, 0])


@pytest.mark.parametrize("high", [100, 2**45])
def test_positions_and_dense_ids_match_searchsorted_and_unique(high: int) -> None:
    values = RNG.integers(0, high, 5000, dtype="int64")
    ids, inverse = _dense_ids(values)
    expected_ids, expected_inverse = np.unique(values, return_inverse=True)
    assert np.array_equal(ids, expected_ids) and np.array_equal(inverse, expected_inverse)
    some = ids[::3]
    at, found = _positions(some, values)
    assert np.array_equal(found, np.isin(values, some))
    assert np.array_equal(some[at[found]], values[found])


def test_distinct_ints_sees_a_repeated_row_or_leaves_it_to_sql() -> None:
    def column(values: list, dtype: str = "int64") -> pd.Series:
        return pd.Series(values, dtype=dtype)

    assert _distinct_ints(column([3, 1, 2])) is True
    assert _distinct_ints(column([3, 1, 3])) is False
    assert _distinct_ints(column([1, 1, 2]), column([5, 6, 5])) is True
    assert _distinct_ints(column([1, 2, 1]), column([5, 6, 5])) is False
    assert _distinct_ints(column([0, 1]), column([0, 0])) is True
    assert _distinct_ints(column([1, None], "Int64")) is None
    assert _distinct_ints(column([-1, 2])) is None
    assert _distinct_ints(column([2**62, 1]), column([5, 3])) is None
    assert _distinct_ints(column([])) is None


def test_work_shares_are_the_sql_group_by() -> None:
    shares = pd.DataFrame(
        {
            "work_id": RNG.integers(0, 400, 2000),
            "holder_id": RNG.integers(0, 10**9, 2000),
            "share_ppm": RNG.integers(1, 10**6 + 1, 2000),
        }
    )
    got = _work_shares(shares).sort_values("work_id").reset_index(drop=True)
    grouped = shares.groupby("work_id", sort=True)
    expected = pd.DataFrame(
        {
            "work_id": grouped.size().index.to_numpy(),
            "tot": grouped["share_ppm"].sum().to_numpy(),
            "n": grouped.size().to_numpy(),
            "hi": grouped["share_ppm"].max().to_numpy(),
            "first_holder": grouped["holder_id"].min().to_numpy(),
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert _work_shares(shares.astype({"work_id": "Int64"})) is None


def test_runs_give_the_sums_add_at_gives_row_by_row() -> None:
    for index in (
        np.repeat(RNG.integers(0, 20, 30), RNG.integers(1, 400, 30)),  # long runs, repeated
        RNG.integers(0, 20, 5000),  # short runs
        np.zeros(0, dtype="int64"),
    ):
        a = RNG.integers(-(2**40), 2**40, len(index), dtype="int64")
        b = RNG.integers(0, 3, len(index), dtype="int64")
        expected_a, expected_b = np.zeros(20, dtype="int64"), np.zeros(20, dtype="int64")
        np.add.at(expected_a, index, a)
        np.add.at(expected_b, index, b)
        at, sum_a, sum_b = _runs(index, a, b)
        got_a, got_b = np.zeros(20, dtype="int64"), np.zeros(20, dtype="int64")
        np.add.at(got_a, at, sum_a)
        np.add.at(got_b, at, sum_b)
        assert np.array_equal(got_a, expected_a) and np.array_equal(got_b, expected_b)


@pytest.mark.parametrize("whole", [BP, PPM])
def test_part_is_the_floor_of_x_times_rate_over_whole(whole: int) -> None:
    x = np.r_[
        RNG.integers(-(2**62), 2**62, 20_000, dtype="int64"),
        np.array([0, 1, -1, whole - 1, whole, -whole, 2**63 - 1, -(2**63) + whole], "int64"),
    ]
    rate = RNG.integers(0, whole + 1, len(x), dtype="int64")
    rate[:3] = [0, whole, 1]
    got = _part(x.copy(), rate, whole)
    expected = [(int(v) * int(r)) // whole for v, r in zip(x, rate, strict=True)]
    assert got.tolist() == expected


def test_columns_are_fetchnumpys_and_refuse_a_null() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT range AS a, range % 3 = 0 AS b, CAST(range % 5 AS TINYINT) AS c"
        " FROM range(100000)"
    )
    query = "SELECT a, b, c FROM t ORDER BY a"
    got, expected = _columns(con, query), con.execute(query).fetchnumpy()
    for name in ("a", "b", "c"):
        assert got[name].dtype == np.asarray(expected[name]).dtype
        assert np.array_equal(got[name], np.asarray(expected[name]))
    with pytest.raises(AllocationError, match="missing values in a"):
        _columns(con, "SELECT CASE WHEN a = 7 THEN NULL ELSE a END AS a FROM t")


@pytest.mark.parametrize("threads", [1, 2])
def test_pipelined_adds_every_item_in_order_and_raises_errors(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from royalties.engine import allocate

    monkeypatch.setattr(allocate, "ENGINE_THREADS", threads)
    added: list[int] = []
    _pipelined(iter(range(50)), lambda i: i * i, added.append)
    assert added == [i * i for i in range(50)]
    _pipelined(iter([]), lambda i: i, added.append)
    assert len(added) == 50

    def prepare(i: int) -> int:
        if i == 7:
            raise AllocationError("bad slice 7")
        return i

    added.clear()
    with pytest.raises(AllocationError, match="bad slice 7"):
        _pipelined(iter(range(20)), prepare, added.append)
    assert added == list(range(7))


@pytest.mark.parametrize("media_dtype", ["str", "object"])
def test_works_arrays_are_the_sql_works_table(media_dtype: str) -> None:
    """The works as `_matched_rows` reads them, in numpy (`_works_arrays`) and from `e_wrk`
    (SQL): weight and fee rate by media type (unknown and missing ones included), route
    (disputed, without shares) and the holder of a work's one whole share."""
    from royalties.engine.allocate import (
        PolicyParams,
        _Run,
        _weight_unit,
        _works_arrays,
        empty_inputs,
    )

    n = 3000
    work_id = RNG.permutation(np.arange(10, 10 + 2 * n, 2, dtype="int64"))
    media = RNG.choice(np.array(["text", "image", "audio", "video", ""], dtype=object), n)
    media[RNG.random(n) < 0.1] = None
    works = pd.DataFrame(
        {
            "work_id": work_id,
            "media_type": pd.Series(media, dtype=media_dtype),
            "disputed": RNG.random(n) < 0.1,
        }
    )
    # Shares for 80% of the works: one whole share, two making a whole, or one partial.
    rows = []
    for w in work_id[: int(n * 0.8)]:
        kind = int(RNG.integers(0, 3))
        if kind == 0:
            rows.append((w, int(RNG.integers(1, 500)), PPM))
        elif kind == 1:
            rows += [(w, 1, 400_000), (w, 2, 600_000)]
        else:
            rows.append((w, int(RNG.integers(1, 500)), 700_000))
    shares = pd.DataFrame(rows, columns=["work_id", "holder_id", "share_ppm"]).astype("int64")
    policy = PolicyParams(
        admin_fee_bp=1000,
        fee_bp_by_media={"audio": 2000, "": 50},
        media_weight_bp={"image": 5000, "video": 0},
    )
    inputs = empty_inputs(works=works, shares=shares)
    unit = _weight_unit(policy)
    assert unit == 5000  # gcd of 10⁴ (the default and unmatched), 5000 and 0
    got = _works_arrays(works, _work_shares(shares), policy, unit)
    assert got is not None
    run = _Run(duckdb.connect(), inputs, policy, {})
    run.load(reduce_side=False)
    run._works_sql()
    sql = run.con.execute(
        """SELECT work_id, wbp, coalesce(mbp, -1) AS mbp,
             CAST(CASE WHEN disputed THEN 3 WHEN NOT has_shares THEN 4 ELSE 0 END
               AS TINYINT) AS route, coalesce(h1, 0) AS h1, h1 IS NOT NULL AS has_h1
           FROM e_wrk ORDER BY work_id"""
    ).fetchnumpy()
    order = np.argsort(got["work_id"])
    for name in ("work_id", "wbp", "mbp", "route", "h1", "has_h1"):
        assert np.array_equal(got[name][order], np.asarray(sql[name])), name
    assert set(got["route"].tolist()) == {0, 3, 4} and got["has_h1"].any()
    assert _works_arrays(works.astype({"work_id": "Int64"}), _work_shares(shares), policy) is None


def test_split_arrays_are_the_sql_shares_step_5_splits_over() -> None:
    """The shares `_Shares` splits rows over, in numpy (`_split_arrays`) and from `e_shx`
    and `e_top` (SQL): works not one whole share, by (work, holder), whether whole, and the
    top holder of a whole work of several shares (ties at the largest share included)."""
    from royalties.engine.allocate import PolicyParams, _Run, _split_arrays, empty_inputs

    rows = []
    for w in range(0, 4000):
        kind = int(RNG.integers(0, 5))
        holders = RNG.choice(np.arange(1, 300), 3, replace=False).tolist()
        if kind == 0:  # one whole share
            rows.append((w, holders[0], PPM))
        elif kind == 1:  # a whole of three, two of them tied at the top
            rows += [(w, holders[0], 400_000), (w, holders[1], 400_000), (w, holders[2], 200_000)]
        elif kind == 2:  # a whole of two
            rows += [(w, holders[0], 250_000), (w, holders[1], 750_000)]
        elif kind == 3:  # partial
            rows += [(w, holders[0], 300_000), (w, holders[1], 100_000)]
        # kind 4: no shares
    rows += [(5000, 7, PPM), (5001, 8, 500_000)]  # past `top`: left out
    shares = pd.DataFrame(rows, columns=["work_id", "holder_id", "share_ppm"]).astype("int64")
    shares = shares.sample(frac=1, random_state=7).reset_index(drop=True)
    top = 3999
    got = _split_arrays(shares, top)
    assert got is not None
    run = _Run(duckdb.connect(), empty_inputs(shares=shares), PolicyParams(admin_fee_bp=0), {})
    run.load(map_side=False, reduce_side=False)
    sql = run._split_rows_sql(top)
    for name in ("work_id", "holder_id", "share_ppm", "whole", "top"):
        assert np.array_equal(got[name], np.asarray(sql[name])), name
    assert got["whole"].any() and (~got["whole"]).any() and (got["top"] > 0).any()
    assert _split_arrays(shares.astype({"holder_id": "Int64"}), top) is None


def test_an_allocation_turns_numpys_huge_pages_off_and_back() -> None:
    """`HUGEPAGES` holds while the engine runs, and numpy's own setting comes back after,
    also when the allocation fails."""
    from royalties.engine import allocate
    from royalties.engine.allocate import PolicyParams, empty_inputs

    seen: list[bool] = []
    original = allocate._Run.load

    def load(self, **kwargs) -> None:
        seen.append(_numpy_hugepages())
        original(self, **kwargs)

    negative = pd.DataFrame(
        {"licence_id": [1], "product": ["A"], "pool_minor": [-5], "declared": [True]}
    ).astype({"licence_id": "int64", "product": "str", "pool_minor": "int64"})
    before = _numpy_hugepages()
    allocate._Run.load = load
    try:
        allocate.allocate(empty_inputs(), PolicyParams(admin_fee_bp=0))
        with pytest.raises(AllocationError, match="negative pool_minor"):
            allocate.allocate(empty_inputs(licences=negative), PolicyParams(admin_fee_bp=0))
    finally:
        allocate._Run.load = original
    assert seen == [allocate.HUGEPAGES, allocate.HUGEPAGES]
    assert _numpy_hugepages() == before


def _numpy_hugepages() -> bool:
    switch = np._core.multiarray._set_madvise_hugepage
    value = bool(switch(True))
    switch(value)
    return value
