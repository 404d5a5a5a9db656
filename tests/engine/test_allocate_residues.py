"""Rounding residues carried between cycles: no cumulative drift over repeated cycles.

Each cycle rounds once (every bucket to the floor or the ceiling of its exact amount, the parts
summing exactly to what came in). A holder's residue — its exact scaled amounts so far minus
what it was given, in sub-units — goes into the next cycle (`holders.residue_sub`) and counts
with the holder's remainder in the largest-remainder order, so a holder rounded down ranks
ahead by exactly what it is owed. Over repeated cycles, against the exact `Fraction` amounts of
`tests.engine.reference`:

- every cycle still conserves money to the minor unit and lands every bucket within one unit
  of its exact amount (`check_cycle` of the single-cycle properties);
- the residue is exact bookkeeping: Σ earned + residue / scale = Σ exact amounts, up to the
  sub-unit truncation of the scaled amounts (a few 10⁻⁹ of a unit per cycle);
- no drift: |Σ earned − Σ exact| ≤ 1 unit per holder however many cycles ran, where rounding
  each cycle on its own drifts by up to one unit per cycle.
"""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from royalties.engine.allocate import CycleInputs, PolicyParams, allocate
from tests.engine.examples import examples
from tests.engine.reference import exact_buckets
from tests.engine.test_allocate_cases import CON, cycle, lic, share, use, work
from tests.engine.test_allocate_properties import TOLERANCE, check_cycle, cycles, pro_rata_slack


def next_holders(inputs: CycleInputs, result, listed: pd.DataFrame) -> pd.DataFrame:
    """The holders of the next cycle: balances carried forward, residues carried, the same
    thresholds and readiness."""
    carried = dict(
        zip(result.holders["holder_id"], result.holders["carried_forward_minor"], strict=True)
    )
    residue = dict(zip(result.residues["holder_id"], result.residues["residue_sub"], strict=True))
    ids = sorted(set(carried) | set(residue) | set(listed.index))
    return pd.DataFrame(
        {
            "holder_id": pd.Series(ids, dtype="int64"),
            "brought_forward_minor": pd.Series([carried.get(i, 0) for i in ids], dtype="int64"),
            "threshold_minor": pd.Series(
                [int(listed.at[i, "threshold_minor"]) if i in listed.index else 0 for i in ids],
                dtype="int64",
            ),
            "ready": pd.Series(
                [bool(listed.at[i, "ready"]) if i in listed.index else True for i in ids],
                dtype="bool",
            ),
            "residue_sub": pd.Series([residue.get(i, 0) for i in ids], dtype="int64"),
        }
    )


@settings(
    max_examples=examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles(), n=st.integers(2, 4))
def test_repeated_cycles_carry_residues_and_never_drift_past_one_unit(cycle, n):
    inputs, policy = cycle
    listed = inputs.holders.set_index("holder_id")
    earnings: dict[int, Fraction] = {}
    buckets = exact_buckets(inputs, policy, earnings)
    exact = {key[1]: amount for key, amount in buckets.items() if key[0] == "holder"}
    # What the scaled amounts may lose to truncation per cycle (and pro-rata releases split by
    # scaled earnings, see the single-cycle properties), far below a unit.
    slack = (TOLERANCE - 1) + pro_rata_slack(inputs, policy, earnings)
    holders = inputs.holders.assign(residue_sub=pd.Series([0] * len(inputs.holders), dtype="int64"))
    earned: dict[int, int] = {}
    for done in range(1, n + 1):
        current = CycleInputs(**{**vars(inputs), "holders": holders})
        result = allocate(current, policy, con=CON)
        check_cycle(current, policy, result)
        for h in result.holders.itertuples():
            earned[h.holder_id] = earned.get(h.holder_id, 0) + h.earned_minor
        residue = dict(
            zip(result.residues["holder_id"], result.residues["residue_sub"], strict=True)
        )
        for holder_id in set(exact) | set(earned) | set(residue):
            owed = done * exact.get(holder_id, Fraction(0))
            got = earned.get(holder_id, 0)
            # The residue is what the holder is still owed (or was given ahead), exactly.
            carried = Fraction(residue.get(holder_id, 0), policy.scale)
            assert abs(got + carried - owed) <= done * slack, (holder_id, done)
            # No drift: within one unit of the exact total, whatever the number of cycles.
            assert abs(got - owed) <= 1 + done * slack, (holder_id, done, got, owed)
        holders = next_holders(current, result, listed)


