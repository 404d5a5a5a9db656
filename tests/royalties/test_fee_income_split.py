"""The fee income per product always adds up to the allocation's fee total, even when the
per-licence breakdown (rounded on its own) is a unit or two away from it. No database."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from royalties.errors import LedgerError
from royalties.services.cycle_ledger import fee_income_split

products = st.dictionaries(
    st.sampled_from(["ai-training", "rag-eu", "fine-tune", "code"]),
    st.integers(min_value=0, max_value=10**12),
    min_size=1,
)


@given(breakdown=products, drift=st.integers(min_value=-3, max_value=3))
def test_the_split_adds_up_to_the_total_and_stays_within_a_unit_per_licence(breakdown, drift):
    total = max(sum(breakdown.values()) + drift, 0)
    licences = max(abs(drift), 1) + len(breakdown)
    split = fee_income_split(breakdown, total, licences=licences)
    assert sum(split.values()) == total
    assert set(split) == set(breakdown)
    assert all(value >= 0 for value in split.values())
    for product, amount in split.items():
        assert abs(amount - breakdown[product]) <= abs(drift) + 1


def test_the_case_found_by_the_fault_tests_books():
    # A 10% fee, one licence: the cycle's rounding gave the fee 985,582, the licence
    # breakdown 985,581 (and the holders one unit more); approval refused to book before.
    assert fee_income_split({"ai-training": 985_581}, 985_582, licences=1) == {
        "ai-training": 985_582
    }


def test_a_difference_rounding_cannot_explain_is_refused():
    with pytest.raises(LedgerError):
        fee_income_split({"ai-training": 1_000}, 1_010, licences=2)
