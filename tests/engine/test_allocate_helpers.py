"""The engine's numpy helpers give exactly what the numpy or pandas calls they replace give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from royalties.engine.allocate import (
    _add_runs,
    _argsort_stable,
    _dense_ids,
    _distinct_ints,
    _index_of,
    _positions,
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