def test_equal_shares_take_turns_instead_of_the_smallest_id_winning_every_cycle():
    """One unit over three equal holders per cycle. Rounding each cycle on its own gives it to
    holder 1 three times (tests/engine/test_allocate_cases.py); with residues carried, each
    holder gets it once in three cycles, and the cycle conserves money every time."""
    inputs = cycle(
        licences=[lic(1, 1)],
        usage=[use(1, 10, 1), use(1, 11, 1), use(1, 12, 1)],
        works=[work(10), work(11), work(12)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000), share(12, 3, 1_000_000)],
    )
    policy = PolicyParams(admin_fee_bp=0)
    listed = inputs.holders.set_index("holder_id")
    holders = inputs.holders.assign(residue_sub=pd.Series([], dtype="int64"))
    per_cycle = []
    for _ in range(3):
        current = CycleInputs(**{**vars(inputs), "holders": holders})
        result = allocate(current, policy, con=CON)
        per_cycle.append(
            dict(zip(result.holders["holder_id"], result.holders["earned_minor"], strict=True))
        )
        holders = next_holders(current, result, listed)
    assert per_cycle == [{1: 1}, {2: 1}, {3: 1}]
    # Each was owed 3 × 333,333,333 sub-units (a third of 10⁹, truncated) and got 10⁹.
    assert holders.set_index("holder_id")["residue_sub"].to_dict() == {1: -1, 2: -1, 3: -1}


def test_without_residues_the_rounding_is_unchanged():
    """A residue column of zeros changes nothing (the golden cycles have none at all)."""
    inputs = cycle(
        licences=[lic(1, 1000), lic(2, 333, product="Q")],
        usage=[use(1, 10, 3), use(1, 11, 7), use(2, 11, 5)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 333_333), share(11, 3, 666_667)],
    )
    policy = PolicyParams(admin_fee_bp=1500)
    plain = allocate(inputs, policy, con=CON)
    zeros = inputs.holders.assign(residue_sub=pd.Series([], dtype="int64"))
    with_zeros = allocate(CycleInputs(**{**vars(inputs), "holders": zeros}), policy, con=CON)
    assert with_zeros.checksum == plain.checksum
    pd.testing.assert_frame_equal(with_zeros.holders, plain.holders)
    pd.testing.assert_frame_equal(with_zeros.residues, plain.residues)


def test_a_holder_rounded_up_by_its_residue_gets_the_unit_on_a_statement_line():
    """Holder 1 earns exactly 2 units (no remainder) but carries 0.9 of a unit it is owed;
    holders 2 and 3 earn half a unit each. The one unit left goes to holder 1 (0 + 0.9 ranks
    ahead of 0.5), and its statement lines still add up to its 3 units: the unit lands on a
    line even though every line of holder 1 is a whole number of units."""
    inputs = cycle(
        licences=[lic(1, 3)],
        usage=[use(1, 10, 2), use(1, 11, 1)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 500_000), share(11, 3, 500_000)],
    )
    policy = PolicyParams(admin_fee_bp=0)
    owed = policy.scale * 9 // 10
    holders = pd.DataFrame(
        {
            "holder_id": pd.Series([1], dtype="int64"),
            "brought_forward_minor": pd.Series([0], dtype="int64"),
            "threshold_minor": pd.Series([0], dtype="int64"),
            "ready": pd.Series([True], dtype="bool"),
            "residue_sub": pd.Series([owed], dtype="int64"),
        }
    )
    current = CycleInputs(**{**vars(inputs), "holders": holders})
    result = allocate(current, policy, con=CON)
    got = dict(zip(result.holders["holder_id"], result.holders["earned_minor"], strict=True))
    assert {holder: units for holder, units in got.items() if units} == {1: 3}
    lines = result.lines_by_work[result.lines_by_work["holder_id"] == 1]
    assert lines["amount_minor"].tolist() == [3]
    # It was owed 2 + 0.9 and got 3: it now carries 0.1 of a unit given ahead.
    residues = dict(zip(result.residues["holder_id"], result.residues["residue_sub"], strict=True))
    assert residues[1] == owed - policy.scale
    check_cycle(current, policy, result)
