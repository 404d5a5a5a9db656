"""Property tests of the allocation engine against an exact rational reference.

Per random cycle: conservation to the minor unit, no negative amounts, every bucket (holder,
fee, suspense) within one minor unit of its exact `Fraction` amount, statement lines summing
to each holder's earnings, independence from input row order, determinism; and over several
cycles carried forward, no money created or lost and no drift beyond the per-cycle bound.

"Within one minor unit" is checked as `|rounded − exact| ≤ 1 + 10⁻⁵`: the engine rounds its
fixed-point amounts (scale 10⁹) by largest remainder, which lands within one unit of them, and
those amounts differ from the exact rationals by a few sub-units (10⁻⁹ each) of truncation.
Pro-rata releases are split by the holders' *scaled* earnings (as specified), whose proportions
differ from the exact ones by about (sub-units of truncation) / (scaled earnings): holders get
that much more slack, `release × 1000 / (S × Σ earnings)`, negligible unless the cycle's
earnings are a tiny fraction of a minor unit (then a holder whose 9 ppm share truncates to 0
sub-units rightly gets none of the release, while the exact reference gives it a share).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from fractions import Fraction

import duckdb
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from royalties.engine import allocate as engine
from royalties.engine.allocate import PPM, CycleInputs, CycleResult, PolicyParams, allocate
from tests.engine.examples import examples
from tests.engine.reference import exact_buckets, result_buckets

# One connection for every example (setup is the cost), one thread (tiny inputs).
CON = duckdb.connect(config={"threads": 1})
TOLERANCE = 1 + Fraction(1, 10**5)
MEDIA = ["text", "image", "audio"]
PRODUCTS = ["A", "B"]


def run(inputs: CycleInputs, policy: PolicyParams) -> CycleResult:
    return allocate(inputs, policy, con=CON)


@st.composite
def ppm_split(draw, holders: list[int]) -> list[tuple[int, int]]:
    """Shares of one work: none, a whole work (10⁶ ppm) or a part of one."""
    k = draw(st.integers(0, min(3, len(holders))))
    if k == 0:
        return []
    who = draw(st.permutations(holders))[:k]
    whole = draw(st.booleans())
    top = PPM if whole else draw(st.integers(k, PPM - 1))
    cuts = (
        sorted(draw(st.lists(st.integers(1, top - 1), min_size=k - 1, max_size=k - 1, unique=True)))
        if k > 1 and top > k
        else list(range(1, k))
    )
    bounds = [0, *cuts, top]
    return [(h, bounds[i + 1] - bounds[i]) for i, h in enumerate(who)]


@st.composite
def cycles(draw) -> tuple[CycleInputs, PolicyParams]:
    holder_ids = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6, unique=True))
    work_ids = draw(st.lists(st.integers(1, 60), min_size=1, max_size=12, unique=True))
    works = pd.DataFrame(
        {
            "work_id": pd.Series(work_ids, dtype="int64"),
            "media_type": pd.Series([draw(st.sampled_from(MEDIA)) for _ in work_ids], dtype="str"),
            "disputed": pd.Series([draw(st.integers(0, 9)) == 0 for _ in work_ids], dtype="bool"),
        }
    )
    share_rows = [(w, h, p) for w in work_ids for h, p in draw(ppm_split(holder_ids))]
    shares = pd.DataFrame(
        {
            "work_id": pd.Series([r[0] for r in share_rows], dtype="int64"),
            "holder_id": pd.Series([r[1] for r in share_rows], dtype="int64"),
            "share_ppm": pd.Series([r[2] for r in share_rows], dtype="int64"),
        }
    )
    licence_ids = draw(st.lists(st.integers(1, 500), min_size=1, max_size=6, unique=True))
    licences = pd.DataFrame(
        {
            "licence_id": pd.Series(licence_ids, dtype="int64"),
            "product": pd.Series(
                [draw(st.sampled_from(PRODUCTS)) for _ in licence_ids], dtype="str"
            ),
            "pool_minor": pd.Series(
                [draw(st.one_of(st.integers(0, 10), st.integers(0, 10**6))) for _ in licence_ids],
                dtype="int64",
            ),
            "declared": pd.Series([draw(st.integers(0, 4)) > 0 for _ in licence_ids], dtype="bool"),
        }
    )
    usage_rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(licence_ids),
                st.one_of(st.sampled_from(work_ids), st.none()),
                st.sampled_from(["isrc:A", "isrc:B", "iswc:C"]),
                st.integers(0, 20),
                st.integers(0, 9).map(lambda x: x == 0),
            ),
            max_size=16,
        )
    )
    usage = pd.DataFrame(
        {
            "licence_id": pd.Series([r[0] for r in usage_rows], dtype="int64"),
            "work_id": pd.Series([r[1] for r in usage_rows], dtype="Int64"),
            "ref": pd.Series([r[2] if r[1] is None else "" for r in usage_rows], dtype="str"),
            "quantity": pd.Series([r[3] for r in usage_rows], dtype="int64"),
            "reserved": pd.Series([r[4] for r in usage_rows], dtype="bool"),
        }
    )
    listed = draw(st.lists(st.sampled_from(holder_ids), unique=True))
    holders = pd.DataFrame(
        {
            "holder_id": pd.Series(listed, dtype="int64"),
            "brought_forward_minor": pd.Series(
                [draw(st.integers(0, 500)) for _ in listed], dtype="int64"
            ),
            "threshold_minor": pd.Series(
                [draw(st.integers(0, 300)) for _ in listed], dtype="int64"
            ),
            "ready": pd.Series([draw(st.integers(0, 3)) > 0 for _ in listed], dtype="bool"),
        }
    )
    release_rows = draw(
        st.lists(
            st.tuples(st.integers(1, 5000), st.one_of(st.sampled_from(work_ids), st.none())),
            max_size=3,
        )
    )
    releases = pd.DataFrame(
        {
            "release_id": pd.Series([f"rel-{i}" for i in range(len(release_rows))], dtype="str"),
            "amount_minor": pd.Series([r[0] for r in release_rows], dtype="int64"),
            "work_id": pd.Series([r[1] for r in release_rows], dtype="Int64"),
        }
    )
    bp = st.sampled_from([0, 1, 1500, 3333, 9999, 10000]) | st.integers(0, 10000)
    policy = PolicyParams(
        admin_fee_bp=draw(bp),
        fee_bp_by_product=draw(st.dictionaries(st.sampled_from(PRODUCTS), bp, max_size=1)),
        fee_bp_by_media=draw(st.dictionaries(st.sampled_from(MEDIA), bp, max_size=2)),
        media_weight_bp=draw(
            st.dictionaries(st.sampled_from(MEDIA), st.sampled_from([0, 5000, 20000]))
        ),
        unmatched_weight_bp=draw(st.sampled_from([0, 5000, 10000])),
        threshold_minor=draw(st.sampled_from([0, 0, 100, 1000])),
        fallback=draw(st.sampled_from(["proxy", "proxy", "suspense"])),
    )
    inputs = CycleInputs(
        licences=licences,
        usage=usage,
        works=works,
        shares=shares,
        holders=holders,
        releases=releases,
    )
    return inputs, policy


def shuffled(inputs: CycleInputs, seed: int) -> CycleInputs:
    return CycleInputs(
        **{
            name: frame.sample(frac=1, random_state=seed).reset_index(drop=True)
            for name, frame in vars(inputs).items()
        }
    )


def assert_same(a: CycleResult, b: CycleResult) -> None:
    for name in ("holders", "lines_by_work", "lines_by_source", "suspense", "fees", "licences"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert a.totals == b.totals
    assert a.checksum == b.checksum


def pro_rata_slack(inputs: CycleInputs, policy: PolicyParams, earnings: dict) -> Fraction:
    pro_rata = int(inputs.releases.loc[inputs.releases["work_id"].isna(), "amount_minor"].sum())
    total = sum(earnings.values(), Fraction(0))
    if not pro_rata or not total:
        return Fraction(0)
    return Fraction(pro_rata * 1000, policy.scale) / total


def check_cycle(inputs: CycleInputs, policy: PolicyParams, result: CycleResult) -> None:
    t = result.totals
    pools = int(inputs.licences["pool_minor"].sum())
    releases = int(inputs.releases["amount_minor"].sum())
    # Conservation to the minor unit, in the totals and in the frames.
    assert t["in_minor"] == pools + releases
    assert t["in_minor"] == t["fee_minor"] + t["holders_minor"] + t["suspense_minor"]
    assert int(result.fees["amount_minor"].sum()) == t["fee_minor"]
    assert int(result.holders["earned_minor"].sum()) == t["holders_minor"]
    assert int(result.suspense["amount_minor"].sum()) == t["suspense_minor"]
    # No negative amounts anywhere.
    for frame in (
        result.holders,
        result.lines_by_work,
        result.lines_by_source,
        result.suspense,
        result.fees,
        result.licences,
    ):
        for column in frame.columns:
            if column.endswith("_minor") or column == "quantity":
                assert (frame[column] >= 0).all(), column
    # Every bucket within one minor unit of its exact rational amount.
    earnings: dict[int, Fraction] = {}
    exact = exact_buckets(inputs, policy, earnings)
    got = result_buckets(result)
    holder_tolerance = TOLERANCE + pro_rata_slack(inputs, policy, earnings)
    for key in set(exact) | set(got):
        limit = holder_tolerance if key[0] == "holder" else TOLERANCE
        assert abs(got.get(key, 0) - exact.get(key, 0)) <= limit, (key, got, exact)
    # Statement lines sum to each holder's earnings.
    earned = result.holders.set_index("holder_id")["earned_minor"]
    earned = earned[earned > 0]
    for lines in (result.lines_by_work, result.lines_by_source):
        sums = lines.groupby("holder_id")["amount_minor"].sum()
        assert sums.to_dict() == earned.to_dict()
    # Gross = earned + the holder's attributable fee, never negative, informational only.
    h = result.holders
    assert (h["gross_minor"] - h["deductions_minor"]).equals(h["earned_minor"])
    assert int(h["deductions_minor"].sum()) <= t["fee_minor"] + len(h)
    # Holder totals, thresholds and readiness.
    listed = inputs.holders.set_index("holder_id")
    for h in result.holders.itertuples():
        assert h.total_minor == h.brought_forward_minor + h.earned_minor
        assert h.payable_minor in (0, h.total_minor)
        assert h.carried_forward_minor == h.total_minor - h.payable_minor
        ready = bool(listed.at[h.holder_id, "ready"]) if h.holder_id in listed.index else True
        threshold = max(
            policy.threshold_minor,
            int(listed.at[h.holder_id, "threshold_minor"]) if h.holder_id in listed.index else 0,
        )
        should_pay = ready and h.total_minor >= threshold and h.total_minor > 0
        assert (h.payable_minor > 0) == should_pay
    # The per-licence breakdown adds up to each pool.
    lic = result.licences
    assert (lic["fee_minor"] + lic["holders_minor"] + lic["suspense_minor"]).equals(
        lic["pool_minor"]
    )


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles())
def test_cycle_conserves_money_and_lands_within_one_unit_of_exact(cycle):
    inputs, policy = cycle
    check_cycle(inputs, policy, run(inputs, policy))


@settings(
    max_examples=examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles(), seed=st.integers(0, 2**31 - 1))
def test_input_row_order_changes_nothing_and_runs_repeat_exactly(cycle, seed):
    inputs, policy = cycle
    first = run(inputs, policy)
    assert_same(first, run(shuffled(inputs, seed), policy))
    assert_same(first, run(inputs, policy))


@settings(
    max_examples=examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles(), n=st.integers(2, 4))
def test_cycles_carried_forward_neither_create_nor_lose_money(cycle, n):
    """Run n cycles, each holder's carried-forward balance brought into the next.

    Per holder: what was paid plus what is still carried equals the first balance plus
    everything earned, exactly; the cumulative earnings stay within one unit per cycle of the
    cumulative exact amount (each cycle rounds on its own: see
    test_allocate_cases.test_rounding_drift_is_bounded_per_cycle_not_overall).
    """
    inputs, policy = cycle
    bf0 = dict(
        zip(
            inputs.holders["holder_id"].tolist(),
            inputs.holders["brought_forward_minor"].tolist(),
            strict=True,
        )
    )
    holders = inputs.holders
    paid: dict[int, int] = {}
    earned: dict[int, int] = {}
    exact: dict[int, Fraction] = {}
    earnings: dict[int, Fraction] = {}
    exact_one = exact_buckets(inputs, policy, earnings)
    slack = TOLERANCE + pro_rata_slack(inputs, policy, earnings)
    carried: dict[int, int] = dict(bf0)
    for _ in range(n):
        current = CycleInputs(**{**vars(inputs), "holders": holders})
        result = run(current, policy)
        check_cycle(current, policy, result)
        for h in result.holders.itertuples():
            assert h.brought_forward_minor == carried.get(h.holder_id, 0)
            paid[h.holder_id] = paid.get(h.holder_id, 0) + h.payable_minor
            earned[h.holder_id] = earned.get(h.holder_id, 0) + h.earned_minor
            carried[h.holder_id] = h.carried_forward_minor
        for key, value in exact_one.items():
            if key[0] == "holder":
                exact[key[1]] = exact.get(key[1], Fraction(0)) + value
        # Next cycle: the same usage, each holder's balance carried forward.
        listed = inputs.holders.set_index("holder_id")
        ids = sorted(carried)
        holders = pd.DataFrame(
            {
                "holder_id": pd.Series(ids, dtype="int64"),
                "brought_forward_minor": pd.Series([carried[i] for i in ids], dtype="int64"),
                "threshold_minor": pd.Series(
                    [int(listed.at[i, "threshold_minor"]) if i in listed.index else 0 for i in ids],
                    dtype="int64",
                ),
                "ready": pd.Series(
                    [bool(listed.at[i, "ready"]) if i in listed.index else True for i in ids],
                    dtype="bool",
                ),
            }
        )
    for holder_id in set(paid) | set(bf0):
        assert paid.get(holder_id, 0) + carried.get(holder_id, 0) == bf0.get(
            holder_id, 0
        ) + earned.get(holder_id, 0)
    for holder_id in set(exact) | set(earned):
        drift = abs(earned.get(holder_id, 0) - exact.get(holder_id, Fraction(0)))
        assert drift <= n * slack, (holder_id, drift)


@contextmanager
def priced_in(step: int, threads: int) -> Iterator[None]:
    """The engine's matched rows priced `step` at a time in `threads` threads."""
    saved = engine._PRICE_STEP, engine.ENGINE_THREADS
    engine._PRICE_STEP, engine.ENGINE_THREADS = step, threads
    try:
        yield
    finally:
        engine._PRICE_STEP, engine.ENGINE_THREADS = saved


@settings(
    max_examples=examples(30, most=150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles(), step=st.integers(1, 6))
def test_slices_and_threads_change_nothing(cycle, step):
    """The matched rows priced and split a few at a time, the next slice prepared in a
    second thread while the last is added (`_pipelined`), give every amount exactly as one
    slice in one thread does."""
    inputs, policy = cycle
    with priced_in(10**9, 1):
        whole = run(inputs, policy)
    with priced_in(step, 2):
        assert_same(whole, run(inputs, policy))


@settings(
    max_examples=examples(60, most=300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cycle=cycles())
def test_the_numpy_and_sql_paths_give_the_same_amounts(cycle):
    """The common case runs in numpy (`_matched_rows`), anything else in SQL: licence ids
    given as nullable Int64 take the SQL path (whose pricing sums whole works in dense
    arrays too), and every amount, line and checksum must be the same."""
    inputs, policy = cycle
    nullable = replace(inputs, usage=inputs.usage.astype({"licence_id": "Int64"}))
    assert_same(run(inputs, policy), run(nullable, policy))
