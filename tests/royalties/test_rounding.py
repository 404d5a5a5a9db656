"""Property tests of the one rounding rule (no database)."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from royalties.engine.rounding import RoundingError, largest_remainder, split

amounts = st.integers(min_value=0, max_value=10**15)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=40).filter(
    any
)


@settings(max_examples=1000)
@given(amounts, weight_lists)
def test_split_conserves_every_minor_unit(total, weights):
    assert sum(split(total, weights)) == total


@settings(max_examples=1000)
@given(amounts, weight_lists)
def test_each_part_is_within_one_minor_unit_of_its_exact_share(total, weights):
    parts = split(total, weights)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert abs(part - exact) < 1
        assert part >= 0


@settings(max_examples=1000)
@given(amounts, weight_lists, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_input_order(total, weights, rng):
    keys = [f"holder-{i:04d}" for i in range(len(weights))]
    expected = dict(zip(keys, split(total, weights, keys), strict=True))
    order = list(range(len(weights)))
    rng.shuffle(order)
    shuffled = split(total, [weights[i] for i in order], [keys[i] for i in order])
    assert dict(zip([keys[i] for i in order], shuffled, strict=True)) == expected


def test_ties_go_to_the_smallest_key_deterministically():
    assert split(100, [1, 1, 1]) == [34, 33, 33]
    assert split(100, [1, 1, 1], keys=["c", "b", "a"]) == [33, 33, 34]
    assert split(2, [1, 1, 1], keys=["b", "a", "c"]) == [1, 1, 0]


def test_a_9m_pool_over_uneven_shares_is_exact():
    # 9,000,000.00 EUR over holders with thirds and sevenths: floats would drift here.
    # weights sum to 27: each weight-1 and weight-7 part has remainder 9/27, the weight-3 part
    # none; 2 units are missing after the floors and go to the two smallest keys.
    parts = split(900_000_000, [1, 1, 1, 7, 7, 7, 3])
    assert parts == [
        33_333_334,
        33_333_334,
        33_333_333,
        233_333_333,
        233_333_333,
        233_333_333,
        100_000_000,
    ]


@pytest.mark.parametrize(
    "numerators, denominator, total",
    [([5, 5], 10, 2), ([-1, 11], 10, 1), ([10, 10], 0, 2), ([25, 0], 10, 1)],
)
def test_inputs_that_do_not_add_up_raise(numerators, denominator, total):
    with pytest.raises(RoundingError):
        largest_remainder(numerators, denominator, total)


def test_truncated_fine_scale_parts_still_round_to_the_total():
    # three thirds of 100 truncated at a 10**6 scale: 33.333333 x 3 falls short of 100
    scale = 10**6
    parts = largest_remainder([33_333_333, 33_333_333, 33_333_333], scale, 100)
    assert parts == [34, 33, 33]
