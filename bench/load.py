"""Load: gunicorn (2 workers) and a Celery worker on PostgreSQL + Redis, driven by wrk (or
locust) from second processes on loopback, while a payout cycle allocates on the worker.

    apt-get install -y wrk                       # once: the load generator (Debian's wrk 4.1)
    .venv/bin/python bench/load.py [--works 1000000] [--lines 1000000] [--seconds 60] [--reuse]
        [--users 50,20,20] [--driver wrk|locust] [--threads 4]
    .venv/bin/pip install 'locust>=2.47,<3'      # only for --driver locust (not a test dependency)

Builds (or reuses, with --reuse) the database `blanket_bench_load`: the demo society (`manage.py
demo --no-serve`: holders, licences, declarations, a paid and reconciled cycle, statements),
plus a catalogue of `--works` works with ISBNs (COPY) and a `--lines`-line declaration against
them for next quarter. Then serves it with gunicorn (2 workers of `--threads` threads,
production-like settings: DEBUG off), starts a Celery worker on Redis, warms each endpoint up
(a few requests, not counted), and runs the load for `--seconds` with fixed clients, each one
request a second: 50 crawlers checking 100 identifiers each (`POST /api/v1/registry/check`), 20
rights holders reading their statement page, 20 licensees polling a declaration's status over
the API. wrk (the default when installed): one single-threaded wrk per endpoint with one
connection per client, paced and checked by bench/wrk_load.lua; locust: bench/locustfile.py
with `constant_throughput(1)`. Throughout, next quarter's cycle is allocated on the worker again
and again (it is 1M works of usage: the engine and the database are busy). Prints
requests/second, p50, p95, p99 and failures per endpoint, the CPU seconds the web workers and
the Celery worker used, how many allocations completed under load, and the targets: registry
check p95 < 100 ms at 50 clients, statement page p95 < 300 ms, errors 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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


def start_services(
    env: dict[str, str], port: int, threads: int, nice: int = 0
) -> list[subprocess.Popen]:
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
            # Threads: a request waiting on PostgreSQL leaves the process to another, and idle
            # keep-alive connections (wrk's, between a client's requests) hold no worker.
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            # A client's connection idles about a second between requests; at gunicorn's
            # default 2 s a worker starved of CPU can close it as a request arrives.
            "--keep-alive",
            "10",
            "-b",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
            # The standard combined format, less the referrer and agent, plus the time the
            # worker took (%(D)s microseconds: from its reading the request to its last byte).
            "--access-logformat",
            '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s %(D)s',
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
            *_niced(nice),
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children still running (gunicorn's
    workers, the Celery worker), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def warm_up(port: int, config: dict, rounds: int = 24) -> None:
    """A few requests of each endpoint, several at a time, before the measured run: the first
    ones of each worker thread open its database connection and import the views' modules."""
    base = f"http://127.0.0.1:{port}"
    body = json.dumps(
        {"items": [{"scheme": "isbn", "identifier": v} for v in config["isbns"][:100]]}
    ).encode()
    requests = [
        urllib.request.Request(
            f"{base}/api/v1/registry/check",
            data=body,
            headers={"Content-Type": "application/json"},
        ),
        urllib.request.Request(
            f"{base}/statements/{config['statement_id']}/",
            headers={"Cookie": f"sessionid={config['holder_session']}"},
        ),
        urllib.request.Request(
            f"{base}{config['declaration_path']}",
            headers={"Authorization": config["licensee_key"]},
        ),
    ]

    def fetch(request: urllib.request.Request) -> int:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(fetch, requests * rounds))
    if set(statuses) != {200}:
        raise SystemExit(f"warm-up: statuses {sorted(set(statuses))}")


def _niced(nice: int) -> list[str]:
    """The command prefix that runs a batch process at a lower CPU priority than the web."""
    return ["nice", "-n", str(nice)] if nice else []


def allocations_under_load(
    env: dict[str, str], stop_at: float, operator: str, nice: int = 0
) -> subprocess.Popen:
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
        [*_niced(nice), PYTHON, "-c", code],
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


ENDPOINTS = {
    "registry": "registry check (100 identifiers)",
    "statement": "statement page",
    "declaration": "declaration status (API)",
}


def server_times(log: Path, offset: int) -> dict[str, list[float]]:
    """Per endpoint, the worker's own milliseconds for each request gunicorn logged after
    `offset` (bytes into its log): the latency without the wait for a worker's thread."""
    kinds = {"POST /api/v1/registry/": "registry", "GET /statements/": "statement"}
    times: dict[str, list[float]] = {"registry": [], "statement": [], "declaration": []}
    with open(log, "rb") as handle:
        handle.seek(offset)
        for line in handle.read().decode(errors="replace").splitlines():
            if '"' not in line:
                continue
            request = line.split('"')[1]
            kind = next((k for prefix, k in kinds.items() if request.startswith(prefix)), None)
            if kind is None and "/declarations/" in request:
                kind = "declaration"
            if kind is not None:
                times[kind].append(int(line.rsplit(" ", 1)[1]) / 1000)
    return times


