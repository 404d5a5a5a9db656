"""Map and reduce: the allocation fanned out over partitions of the licences equals `allocate`.

For random cycles and random partitions of their licences (the licences of one proxy pool kept
together, with their product's other licences read as donors, as `partition_plan` makes them),
`allocate_reduce` over the `allocate_map` partials gives exactly `allocate`'s frames, totals,
residues and checksum: the partials carry exact integer sums, and integer addition does not
care how the licences were grouped. Half the examples carry random rounding residues in. A
plan that splits a proxy pool, or misses or repeats a licence, raises instead of allocating
something else.
"""

from __future__ import annotations

from fractions import Fraction

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from royalties.engine.allocate import (
    BP,
    AllocationError,
    CycleInputs,
    PolicyParams,
    allocate,
    allocate_map,
    allocate_reduce,
    empty_frame,
    partition_plan,
)
from tests.engine.examples import examples
from tests.engine.reference import exact_buckets
from tests.engine.test_allocate_properties import (
    TOLERANCE,
    assert_same,
    check_cycle,
    cycles,
    pro_rata_slack,
)

CON = duckdb.connect(config={"threads": 1})


def direct_licences(inputs: CycleInputs, policy: PolicyParams) -> set[int]:
    """Licences priced on their own usage: declared, with some usage weight (step 1)."""
    media = dict(zip(inputs.works["work_id"], inputs.works["media_type"], strict=True))
    weight: dict[int, int] = {}
    for row in inputs.usage.itertuples():
        if pd.isna(row.work_id):
            bp = policy.unmatched_weight_bp
        else:
            bp = policy.media_weight_bp.get(media[int(row.work_id)], BP)
        weight[int(row.licence_id)] = weight.get(int(row.licence_id), 0) + int(row.quantity) * bp
    return {
        int(lic.licence_id)
        for lic in inputs.licences.itertuples()
        if lic.declared and weight.get(int(lic.licence_id), 0) > 0
    }


def map_inputs(inputs: CycleInputs, licence_ids: list[int]) -> CycleInputs:
    """What a map task loads for its licences: their rows, and the works and shares used."""
    licences = inputs.licences[inputs.licences["licence_id"].isin(licence_ids)]
    usage = inputs.usage[inputs.usage["licence_id"].isin(licence_ids)]
    used = set(usage["work_id"].dropna().astype(int))
    return CycleInputs(
        licences=licences.reset_index(drop=True),
        usage=usage.reset_index(drop=True),
        works=inputs.works[inputs.works["work_id"].isin(used)].reset_index(drop=True),
        shares=inputs.shares[inputs.shares["work_id"].isin(used)].reset_index(drop=True),
        holders=empty_frame("holders"),
        releases=empty_frame("releases"),
    )


def reduce_inputs(inputs: CycleInputs) -> CycleInputs:
    """What the reduce task loads: every licence, holders, releases and their works' shares."""
    release_works = set(inputs.releases["work_id"].dropna().astype(int))
    return CycleInputs(
        licences=inputs.licences,
        usage=empty_frame("usage"),
        works=empty_frame("works"),
        shares=inputs.shares[inputs.shares["work_id"].isin(release_works)].reset_index(drop=True),
        holders=inputs.holders,
        releases=inputs.releases,
    )


def fanned_out(inputs: CycleInputs, policy: PolicyParams, plan) -> object:
    partials = [
        allocate_map(map_inputs(inputs, priced + donors), policy, donors=donors, con=CON)
        for priced, donors in plan
    ]
    return allocate_reduce(partials, reduce_inputs(inputs), policy, con=CON)


@st.composite
def planned(draw):
    """A cycle, optional carried residues, and a random plan that keeps proxy pools whole."""
    inputs, policy = draw(cycles())
    direct = direct_licences(inputs, policy)
    ids = inputs.licences["licence_id"].tolist()
    frame = pd.DataFrame(
        {
            "licence_id": pd.Series(ids, dtype="int64"),
            "product": inputs.licences["product"].astype(str).tolist(),
            # Unsure is pooled: some direct licences are pooled too (it must not matter).
            "pooled": [i not in direct or draw(st.integers(0, 4)) == 0 for i in ids],
            "cost": [draw(st.integers(1, 5)) for _ in ids],
        }
    )
    plan = partition_plan(frame, draw(st.integers(1, 3)), fallback=policy.fallback)
    if draw(st.booleans()):
        holders = inputs.holders.copy()
        holders["residue_sub"] = pd.Series(
            [draw(st.integers(-(policy.scale - 1), policy.scale - 1)) for _ in range(len(holders))],
            dtype="int64",
        )
        inputs = CycleInputs(**{**vars(inputs), "holders": holders})
    return inputs, policy, plan


