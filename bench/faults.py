"""Seeded fault runs against real Celery workers, Redis and PostgreSQL, many per job type.

    .venv/bin/python bench/faults.py --job all --runs 50 --seed 1
    .venv/bin/python bench/faults.py --job imports --runs 200 --seed 7
    .venv/bin/python bench/faults.py --job allocation --runs 50 --known-runs 10
    .venv/bin/python bench/faults.py --job all --drop-cluster        # remove the cluster after

The scenarios are the fault tests' own (`tests/faults_support.py` and the `*_faults.py`
tests): this runs them through pytest with more runs (`BLANKET_FAULT_RUNS`) from another seed
(`BLANKET_FAULT_SEED`), collects every run's outcome (`BLANKET_FAULT_REPORT`, JSON lines) and
prints, per job type: runs, faults injected by kind and point, outcomes, failures, seconds.
Exit status 1 on any failure (runs of a known, reported defect are listed apart and do not
count unless `--strict`).

Each run kills a worker (SIGKILL at a fail point), kills Redis and restarts it empty, lets a
live worker stall past the job's stuck age, or restarts PostgreSQL, in turn. The test
database lives on a private PostgreSQL cluster (Debian `pg_createcluster`, default
`15/blanketfaults` on port 5439, created here if missing, trust authentication on
127.0.0.1) so that it can be restarted without touching the shared server; each job's tests
start their own redis-server on a free port. `--no-postgres` runs without PostgreSQL
restarts, on any `--database-url`.

Job types: imports (`tests/licensing/test_import_faults.py`), declarations
(`tests/licensing/test_declaration_faults.py`), allocation
(`tests/royalties/test_allocation_faults.py`: the fanned-out allocation under `--runs`, and
`--known-runs` runs of the allocation task itself killed or its message lost: the cycle
left `allocating`, which the sweeper now re-drives; a defect these runs found, fixed), payouts
(`tests/royalties/test_payout_faults.py`: the seeded runs of every kind under `--runs`, a
fresh approved quarter each, and the file's fixed runs besides: 17 runs with three worker
kills each, 4 Redis drops, 15 Stripe fault mixes, 1 race).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
JOBS = {
    "imports": ["tests/licensing/test_import_faults.py"],
    "declarations": ["tests/licensing/test_declaration_faults.py"],
    "allocation": ["tests/royalties/test_allocation_faults.py"],
    "payouts": ["tests/royalties/test_payout_faults.py"],
}
# The payout test's fixed runs (its RUNS and seed lists), for the report.
PAYOUT_FAULTS = {
    "kill (3 per run: payout.before_call, payout.after_call, payout.after_write)": 17,
    "redis dropped and restarted empty": 4,
    "stripe 500s / time-outs": 15,
    "look-up racing an attempt in flight": 1,
}


def cluster_ensure(cluster: str, port: int) -> None:
    """Create and start the private cluster if it is missing (never the shared 5432)."""
    if port == 5432:
        raise SystemExit("refusing to use port 5432: that PostgreSQL is shared")
    version, name = cluster.split("/", 1)
    if shutil.which("pg_createcluster") is None:
        raise SystemExit("no pg_createcluster: give --no-postgres and a --database-url")
    listed = subprocess.run(
        ["pg_lsclusters", "--no-header", version, name], capture_output=True, text=True
    ).stdout.split()
    if not listed:
        subprocess.run(
            [
                "pg_createcluster",
                version,
                name,
                "--port",
                str(port),
                "--start",
                "--",
                "--auth=trust",
            ],
            check=True,
            capture_output=True,
        )
    elif listed[2] != str(port):
        raise SystemExit(f"cluster {cluster} listens on {listed[2]}, not {port}")
    elif listed[3] != "online":
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)


def cluster_drop(cluster: str) -> None:
    version, name = cluster.split("/", 1)
    subprocess.run(["pg_dropcluster", "--stop", version, name], check=False)


def run_job(job: str, args, env: dict[str, str]) -> dict:
    report = Path(tempfile.mkstemp(prefix=f"faults-{job}-", suffix=".jsonl")[1])
    env = {
        **env,
        "BLANKET_FAULT_RUNS": str(args.runs),
        "BLANKET_FAULT_RUNS_KNOWN": str(args.known_runs),
        "BLANKET_FAULT_REPORT": str(report),
        "BLANKET_FAULT_WORKERS": "3",
    }
    if args.seed is not None:
        env["BLANKET_FAULT_SEED"] = str(args.seed)
    started = time.monotonic()
    command = [*PYTEST, "--create-db", "-q", "-rfExX", *JOBS[job]]
    print(f"== {job}: {' '.join(command[2:])}", flush=True)
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    tail = [line for line in done.stdout.splitlines() if line.strip()][-8:]
    outcomes = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    report.unlink(missing_ok=True)
    return {"job": job, "seconds": seconds, "rc": done.returncode, "tail": tail, "runs": outcomes}


def summarise(result: dict, strict: bool) -> int:
    """Print one job type's figures; return its failures."""
    job, runs = result["job"], result["runs"]
    print(f"\n## {job}: {result['seconds']:.0f} s wall, pytest exit {result['rc']}")
    failures = 0
    if job == "payouts":  # the fixed runs of that file's other tests, besides the seeded ones
        for kind, count in PAYOUT_FAULTS.items():
            print(f"  fixed runs  {count:4d}  {kind}")
        print("  " + " / ".join(result["tail"][-1:]))
    for name in sorted({r["job"] for r in runs}):
        mine = [r for r in runs if r["job"] == name]
        kinds = collections.Counter(r["kind"] for r in mine)
        points = collections.Counter(f"{r['kind']}:{r['point']}" for r in mine)
        outcomes = collections.Counter(r["outcome"] for r in mine)
        bad = [r for r in mine if r["error"]]
        known = [r for r in bad if r["notes"].get("known_bug")] if not strict else []
        new = [r for r in bad if r not in known]
        failures += len(new)
        seconds = sum(r["seconds"] for r in mine)
        print(f"  {name}: runs {len(mine)}, run time {seconds:.0f} s")
        print(f"    faults by kind: {dict(kinds)}")
        print(f"    faults by point: {dict(sorted(points.items()))}")
        print(f"    outcomes: {dict(outcomes)}")
        print(f"    failures: {len(new)}" + (f", known defect: {len(known)}" if known else ""))
        for r in new[:10]:
            print(f"      seed {r['seed']} {r['kind']}:{r['point']}: {r['error'][:300]}")
        if known:
            print(f"      known: {known[0]['notes']['known_bug'][:300]}")
    if not runs:
        print("  no runs recorded:\n    " + "\n    ".join(result["tail"]))
        failures += 1
    elif result["rc"] not in (0,) and failures == 0 and not any(r["error"] for r in runs):
        print("  pytest failed outside the runs:\n    " + "\n    ".join(result["tail"]))
        failures += 1
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job", choices=[*JOBS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=50, help="seeded runs per job type")
    parser.add_argument(
        "--known-runs",
        type=int,
        default=10,
        help="runs of the allocation task itself killed or lost (one-task and fan-out)",
    )
    parser.add_argument("--seed", type=int, default=None, help="first seed (default per job)")
    parser.add_argument("--pg-cluster", default="15/blanketfaults")
    parser.add_argument("--pg-port", type=int, default=5439)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--no-postgres", action="store_true", help="no PostgreSQL restarts")
    parser.add_argument("--drop-cluster", action="store_true", help="pg_dropcluster at the end")
    parser.add_argument("--strict", action="store_true", help="known defects count as failures")
    args = parser.parse_args()

    env = {
        **os.environ,
        "CELERY_BROKER_URL": args.broker_url,
        "DATABASE_URL": args.database_url
        or f"postgres://postgres@127.0.0.1:{args.pg_port}/blanket_faults_bench",
    }
    if args.no_postgres:
        env.pop("BLANKET_FAULTS_PG_CLUSTER", None)
    else:
        cluster_ensure(args.pg_cluster, args.pg_port)
        env["BLANKET_FAULTS_PG_CLUSTER"] = args.pg_cluster
    jobs = list(JOBS) if args.job == "all" else [args.job]
    started = time.monotonic()
    failures = 0
    try:
        for job in jobs:
            failures += summarise(run_job(job, args, env), args.strict)
    finally:
        if args.drop_cluster and not args.no_postgres:
            cluster_drop(args.pg_cluster)
    print(f"\n{len(jobs)} job type(s), {time.monotonic() - started:.0f} s, failures: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
