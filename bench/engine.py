"""Benchmark the allocation engine on a generated cycle at society scale.

    .venv/bin/python bench/engine.py                      # 300 licences, 5M usage rows, ...
    .venv/bin/python bench/engine.py --rows 500000 --works 100000 --holders 20000
    .venv/bin/python bench/engine.py --inputs /tmp/inputs.pkl   # bench/cycle.py --dump-inputs

Inputs are generated deterministically from `--seed` with numpy: Zipf-like work popularity,
1-3 holders per work (a few works partly or not at all assigned), a few undeclared licences
(proxied), unmatched, reserved and disputed usage, brought-forward balances, releases. Prints
seconds per stage, rows per second, peak RSS and the totals identity.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from royalties.engine.allocate import CycleInputs, PolicyParams, allocate

MEDIA = np.array(["text", "image", "audio", "video"])


def rss_mb() -> float:
    """Current resident set size (MB), from /proc when there is one."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(
    *,
    works: int,
    holders: int,
    licences: int,
    rows: int,
    seed: int,
    undeclared: float = 0.01,
    fallback: str = "proxy",
) -> tuple[CycleInputs, PolicyParams]:
    rng = np.random.default_rng(seed)
    products = np.array([f"P{i}" for i in range(10)])

    work_ids = np.arange(1, works + 1, dtype="int64")
    works_df = pd.DataFrame(
        {
            "work_id": work_ids,
            "media_type": pd.Series(MEDIA[rng.integers(0, len(MEDIA), works)], dtype="str"),
            "disputed": rng.random(works) < 0.005,
        }
    )

    # 1-3 holders per work (85/10/5 %), 1 % of works with no shares, 2 % only partly assigned.
    n_holders = rng.choice([0, 1, 2, 3], size=works, p=[0.01, 0.84, 0.10, 0.05])
    share_work = np.repeat(work_ids, n_holders)
    position = np.arange(len(share_work)) - np.repeat(np.cumsum(n_holders) - n_holders, n_holders)
    first = rng.integers(1, holders + 1, works)
    share_holder = (np.repeat(first, n_holders) - 1 + position * 7919) % holders + 1
    split = rng.integers(100_000, 600_000, works)  # the first holder's share of a 2-3 way split
    whole = np.where(rng.random(works) < 0.02, 800_000, 1_000_000)
    ppm = np.where(
        position == 0,
        np.where(np.repeat(n_holders, n_holders) == 1, np.repeat(whole, n_holders), 0),
        0,
    )
    n_rep = np.repeat(n_holders, n_holders)
    split_rep = np.repeat(split, n_holders)
    whole_rep = np.repeat(whole, n_holders)
    ppm = np.where(n_rep == 1, whole_rep, ppm)
    ppm = np.where((n_rep == 2) & (position == 0), split_rep, ppm)
    ppm = np.where((n_rep == 2) & (position == 1), whole_rep - split_rep, ppm)
    third = (whole_rep - split_rep) // 2
    ppm = np.where((n_rep == 3) & (position == 0), split_rep, ppm)
    ppm = np.where((n_rep == 3) & (position == 1), third, ppm)
    ppm = np.where((n_rep == 3) & (position == 2), whole_rep - split_rep - third, ppm)
    shares_df = pd.DataFrame(
        {"work_id": share_work, "holder_id": share_holder.astype("int64"), "share_ppm": ppm}
    )

    licence_ids = np.arange(1, licences + 1, dtype="int64")
    licences_df = pd.DataFrame(
        {
            "licence_id": licence_ids,
            "product": pd.Series(products[licence_ids % len(products)], dtype="str"),
            "pool_minor": rng.integers(100_000, 10_000_000, licences).astype("int64"),
            "declared": rng.random(licences) >= undeclared,
        }
    )

    # Zipf-like popularity: rank = works × U³ (density ∝ rank^-2/3), ranks shuffled onto ids.
    popularity = rng.permutation(work_ids)
    rank = np.minimum((works * rng.random(rows) ** 3).astype("int64"), works - 1)
    usage_work = popularity[rank]
    unmatched = rng.random(rows) < 0.05
    refs = np.full(rows, "", dtype=object)
    refs[unmatched] = [f"isrc:X{i}" for i in rng.integers(0, 200_000, int(unmatched.sum()))]
    usage_df = pd.DataFrame(
        {
            "licence_id": rng.integers(1, licences + 1, rows).astype("int64"),
            "work_id": pd.arrays.IntegerArray(usage_work, unmatched),
            "ref": pd.Series(refs, dtype="str"),
            "quantity": rng.integers(1, 50, rows).astype("int64"),
            "reserved": rng.random(rows) < 0.002,
        }
    )
    del refs

    holder_ids = np.arange(1, holders + 1, dtype="int64")
    holders_df = pd.DataFrame(
        {
            "holder_id": holder_ids,
            "brought_forward_minor": np.where(
                rng.random(holders) < 0.1, rng.integers(1, 5_000, holders), 0
            ).astype("int64"),
            "threshold_minor": np.where(rng.random(holders) < 0.05, 10_000, 0).astype("int64"),
            "ready": rng.random(holders) >= 0.05,
        }
    )
    releases_df = pd.DataFrame(
        {
            "release_id": pd.Series([f"R{i}" for i in range(22)], dtype="str"),
            "amount_minor": rng.integers(1_000, 1_000_000, 22).astype("int64"),
            "work_id": pd.array(
                [*rng.choice(work_ids, 20, replace=False).tolist(), None, None], dtype="Int64"
            ),
        }
    )
    policy = PolicyParams(
        admin_fee_bp=1500,
        fee_bp_by_product={"P3": 1000},
        fee_bp_by_media={"video": 2000},
        media_weight_bp={"image": 5000, "video": 20000},
        unmatched_weight_bp=10000,
        threshold_minor=2_500,
        fallback=fallback,
    )
    inputs = CycleInputs(
        licences=licences_df,
        usage=usage_df,
        works=works_df,
        shares=shares_df,
        holders=holders_df,
        releases=releases_df,
    )
    return inputs, policy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--holders", type=int, default=200_000)
    parser.add_argument("--licences", type=int, default=300)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=20_260_101)
    parser.add_argument(
        "--undeclared", type=float, default=0.01, help="share of undeclared (proxied) licences"
    )
    parser.add_argument("--fallback", choices=["proxy", "suspense"], default="proxy")
    parser.add_argument("--repeat", type=int, default=1, help="run allocate this many times")
    parser.add_argument(
        "--inputs",
        metavar="PATH",
        help="allocate the pickled (CycleInputs, PolicyParams) of bench/cycle.py --dump-inputs "
        "instead of generating inputs",
    )
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.inputs:
        with open(args.inputs, "rb") as handle:
            inputs, policy = pickle.load(handle)  # our own benchmark's dump
    else:
        inputs, policy = generate(
            works=args.works,
            holders=args.holders,
            licences=args.licences,
            rows=args.rows,
            seed=args.seed,
            undeclared=args.undeclared,
            fallback=args.fallback,
        )
    print(
        f"{'loaded' if args.inputs else 'generated'} in {time.perf_counter() - start:.2f}s: "
        f"{len(inputs.licences):,} licences, "
        f"{len(inputs.usage):,} usage rows, {len(inputs.works):,} works, "
        f"{len(inputs.shares):,} shares, {len(inputs.holders):,} holders, "
        f"{len(inputs.releases):,} releases (cpus: {os.cpu_count()})"
    )
    before_rss, before_peak = rss_mb(), peak_mb()
    print(f"RSS after generation: {before_rss:,.0f} MB (peak so far {before_peak:,.0f} MB)")
    for run in range(args.repeat):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        result = allocate(inputs, policy, timings=timings)
        seconds = time.perf_counter() - start
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        print(f"run {run + 1}: allocate {seconds:.2f}s ({stages})")
        print(f"  {len(inputs.usage) / seconds:,.0f} usage rows/s")
    t = result.totals
    print(
        f"peak RSS {peak_mb():,.0f} MB (allocate added {peak_mb() - before_rss:,.0f} MB over "
        f"the {before_rss:,.0f} MB of inputs)"
    )
    print(
        f"holders {len(result.holders):,}, lines by work {len(result.lines_by_work):,}, "
        f"lines by source {len(result.lines_by_source):,}, suspense buckets "
        f"{len(result.suspense):,}"
    )
    identity = t["fee_minor"] + t["holders_minor"] + t["suspense_minor"]
    print(
        f"identity: in {t['in_minor']:,} = fees {t['fee_minor']:,} + holders "
        f"{t['holders_minor']:,} + suspense {t['suspense_minor']:,} -> "
        f"{'OK' if identity == t['in_minor'] else 'BROKEN'}"
    )
    print(f"payable {t['payable_minor']:,}, carried forward {t['carried_forward_minor']:,}")
    print(f"checksum {result.checksum}")
    return 0 if identity == t["in_minor"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
