"""Behaviour of the allocation engine on small hand-made cycles, to the minor unit."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from royalties.engine.allocate import (
    AllocationError,
    CycleInputs,
    PolicyParams,
    allocate,
    empty_frame,
    empty_inputs,
)

CON = duckdb.connect(config={"threads": 1})
POLICY = PolicyParams(admin_fee_bp=1500)


def frame(name: str, rows: list[dict]) -> pd.DataFrame:
    empty = empty_frame(name)
    if not rows:
        return empty
    return pd.DataFrame(rows).astype(empty.dtypes.to_dict())


def cycle(**frames: list[dict]) -> CycleInputs:
    return empty_inputs(**{name: frame(name, rows) for name, rows in frames.items()})


def lic(licence_id: int, pool: int, product: str = "P", declared: bool = True) -> dict:
    return {"licence_id": licence_id, "product": product, "pool_minor": pool, "declared": declared}


def use(
    licence_id: int, work_id: int | None, quantity: int, *, ref: str = "", reserved: bool = False
) -> dict:
    return {
        "licence_id": licence_id,
        "work_id": work_id,
        "ref": ref,
        "quantity": quantity,
        "reserved": reserved,
    }


def work(work_id: int, media: str = "text", disputed: bool = False) -> dict:
    return {"work_id": work_id, "media_type": media, "disputed": disputed}


def share(work_id: int, holder_id: int, ppm: int) -> dict:
    return {"work_id": work_id, "holder_id": holder_id, "share_ppm": ppm}


def earned(result) -> dict[int, int]:
    return dict(zip(result.holders["holder_id"], result.holders["earned_minor"], strict=True))


def suspense(result) -> dict[tuple[str, str], int]:
    return {(r.reason, r.ref): r.amount_minor for r in result.suspense.itertuples()}


def fees(result) -> dict[str, int]:
    return dict(zip(result.fees["product"], result.fees["amount_minor"], strict=True))


def test_empty_cycle_allocates_nothing():
    result = allocate(empty_inputs(), POLICY)
    assert result.totals == dict.fromkeys(
        [
            "pool_minor",
            "releases_minor",
            "in_minor",
            "fee_minor",
            "holders_minor",
            "suspense_minor",
            "payable_minor",
            "carried_forward_minor",
        ],
        0,
    )
    assert list(result.lines_by_source.columns) == [
        "holder_id",
        "product",
        "release_id",
        "amount_minor",
    ]
    assert list(result.holders.columns) == [
        "holder_id",
        "brought_forward_minor",
        "earned_minor",
        "total_minor",
        "payable_minor",
        "carried_forward_minor",
        "gross_minor",
        "deductions_minor",
    ]
    assert result.holders.empty and result.suspense.empty


def test_media_fee_beats_product_fee_which_beats_the_default():
    policy = PolicyParams(
        admin_fee_bp=1500, fee_bp_by_product={"Q": 1000}, fee_bp_by_media={"image": 2000}
    )
    inputs = cycle(
        licences=[lic(1, 1000, "P"), lic(2, 1000, "Q")],
        usage=[use(1, 10, 1), use(1, 11, 1), use(2, 10, 1), use(2, 11, 1)],
        works=[work(10, "image"), work(11, "text")],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000)],
    )
    result = allocate(inputs, policy, con=CON)
    # Each licence: 500 per work. Image work: 20 % fee either way; text work: 15 % under P,
    # 10 % under Q.
    assert fees(result) == {"P": 100 + 75, "Q": 100 + 50}
    assert earned(result) == {1: 400 + 400, 2: 425 + 450}


def test_media_weight_scales_usage():
    policy = PolicyParams(admin_fee_bp=0, media_weight_bp={"video": 30000, "image": 0})
    inputs = cycle(
        licences=[lic(1, 800)],
        usage=[use(1, 10, 1), use(1, 11, 1), use(1, 12, 5)],
        works=[work(10, "video"), work(11, "text"), work(12, "image")],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000), share(12, 3, 1_000_000)],
    )
    result = allocate(inputs, policy, con=CON)
    # Weights 3 : 1 : 0 of a pool of 800.
    assert earned(result) == {1: 600, 2: 200}


def test_undeclared_licence_takes_the_usage_of_declared_licences_of_its_product():
    inputs = cycle(
        licences=[lic(1, 100), lic(2, 100), lic(3, 900, declared=False), lic(4, 50, "Other")],
        usage=[use(1, 10, 3), use(2, 11, 1), use(3, 11, 99), use(4, 10, 0)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    # Licence 3 ignores its own rows and takes 3 : 1 from licences 1 and 2. Licence 4 is a
    # nil declaration with no declared licence of its product: its pool waits in suspense.
    assert earned(result) == {1: 100 + 675, 2: 100 + 225}
    assert suspense(result) == {("no_usage", "4"): 50}
    by_work = result.lines_by_work.set_index(["holder_id", "work_id"])["quantity"].to_dict()
    assert by_work == {(1, 10): 3 + 3, (2, 11): 1 + 1}


def test_nil_declaration_is_proxied_too():
    inputs = cycle(
        licences=[lic(1, 100), lic(2, 60)],
        usage=[use(1, 10, 1), use(2, 10, 0)],
        works=[work(10)],
        shares=[share(10, 7, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    assert earned(result) == {7: 160}


def test_suspense_fallback_holds_undeclared_and_nil_licences_whole():
    inputs = cycle(
        licences=[lic(1, 100), lic(2, 60, declared=False), lic(3, 40), lic(4, 7, "Q")],
        usage=[use(1, 10, 1), use(2, 10, 5), use(3, 10, 0)],
        works=[work(10)],
        shares=[share(10, 7, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=1000, fallback="suspense"), con=CON)
    # Licence 2 is undeclared (its own rows are ignored), 3 and 4 declared nothing: each
    # whole pool, fee included, waits in suspense under its licence id.
    assert suspense(result) == {("no_usage", "2"): 60, ("no_usage", "3"): 40, ("no_usage", "4"): 7}
    assert earned(result) == {7: 90}
    assert fees(result) == {"P": 10}
    lic_ = result.licences.set_index("licence_id")
    assert lic_.loc[2].tolist() == [60, 0, 0, 60]
    # The proxy fallback (the default) spreads the same pools over licence 1's usage.
    proxied = allocate(inputs, PolicyParams(admin_fee_bp=1000), con=CON)
    assert suspense(proxied) == {("no_usage", "4"): 7}
    assert earned(proxied) == {7: 180}


def test_unknown_fallback_raises():
    with pytest.raises(AllocationError, match="fallback"):
        allocate(empty_inputs(), PolicyParams(admin_fee_bp=0, fallback="drop"))


def test_identifier_held_by_a_reservation_goes_to_reserved_suspense():
    inputs = cycle(
        licences=[lic(1, 1000), lic(2, 500, declared=False)],
        usage=[
            use(1, None, 1, ref="isrc:R", reserved=True),
            use(1, None, 1, ref="isrc:U"),
            use(1, 10, 2),
        ],
        works=[work(10)],
        shares=[share(10, 1, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    # The reserved identifier counts in the weight (1 of 4) but is held, not unmatched; the
    # proxied licence 2 follows the same profile.
    assert suspense(result) == {("reserved", "isrc:R"): 375, ("unmatched", "isrc:U"): 375}
    assert earned(result) == {1: 750}


def test_deductions_are_the_fee_attributable_to_each_holder():
    inputs = cycle(
        licences=[lic(1, 1000), lic(2, 333, declared=False)],
        usage=[use(1, 10, 1), use(1, 11, 2)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 1, 250_000), share(11, 2, 750_000)],
        holders=[{"holder_id": 3, "brought_forward_minor": 5, "threshold_minor": 0, "ready": True}],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=1000), con=CON)
    h = result.holders.set_index("holder_id")
    # Pools 1000 and 333 split 1 : 2 -> work 10 gets 444.333.., work 11 888.666..; fee 10 %.
    # Holder 1: 44.4333 + 25 % of 88.8666 = 66.65 -> 66; holder 2: 75 % of 88.8666 = 66.65.
    assert h["deductions_minor"].to_dict() == {1: 66, 2: 66, 3: 0}
    assert (h["gross_minor"] - h["deductions_minor"]).equals(h["earned_minor"])
    assert h["earned_minor"].to_dict() == {1: 600, 2: 600, 3: 0}
    assert (h["deductions_minor"] >= 0).all()


def test_proxied_licences_of_a_product_share_one_pool():
    inputs = cycle(
        licences=[
            lic(1, 100),
            lic(2, 10, declared=False),
            lic(3, 7, declared=False),
            lic(4, 0, declared=False),
        ],
        usage=[use(1, 10, 1), use(1, 11, 2), use(1, None, 3, ref="isrc:Z")],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=1500), con=CON)
    # Licences 2-4 share one pool of 17 over licence 1's usage (1 : 2 : 3): with licence
    # 1's 100, work 10 gets 117 / 6 = 19.5 (net 16.575), work 11 39 (33.15), isrc:Z 58.5
    # (49.725), fee 17.55; two units missing go to the largest remainders (.725, .575).
    assert earned(result) == {1: 17, 2: 33}
    assert suspense(result) == {("unmatched", "isrc:Z"): 50}
    assert fees(result) == {"P": 17}
    lic_ = result.licences.set_index("licence_id")
    assert (lic_["fee_minor"] + lic_["holders_minor"] + lic_["suspense_minor"]).equals(
        lic_["pool_minor"]
    )
    # Licence 2: 10 -> fee 1.5, holders 4.25, suspense 4.25; licence 3: 7 -> fee 1.05,
    # holders 2.975, suspense 2.975 (tie: holders first, then suspense).
    assert lic_.loc[2].tolist() == [10, 2, 4, 4]
    assert lic_.loc[3].tolist() == [7, 1, 3, 3]
    assert lic_.loc[4].tolist() == [0, 0, 0, 0]
    # Each proxied licence still counts the donor quantity on the statement lines.
    by_work = result.lines_by_work.set_index(["holder_id", "work_id"])["quantity"].to_dict()
    assert by_work == {(1, 10): 1 + 3 * 1, (2, 11): 2 + 3 * 2}


def test_unmatched_reserved_disputed_and_unassigned_money_goes_to_suspense():
    inputs = cycle(
        licences=[lic(1, 1000)],
        usage=[
            use(1, None, 1, ref="isrc:X"),
            use(1, 10, 1, reserved=True),
            use(1, 11, 1),
            use(1, 12, 1),
            use(1, 13, 1),
        ],
        works=[work(10), work(11, disputed=True), work(12), work(13)],
        shares=[share(10, 1, 1_000_000), share(11, 1, 1_000_000), share(13, 2, 600_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    assert suspense(result) == {
        ("unmatched", "isrc:X"): 200,
        ("reserved", "10"): 200,
        ("disputed", "11"): 200,
        ("unassigned_share", "12"): 200,
        ("unassigned_share", "13"): 80,
    }
    assert earned(result) == {2: 120}


def test_whole_work_dust_goes_to_the_largest_share():
    inputs = cycle(
        licences=[lic(1, 1)],
        usage=[use(1, 10, 1)],
        works=[work(10)],
        shares=[share(10, 5, 333_333), share(10, 3, 333_333), share(10, 9, 333_334)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    # One unit over three holders: the largest exact remainder (holder 9) gets it.
    assert earned(result) == {9: 1}
    assert result.suspense.empty


def test_threshold_and_missing_payout_account_carry_the_balance_forward():
    inputs = cycle(
        licences=[lic(1, 300)],
        usage=[use(1, 10, 1), use(1, 11, 1), use(1, 12, 1)],
        works=[work(10), work(11), work(12)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000), share(12, 3, 1_000_000)],
        holders=[
            {"holder_id": 1, "brought_forward_minor": 0, "threshold_minor": 0, "ready": False},
            {
                "holder_id": 2,
                "brought_forward_minor": 20,
                "threshold_minor": 150,
                "ready": True,
            },
            {"holder_id": 4, "brought_forward_minor": 7, "threshold_minor": 0, "ready": True},
        ],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0, threshold_minor=110), con=CON)
    h = result.holders.set_index("holder_id").iloc[:, :5]
    assert h.loc[1].tolist() == [0, 100, 100, 0, 100]  # not ready: carried
    assert h.loc[2].tolist() == [20, 100, 120, 0, 120]  # under its own threshold of 150
    assert h.loc[3].tolist() == [0, 100, 100, 0, 100]  # under the society's 110
    assert h.loc[4].tolist() == [7, 0, 7, 0, 7]  # a balance only, under 110
    assert result.totals["payable_minor"] == 0
    assert result.totals["carried_forward_minor"] == 327


def test_pro_rata_release_follows_this_cycles_earnings():
    inputs = cycle(
        licences=[lic(1, 400)],
        usage=[use(1, 10, 3), use(1, 11, 1)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000)],
        releases=[
            {"release_id": "R1", "amount_minor": 100, "work_id": None},
            {"release_id": "R2", "amount_minor": 10, "work_id": 11},
        ],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0), con=CON)
    assert earned(result) == {1: 300 + 75, 2: 100 + 25 + 10}
    src = result.lines_by_source
    assert src[src["release_id"] == "R1"].set_index("holder_id")["amount_minor"].to_dict() == {
        1: 75,
        2: 25,
    }
    assert src["product"].tolist() == ["P", "", "P", "", ""]
    assert src["release_id"].tolist() == ["", "R1", "", "R1", "R2"]
    by_work = result.lines_by_work
    assert by_work[by_work["holder_id"] == 2]["amount_minor"].tolist() == [110, 25]
    assert by_work["work_id"].isna().sum() == 2


def test_release_with_nobody_earning_is_undistributable():
    inputs = cycle(releases=[{"release_id": "R9", "amount_minor": 55, "work_id": None}])
    result = allocate(inputs, POLICY, con=CON)
    assert suspense(result) == {("undistributable", "R9"): 55}
    assert result.totals["in_minor"] == 55


def test_licence_breakdown_rounds_inside_each_pool():
    inputs = cycle(
        licences=[lic(1, 10), lic(2, 7, declared=False), lic(3, 5, "Lonely", declared=False)],
        usage=[use(1, 10, 1), use(1, 11, 2)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 500_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=1500), con=CON)
    lic_ = result.licences.set_index("licence_id")
    assert (lic_.sum(axis=1) - 2 * lic_["pool_minor"]).tolist() == [0, 0, 0]
    assert lic_.loc[3].tolist() == [5, 0, 0, 5]


def test_rounding_drift_is_bounded_per_cycle_not_overall():
    """Each cycle rounds on its own, so tiny equal shares always lose the same tie.

    One unit over three equal holders, every cycle: the smallest holder_id wins each time.
    After three cycles holder 1 has 3 where its exact share is 1 (2 units of drift, one per
    cycle after the first) when nothing is carried between cycles. Carrying each holder's
    rounding residue (`holders.residue_sub`) makes them take turns instead:
    test_allocate_residues.test_equal_shares_take_turns_instead_of_the_smallest_id_winning_every_cycle.
    """
    inputs = cycle(
        licences=[lic(1, 1)],
        usage=[use(1, 10, 1), use(1, 11, 1), use(1, 12, 1)],
        works=[work(10), work(11), work(12)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000), share(12, 3, 1_000_000)],
    )
    totals = {1: 0, 2: 0, 3: 0}
    for _ in range(3):
        for holder_id, amount in earned(allocate(inputs, PolicyParams(admin_fee_bp=0))).items():
            totals[holder_id] += amount
    assert totals == {1: 3, 2: 0, 3: 0}


def test_overflow_raises_instead_of_wrapping():
    inputs = cycle(
        licences=[lic(1, 2**62)],
        usage=[use(1, 10, 2**40)],
        works=[work(10)],
        shares=[share(10, 1, 1_000_000)],
    )
    with pytest.raises(AllocationError, match="out of range"):
        allocate(inputs, PolicyParams(admin_fee_bp=0, scale=10**18), con=CON)


def test_large_pools_switch_to_128_bit_amounts():
    pool = 10**12  # × scale 10⁹ is past 64 bits
    inputs = cycle(
        licences=[lic(1, pool)],
        usage=[use(1, 10, 1), use(1, 11, 2)],
        works=[work(10), work(11)],
        shares=[share(10, 1, 1_000_000), share(11, 2, 1_000_000)],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=1500), con=CON)
    assert earned(result) == {1: 283_333_333_333, 2: 566_666_666_667}
    assert result.totals["fee_minor"] == 150_000_000_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"licences": [lic(1, -1)]}, "negative pool_minor"),
        ({"licences": [lic(1, 1), lic(1, 2)]}, "duplicate licence_id"),
        (
            {"licences": [lic(1, 1)], "usage": [use(1, 10, -1)], "works": [work(10)]},
            "negative quantity",
        ),
        ({"licences": [lic(1, 1)], "usage": [use(1, 99, 1)]}, "work 99, which is not in works"),
        (
            {"licences": [lic(1, 1)], "usage": [use(2, None, 1, ref="x:1")]},
            "not in licences",
        ),
        ({"licences": [lic(1, 1)], "usage": [use(1, None, 1)]}, "without a ref"),
        ({"shares": [share(10, 1, 600_000), share(10, 2, 400_001)]}, "over 1000000"),
        ({"shares": [share(10, 1, 0)]}, "outside 1..1000000"),
        ({"shares": [share(10, 1, 1), share(10, 1, 2)]}, "names a holder twice"),
        ({"works": [work(10), work(10)]}, "duplicate work_id"),
        (
            {
                "holders": [
                    {
                        "holder_id": 1,
                        "brought_forward_minor": -5,
                        "threshold_minor": 0,
                        "ready": True,
                    }
                ]
            },
            "negative brought_forward_minor",
        ),
        (
            {"releases": [{"release_id": "R", "amount_minor": 0, "work_id": None}]},
            "non-positive amount_minor",
        ),
        (
            {"releases": [{"release_id": "R", "amount_minor": 1, "work_id": None}] * 2},
            "duplicate release_id",
        ),
    ],
)
def test_invalid_input_raises_allocation_error(change, message):
    with pytest.raises(AllocationError, match=message):
        allocate(cycle(**change), POLICY, con=CON)


def test_invalid_policy_and_missing_columns_raise_allocation_error():
    with pytest.raises(AllocationError, match="admin_fee_bp"):
        allocate(empty_inputs(), PolicyParams(admin_fee_bp=10_001))
    with pytest.raises(AllocationError, match="scale"):
        allocate(empty_inputs(), PolicyParams(admin_fee_bp=0, scale=0))
    broken = empty_inputs(licences=pd.DataFrame({"licence_id": [1]}))
    with pytest.raises(AllocationError, match="licences lacks column"):
        allocate(broken, POLICY)
    assert issubclass(AllocationError, ArithmeticError)


def test_pro_rata_release_follows_scaled_earnings_even_when_they_are_tiny():
    """Found by hypothesis: a 9 ppm share of 0.0001 minor units truncates to 0 sub-units.

    Licence earnings here are 0.0001 minor units (a 99.99 % fee on a pool of 1); holder 1's
    9 ppm of that is below one sub-unit at scale 10⁹, so by its scaled earnings (the
    specified basis) it gets none of the pro-rata release, and holder 2 gets all of it.
    """
    inputs = cycle(
        licences=[lic(1, 1)],
        usage=[use(1, 7, 1)],
        works=[work(7, "image")],
        shares=[share(7, 1, 9), share(7, 2, 167)],
        releases=[{"release_id": "R", "amount_minor": 20, "work_id": None}],
    )
    result = allocate(inputs, PolicyParams(admin_fee_bp=0, fee_bp_by_media={"image": 9999}))
    assert earned(result) == {2: 20}
    assert fees(result) == {"P": 1}