def run_wrk(port: int, seconds: int, config: dict, var_dir: Path) -> list[dict]:
    """One wrk process per endpoint, all at once (see bench/wrk_load.lua); rows as locust's."""
    data = var_dir / "wrk-data.lua"
    fields = {
        "isbns": config["isbns"],
        "statement_path": f"/statements/{config['statement_id']}/",
        "holder_session": config["holder_session"],
        "holder_code": config["holder_code"],
        "declaration_path": config["declaration_path"],
        "licensee_key": config["licensee_key"],
    }
    lua = ",\n".join(
        f"  {key} = {{{', '.join(json.dumps(v) for v in value)}}}"
        if isinstance(value, list)
        else f"  {key} = {json.dumps(value)}"
        for key, value in fields.items()
    )
    data.write_text(f"return {{\n{lua}\n}}\n")
    runs = {}
    for seed, (kind, users) in enumerate(USERS.items(), start=1):
        if not users:
            continue
        runs[kind] = subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{users}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(ROOT / "bench" / "wrk_load.lua"),
                f"http://127.0.0.1:{port}",
                "--",
                kind,
                str(data),
                str(users),
                str(seed),
            ],
            stdout=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    rows = []
    for kind, process in runs.items():
        out, _ = process.communicate(timeout=seconds + 60)
        line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
        if line is None:
            raise SystemExit(f"wrk ({kind}) gave no summary:\n{out}")
        r = json.loads(line.removeprefix("WRK_JSON "))
        socket_errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
        if r["failures"] or socket_errors:
            print(
                f"ERRORS {kind}: {r['failures']} failed checks (first: {r['example']!r}); "
                f"socket errors: connect {r['connect']}, read {r['read']}, write {r['write']}, "
                f"timeout {r['timeout']}"
            )
        rows.append(
            {
                "Name": ENDPOINTS[kind],
                "Request Count": str(r["requests"]),
                "Failure Count": str(r["failures"] + socket_errors),
                "Requests/s": str(r["requests"] / (r["duration_us"] / 1e6)),
                "50%": f"{r['p50']:.0f}",
                "95%": f"{r['p95']:.0f}",
                "99%": f"{r['p99']:.0f}",
            }
        )
    return rows


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
    parser.add_argument(
        "--driver",
        choices=["wrk", "locust"],
        default="wrk" if shutil.which("wrk") else "locust",
        help="load generator: wrk (C, little CPU; the default when installed) or locust",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gunicorn worker (2 workers)"
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="CPU niceness of the Celery worker (and the allocation loop): batch work below the "
        "web on a shared machine, as docs/scaling.md advises; 0 for equal priority",
    )
    args = parser.parse_args()
    if args.users:
        for key, count in zip(USERS, args.users.split(","), strict=True):
            USERS[key] = int(count)
    var_dir = ROOT / "var" / "bench-load"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = base_env(str(var_dir))
    config = setup(args, env)
    config["users"] = USERS  # this run's (a reused config keeps the build run's)
    config_path = var_dir / "load-config.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    processes = start_services(env, port, args.threads, args.worker_nice)
    try:
        warm_up(port, config)
        cpu_before = [cpu_seconds(p.pid) for p in processes]
        log_offset = (var_dir / "gunicorn.log").stat().st_size
        allocator = allocations_under_load(
            env, time.time() + args.seconds, config["operator"], args.worker_nice
        )
        if args.driver == "wrk":
            rows = run_wrk(port, args.seconds, config, var_dir)
        else:
            rows = run_locust(env, port, args.seconds, config_path)
        cpu = [cpu_seconds(p.pid) - before for p, before in zip(processes, cpu_before, strict=True)]
        out, _ = allocator.communicate(timeout=600)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=30)
    print(
        f"\n{sum(USERS.values())} users ({args.driver}) for {args.seconds}s on 2 gunicorn workers "
        f"x {args.threads} threads; {out.strip()}"
    )
    print(
        f"CPU during the run: web (gunicorn) {cpu[0]:.1f} s, Celery worker {cpu[1]:.1f} s "
        f"({cpu[0] / args.seconds:.0%} and {cpu[1] / args.seconds:.0%} of one core); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
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
    print("in the worker (gunicorn's request time, without the wait for a thread):")
    for kind, values in server_times(var_dir / "gunicorn.log", log_offset).items():
        if values:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            print(
                f"  {kind:<12}{len(values):>6} requests  p50 {p50:.0f}  p95 {p95:.0f}  "
                f"p99 {p99:.0f} ms"
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