@settings(
    max_examples=examples(60, most=300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=planned())
def test_map_reduce_over_any_partition_equals_allocate(case):
    inputs, policy, plan = case
    priced = sorted(i for part, _ in plan for i in part)
    assert priced == sorted(inputs.licences["licence_id"].tolist())  # each licence once
    one = allocate(inputs, policy, con=CON)
    many = fanned_out(inputs, policy, plan)
    assert_same(one, many)
    pd.testing.assert_frame_equal(one.residues, many.residues)
    # Whatever residues the holders carry in, the cycle conserves money and lands every
    # bucket within one unit of its own exact amount; the residue out is the residue in plus
    # the exact amount minus what was paid (up to the truncation of the scaled amounts).
    check_cycle(inputs, policy, one)
    earnings: dict[int, Fraction] = {}
    buckets = exact_buckets(inputs, policy, earnings)
    exact = {key[1]: amount for key, amount in buckets.items() if key[0] == "holder"}
    slack = (TOLERANCE - 1) + pro_rata_slack(inputs, policy, earnings)
    before = (
        dict(zip(inputs.holders["holder_id"], inputs.holders["residue_sub"], strict=True))
        if "residue_sub" in inputs.holders.columns
        else {}
    )
    after = dict(zip(one.residues["holder_id"], one.residues["residue_sub"], strict=True))
    earned = dict(zip(one.holders["holder_id"], one.holders["earned_minor"], strict=True))
    for holder_id in set(exact) | set(before) | set(after) | set(earned):
        carried = Fraction(after.get(holder_id, 0) - before.get(holder_id, 0), policy.scale)
        owed = exact.get(holder_id, Fraction(0))
        assert abs(earned.get(holder_id, 0) + carried - owed) <= slack, holder_id


def _proxied_cycle() -> tuple[CycleInputs, PolicyParams]:
    """Product A: licence 1 declared (usage of work 10), licence 2 undeclared (proxied)."""
    inputs = CycleInputs(
        licences=pd.DataFrame(
            {
                "licence_id": pd.Series([1, 2, 3], dtype="int64"),
                "product": pd.Series(["A", "A", "A"], dtype="str"),
                "pool_minor": pd.Series([1000, 700, 301], dtype="int64"),
                "declared": pd.Series([True, False, False], dtype="bool"),
            }
        ),
        usage=pd.DataFrame(
            {
                "licence_id": pd.Series([1, 1], dtype="int64"),
                "work_id": pd.Series([10, 11], dtype="Int64"),
                "ref": pd.Series(["", ""], dtype="str"),
                "quantity": pd.Series([3, 7], dtype="int64"),
                "reserved": pd.Series([False, False], dtype="bool"),
            }
        ),
        works=pd.DataFrame(
            {
                "work_id": pd.Series([10, 11], dtype="int64"),
                "media_type": pd.Series(["text", "text"], dtype="str"),
                "disputed": pd.Series([False, False], dtype="bool"),
            }
        ),
        shares=pd.DataFrame(
            {
                "work_id": pd.Series([10, 11, 11], dtype="int64"),
                "holder_id": pd.Series([1, 1, 2], dtype="int64"),
                "share_ppm": pd.Series([1_000_000, 333_333, 666_667], dtype="int64"),
            }
        ),
        holders=empty_frame("holders"),
        releases=empty_frame("releases"),
    )
    return inputs, PolicyParams(admin_fee_bp=1500)


def test_partition_plan_keeps_a_products_proxy_pool_whole_with_its_donors():
    inputs, policy = _proxied_cycle()
    frame = inputs.licences[["licence_id", "product"]].assign(pooled=[False, True, True])
    plan = partition_plan(frame, 4)
    assert plan == [([1], []), ([2, 3], [1])]
    assert fanned_out(inputs, policy, plan).checksum == allocate(inputs, policy).checksum


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ([([1], []), ([2], [1]), ([3], [1])], "proxy pool of product A is split"),
        ([([1], []), ([2, 3], [])], "lacks the usage of licence 1"),
        ([([1, 2], [])], "licence 3 is missing"),
        ([([1, 2, 3], []), ([3], [1])], "priced by two partials"),
        ([([1, 3], []), ([2], [3])], "donor licence 3 has no usage"),
    ],
)
def test_a_plan_that_breaks_a_pool_or_a_licence_raises(plan, message):
    inputs, policy = _proxied_cycle()
    with pytest.raises(AllocationError, match=message):
        fanned_out(inputs, policy, plan)
