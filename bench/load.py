"""Load: gunicorn (2 workers) and a Celery worker on PostgreSQL + Redis, driven by locust from a
second process on loopback, while a payout cycle allocates on the worker.

    .venv/bin/pip install 'locust>=2.47,<3'   # once: the load generator (not a test dependency)
    .venv/bin/python bench/load.py [--works 1000000] [--lines 1000000] [--seconds 60] [--reuse]

Builds (or reuses, with --reuse) the database `blanket_bench_load`: the demo society (`manage.py
demo --no-serve`: holders, licences, declarations, a paid and reconciled cycle, statements),
plus a catalogue of `--works` works with ISBNs (COPY) and a `--lines`-line declaration against
them for next quarter. Then serves it with gunicorn (2 workers, production-like settings:
DEBUG off), starts a Celery worker on Redis, and runs locust headless with fixed users for
`--seconds`: 50 crawlers checking 100 identifiers each per second (`POST /api/v1/registry/check`),
20 rights holders reading their statement page, 20 licensees polling a declaration's status
over the API. Throughout, next quarter's cycle is allocated on the worker again and again (it
is 1M works of usage: the engine and the database are busy). Prints requests/second, p50, p95,
p99 and failures per endpoint, how many allocations completed under load, and the targets:
registry check p95 < 100 ms at 50 clients, statement page p95 < 300 ms, errors 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "blanket_bench_load"
PG = "postgres://postgres@127.0.0.1:5432"
BROKER = "redis://127.0.0.1:6379/12"
PYTHON = sys.executable
USERS = {"registry": 50, "statement": 20, "declaration": 20}
PERIOD = "2027-Q1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(var_dir: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "BLANKET_VAR_DIR": var_dir,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        # Generous throttles: this measures the service, not its rate limits.
        "REGISTRY_RATE": "1000000/minute",
        "REGISTRY_BURST_RATE": "100000/second",
        "API_KEY_RATE": "1000000/minute",
        "API_USER_RATE": "1000000/minute",
        "API_ANON_RATE": "1000000/minute",
    }
    env.pop("CELERY_BROKER_URL", None)  # the set-up runs eagerly, in process
    return env


def setup(args, env: dict[str, str]) -> dict:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        config_file = Path(env["BLANKET_VAR_DIR"]) / "load-config.json"
        if exists and args.reuse and config_file.exists():
            return json.loads(config_file.read_text())
        if exists:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, "manage.py", "demo", "--no-serve"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"demo society on PostgreSQL in {time.perf_counter() - started:.1f}s")
    os.environ.update({k: v for k, v in env.items() if k != "CELERY_BROKER_URL"})
    import django

    django.setup()
    config = _seed(args, env)
    config_file.write_text(json.dumps(config))
    return config


def _seed(args, env: dict[str, str]) -> dict:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.files import File

    from accounts.models import Membership, Organisation
    from accounts.scoping import caller_for_user
    from accounts.services import api_key_create
    from bench.registry_check import isbn13s, works_copy
    from licensing.models import Catalogue, Licence
    from licensing.services.declarations import declaration_file_start
    from royalties.models import Statement

    started = time.perf_counter()
    press = Organisation.objects.get(name="Northern Lights Press")
    catalogue = Catalogue.objects.create(owner=press, name="Bench backlist", media_type="text")
    works_copy(catalogue.pk, args.works)
    print(f"{args.works:,} works with ISBNs in {time.perf_counter() - started:.1f}s")

    rng = np.random.default_rng(7)
    isbns = isbn13s(np.arange(args.works, dtype=np.int64) * 7 + 1_000_000)
    picks = isbns[rng.integers(0, args.works, size=args.lines)]
    quantities = rng.integers(1, 5_000, size=args.lines)
    aleph = Organisation.objects.get(name="Aleph AI Ltd")
    owner = Membership.objects.filter(organisation=aleph).first().user
    licence = Licence.objects.filter(licensee=aleph).first()
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
        handle.write("scheme,identifier,quantity\n")
        for start in range(0, args.lines, 200_000):
            block = zip(
                picks[start : start + 200_000], quantities[start : start + 200_000], strict=True
            )
            handle.write("".join(f"isbn,{i},{q}\n" for i, q in block))
    with open(handle.name, "rb") as upload:
        declaration = declaration_file_start(
            caller=caller_for_user(owner, aleph),
            licence=licence,
            period=PERIOD,
            model_name="bench-model",
            model_version="1",
            uploaded_file=File(upload, name="bench.csv"),
        )
    os.unlink(handle.name)
    declaration.refresh_from_db()
    print(
        f"declaration of {args.lines:,} lines: {declaration.status} in "
        f"{time.perf_counter() - started:.1f}s ({declaration.matched_quantity:,} matched)"
    )
    _, licensee_key = api_key_create(organisation=aleph, name="load")
    holder = Membership.objects.filter(organisation=press).first().user
    session = SessionStore()
    session[SESSION_KEY] = str(holder.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = holder.get_session_auth_hash()
    session.set_expiry(7 * 24 * 3600)
    session.create()
    statement = Statement.objects.filter(holder=press).order_by("-id").first()
    return {
        "users": USERS,
        "isbns": [str(v) for v in isbns[rng.integers(0, args.works, size=5_000)]],
        "holder_session": session.session_key,
        "holder_code": press.code,
        "statement_id": statement.pk,
        "licensee_key": f"Api-Key {licensee_key}",
        "declaration_path": (f"/api/v1/licences/{licence.pk}/declarations/{declaration.pk}/"),
        "operator": "operator@blanket.demo",
    }


def start_services(env: dict[str, str], port: int) -> list[subprocess.Popen]:
    logs = Path(env["BLANKET_VAR_DIR"])
    served = {**env, "CELERY_BROKER_URL": BROKER}
    gunicorn = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=served,
        stdout=open(logs / "gunicorn.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=served,
        stdout=open(logs / "celery.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return [gunicorn, worker]
        except OSError:
            time.sleep(0.5)
    raise SystemExit("gunicorn did not come up; see gunicorn.log")


def allocations_under_load(env: dict[str, str], stop_at: float, operator: str) -> subprocess.Popen:
    """A loop in its own process: allocate next quarter's cycle on the worker, wait, again."""
    code = f"""
import os, time, django
django.setup()
from accounts.models import User
from accounts.scoping import Caller
from royalties.models import Cycle
from royalties.services.cycles import cycle_allocate, cycle_create
caller = Caller(user=User.objects.get(email={operator!r}), organisation=None)
cycle = Cycle.objects.filter(period={PERIOD!r}).first()
cycle = cycle or cycle_create(caller=caller, period={PERIOD!r})
done = 0
while time.time() < {stop_at}:
    cycle.refresh_from_db()
    if cycle.status in ("draft", "allocated", "failed"):
        if cycle.status == "allocated":
            done += 1
        cycle = cycle_allocate(caller=caller, cycle=cycle)
    time.sleep(0.5)
cycle.refresh_from_db()
timings = cycle.current_allocation.timings if cycle.current_allocation else {{}}
print("allocations completed under load:", done + (cycle.status == "allocated"),
      "last:", cycle.status, timings)
"""
    return subprocess.Popen(
        [PYTHON, "-c", code],
        cwd=ROOT,
        env={**env, "CELERY_BROKER_URL": BROKER},
        stdout=subprocess.PIPE,
        text=True,
    )


def run_locust(env: dict[str, str], port: int, seconds: int, config_path: Path) -> list[dict]:
    prefix = config_path.parent / "locust"
    users = sum(USERS.values())
    subprocess.run(
        [
            PYTHON,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**env, "BLANKET_LOAD_CONFIG": str(config_path)},
        check=False,
    )
    with open(f"{prefix}_stats.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--users",
        help="registry,statement,declaration users (default 50,20,20: the issue's load)",
    )
    args = parser.parse_args()
    if args.users:
        for key, count in zip(USERS, args.users.split(","), strict=True):
            USERS[key] = int(count)
    var_dir = ROOT / "var" / "bench-load"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = base_env(str(var_dir))
    config = setup(args, env)
    config_path = var_dir / "load-config.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    processes = start_services(env, port)
    try:
        allocator = allocations_under_load(env, time.time() + args.seconds, config["operator"])
        rows = run_locust(env, port, args.seconds, config_path)
        out, _ = allocator.communicate(timeout=600)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    print(f"\n{sum(USERS.values())} users for {args.seconds}s on 2 gunicorn workers; {out.strip()}")
    print(
        f"{'endpoint':<36}{'users':>6}{'req':>8}{'fail':>6}{'rps':>8}{'p50':>7}{'p95':>7}"
        f"{'p99':>7}  (ms)"
    )
    results = {}
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        results[row["Name"]] = row
        key = next(
            k
            for k in USERS
            if k in row["Name"].split()[0].lower()
            or (k == "declaration" and "declaration" in row["Name"])
        )
        print(
            f"{row['Name']:<36}{USERS[key]:>6}{row['Request Count']:>8}"
            f"{row['Failure Count']:>6}{float(row['Requests/s']):>8.1f}"
            f"{row['50%']:>7}{row['95%']:>7}{row['99%']:>7}"
        )
    registry = results.get("registry check (100 identifiers)", {})
    statement = results.get("statement page", {})
    failures = sum(int(r["Failure Count"]) for r in results.values())
    print(
        f"targets: registry p95 {registry.get('95%')} ms < 100: "
        f"{float(registry.get('95%', 1e9)) < 100}; statement p95 {statement.get('95%')} ms "
        f"< 300: {float(statement.get('95%', 1e9)) < 300}; errors {failures} = 0: "
        f"{failures == 0}"
    )


if __name__ == "__main__":
    main()
