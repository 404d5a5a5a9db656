"""Fault injection against real processes, shared by the `*_faults` tests and `bench/faults.py`.

- `Workers`: solo `celery worker` processes on one private queue, replaced at once when they
  die (as a supervisor would); `broker()` points this process's Celery app at a broker.
- `PrivateRedis`: a throw-away redis-server on a free port, killed (SIGKILL, no persistence)
  and restarted empty. `PrivatePostgres`: restarts of a private PostgreSQL cluster that the
  test database lives on (never the shared one; see `postgres_restartable`).
- Fault points: `config.failpoints.hit(name, key)` kills the worker reaching an armed point.
  In workers started here (`--include tests.faults_support`), `worker_hooks()` adds a pause
  (`Points.pause`: the worker waits at the point until released, while the test restarts
  Redis or PostgreSQL under it), and puts points at the edges of the allocation functions
  (`ALLOCATION_POINTS`), which have no `hit()` calls of their own.
- `FaultRun` / `run_faults`: the seeded loop every job type's test uses: one fault per run,
  the kinds in turn, then wait (playing beat: the job's sweeper every BEAT_SECONDS) until the
  job is terminal, then the job's own checks. Outcomes go to `BLANKET_FAULT_REPORT` (JSON
  lines) for `bench/faults.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.services import broker_reachable, start_worker, wait_for

TASK_LINE = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (\w+)")
BEAT_SECONDS = 0.25


def require_services() -> None:
    from tests.conftest import skip_or_fail

    if connection.vendor != "postgresql":
        skip_or_fail("workers in other processes need a shared database: set DATABASE_URL")
    if not settings.CELERY_BROKER_URL:
        skip_or_fail("CELERY_BROKER_URL is not set: no real broker to run workers on")
    if not broker_reachable(settings.CELERY_BROKER_URL):
        skip_or_fail(f"the broker at {settings.CELERY_BROKER_URL} does not answer")


def seeds(base: int, count: int) -> list[int]:
    """`count` seeds from `base`; `BLANKET_FAULT_SEEDS=1005,5102` keeps only those."""
    only = os.environ.get("BLANKET_FAULT_SEEDS", "").strip()
    chosen = [base + i for i in range(count)]
    if only:
        wanted = {int(s) for s in only.split(",") if s.strip()}
        chosen = [s for s in chosen if s in wanted]
    return chosen


class Clock:
    """Per-phase timings of a run, printed (shown with -s or with a failure's output)."""

    def __init__(self):
        self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"  {what} {now - self.last:.2f}s")
        self.last = now


@contextlib.contextmanager
def seeded(seed: int, what: str) -> Iterator[random.Random]:
    print(f"--- {what} seed={seed}")
    try:
        yield random.Random(seed)
    except BaseException as exc:
        exc.add_note(f"{what}: reproduce with BLANKET_FAULT_SEEDS={seed}")
        raise


# --- workers and brokers ----------------------------------------------------------------------


@contextlib.contextmanager
def broker(url: str) -> Iterator[None]:
    """This process's Celery app publishes to `url`, and not eagerly, for the block."""
    from config.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_default_queue, app.conf.broker_url)
    saved_env = os.environ.get("CELERY_BROKER_URL")  # Celery reads it before its own setting

    def reset_pools():  # kombu keeps a pool per broker address: forget ours, not close it
        app._pool = None
        app.amqp._producer_pool = None

    app.conf.broker_url = os.environ["CELERY_BROKER_URL"] = url
    reset_pools()
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue, app.conf.broker_url = saved
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env
        reset_pools()


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Tasks run in this process (building a cycle: declarations, allocation)."""
    from config.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = saved


class Workers:
    """Two solo workers on one queue; a dead one is replaced at once (as systemd would)."""

    def __init__(self, *, broker_url: str, env: dict[str, str], count: int = 2):
        self.queue = f"blanket-faults-{uuid.uuid4().hex[:10]}"
        self.failpoints = Path(env["BLANKET_FAILPOINT_DIR"])
        self.env = {**env, "CELERY_BROKER_URL": broker_url}
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}  # pid -> the worker's own log
        self.deaths: list[tuple[int, int]] = []  # (pid, return code)
        self.started = 0

    def start(self) -> Workers:
        from config.celery import app

        app.conf.task_default_queue = self.queue
        app.conf.task_always_eager = False
        while len(self.processes) < self.count:
            self.started += 1
            log = self.failpoints / f"worker-{self.started}.log"
            args = (
                *("-n", f"w{self.started}.{self.queue}@faults", f"--logfile={log}"),
                *("--include", "tests.faults_support"),  # the fault points of worker_hooks()
            )
            process = start_worker(self.queue, self.env, args=args, log_mode="a")
            self.processes.append(process)
            self.logs[process.pid] = log
        return self

    def idle(self) -> bool:
        """No live worker holds a task: each one's log shows every task it received as
        finished. (A settled run may still have an attempt in flight, e.g. a worker between
        the SDK's retries: exactly what a duplicate transfer would come from. A solo worker
        cannot answer remote control while it runs a task, hence the logs.)"""
        for process in self.processes:
            if process.poll() is not None:
                continue
            log = self.logs[process.pid]
            text = log.read_text(errors="replace") if log.exists() else ""
            received, finished = set(), set()
            for task_id, verb in TASK_LINE.findall(text):
                (received if verb == "received" else finished).add(task_id)
            if received - finished:
                return False
        return True

    def revive(self) -> None:
        """Replace every worker that died."""
        alive = []
        for process in self.processes:
            code = process.poll()
            if code is None:
                alive.append(process)
            else:
                self.deaths.append((process.pid, code))
        self.processes = alive
        self.start()

    def died_of_sigkill(self, pid: int) -> bool:
        self.revive()
        return (pid, -signal.SIGKILL) in self.deaths

    def signal_all(self, sig: int) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []
        self.purge()

    def purge(self) -> None:
        """Leave nothing of this queue in the (shared) broker: the queue, its bindings, the
        remote-control bindings and the unacknowledged messages of the killed workers."""
        import json

        import redis

        client = redis.Redis.from_url(self.env["CELERY_BROKER_URL"], socket_connect_timeout=2)
        try:
            client.delete(
                self.queue, f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
            )
            for member in client.smembers("_kombu.binding.celery.pidbox"):
                if self.queue.encode() in member:  # remote control of our (dead) workers
                    client.srem("_kombu.binding.celery.pidbox", member)
            for tag, raw in client.hscan_iter("unacked"):
                with contextlib.suppress(ValueError, TypeError, IndexError):
                    if json.loads(raw)[2] == self.queue:
                        client.hdel("unacked", tag)
                        client.zrem("unacked_index", tag)
        except redis.RedisError:
            pass  # a private Redis already gone


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A throw-away redis-server (no persistence: a kill loses every message)."""

    def __init__(self, binary: str):
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: broker_reachable(self.url), timeout=15, what="redis-server to start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no save, no goodbye
        self.process.wait(timeout=10)

    def queued(self, queue: str) -> int:
        import redis

        return int(redis.Redis.from_url(self.url).llen(queue))


@contextlib.contextmanager
def private_redis_server() -> Iterator[PrivateRedis]:
    from tests.conftest import skip_or_fail

    binary = shutil.which("redis-server")
    if binary is None:
        skip_or_fail("no redis-server binary to start a private Redis for the drop test")
    server = PrivateRedis(binary)
    server.start()
    try:
        yield server
    finally:
        if server.process and server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)


@pytest.fixture
def private_redis():
    with private_redis_server() as server:
        yield server


def workers_ready(pool: Workers, server: PrivateRedis) -> bool:
    """Every worker is consuming (kombu's Redis transport registers a binding per queue)."""
    import redis

    client = redis.Redis.from_url(server.url)
    return len(client.client_list()) >= 1 + len(pool.processes) and bool(
        client.smembers(f"_kombu.binding.{pool.queue}")
    )


class PrivatePostgres:
    """Restarts of the private PostgreSQL cluster the test database lives on.

    Named by `BLANKET_FAULTS_PG_CLUSTER` ("15/blanketfaults", a Debian `pg_ctlcluster`
    cluster; `bench/faults.py` creates one on port 5439). Refused unless the test database's
    port is that cluster's, and never on 5432: other test runs share that one."""

    def __init__(self, cluster: str):
        self.version, self.name = cluster.split("/", 1)

    @classmethod
    def from_env(cls) -> PrivatePostgres | None:
        cluster = os.environ.get("BLANKET_FAULTS_PG_CLUSTER", "").strip()
        if not cluster or shutil.which("pg_ctlcluster") is None:
            return None
        server = cls(cluster)
        port = str(connection.settings_dict.get("PORT") or "5432")
        if port == "5432" or server.port() != port:
            return None
        return server

    def port(self) -> str:
        out = subprocess.run(
            ["pg_lsclusters", "--no-header", self.version, self.name],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        return out[2] if len(out) > 2 else ""

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop (fast: every connection is cut), stay down a while, start again."""
        ctl = ["pg_ctlcluster", self.version, self.name]
        subprocess.run([*ctl, "stop", "-m", "fast"], check=True, capture_output=True)
        connection.close()  # ours is dead too
        time.sleep(down_seconds)
        subprocess.run([*ctl, "start"], check=True, capture_output=True)
        wait_for(self._answers, timeout=30, what="PostgreSQL to start again")

    @staticmethod
    def _answers() -> bool:
        from django.db import OperationalError

        try:
            connection.close()
            connection.ensure_connection()
            return True
        except OperationalError:
            return False


# --- fault points in the workers ----------------------------------------------------------------

PAUSE_MAX_SECONDS = 60.0
# Points at the edges of the allocation functions (no `hit()` of their own): (module,
# function, point, before or after the call, key from the keyword arguments).
ALLOCATION_POINTS = (
    ("royalties.services.cycles", "cycle_allocate_run", "allocation.before", "before"),
    ("royalties.services.cycles", "allocate", "allocation.mid", "before"),
    ("royalties.services.cycles", "_allocation_store", "allocation.after_write", "after"),
    ("royalties.services.allocation_runs", "allocation_run_map", "allocation.map.before", "before"),
    ("royalties.services.allocation_runs", "partial_write", "allocation.map.after_write", "after"),
    (
        "royalties.services.allocation_runs",
        "allocation_run_reduce",
        "allocation.reduce.before",
        "before",
    ),
)


def _pause(name: str, key: object = None) -> None:
    """Armed with the file `pause.<name>[@key]`: wait at the point until the test deletes the
    file `paused.<name>.<pid>` that says where this worker waits."""
    directory = os.environ.get("BLANKET_FAILPOINT_DIR")
    if not directory:
        return
    for armed in [name] if key is None else [name, f"{name}@{key}"]:
        source = Path(directory) / f"pause.{armed}"
        waiting = Path(directory) / f"paused.{armed}.{os.getpid()}"
        try:
            os.rename(source, waiting)
        except OSError:
            continue
        deadline = time.monotonic() + PAUSE_MAX_SECONDS
        while waiting.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return


def worker_hooks() -> None:
    """In a worker: pausable `failpoints.hit`, and points around the allocation functions."""
    import functools
    import importlib

    from config import failpoints

    if getattr(failpoints, "_faults_hooked", False):
        return
    kill = failpoints.hit

    def hit(name: str, key: object = None) -> None:
        kill(name, key)
        _pause(name, key)

    failpoints.hit = hit
    failpoints._faults_hooked = True
    for module_name, function, point, when in ALLOCATION_POINTS:
        module = importlib.import_module(module_name)
        original = getattr(module, function)

        def wrapped(*args, _original=original, _point=point, _when=when, **kwargs):
            if _when == "before":
                failpoints.hit(_point)
            result = _original(*args, **kwargs)
            if _when == "after":
                failpoints.hit(_point)
            return result

        setattr(module, function, functools.wraps(original)(wrapped))


if os.environ.get("BLANKET_FAILPOINT_DIR"):  # imported by a worker (--include): hook it
    from celery.signals import worker_init, worker_ready

    if os.environ.get("BLANKET_FAULTS_MEDIA_ROOT"):  # the test process's uploads
        settings.MEDIA_ROOT = os.environ["BLANKET_FAULTS_MEDIA_ROOT"]

    @worker_ready.connect
    def _hook_worker(**_kwargs) -> None:
        worker_hooks()

    @worker_init.connect
    def _hook_early(**_kwargs) -> None:
        with contextlib.suppress(Exception):  # Django may not be ready yet: worker_ready then
            worker_hooks()


class Points:
    """Arming and watching the fault points of a worker pool (its fail-point directory)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def arm_kill(self, name: str) -> None:
        (self.directory / name).touch()

    def arm_pause(self, name: str) -> None:
        (self.directory / f"pause.{name}").touch()

    def fired(self, name: str) -> list[int]:
        return [int(p.name.rsplit(".", 1)[1]) for p in self.directory.glob(f"{name}.fired.*")]

    def paused(self, name: str) -> list[Path]:
        return list(self.directory.glob(f"paused.{name}.*"))

    def release(self, name: str) -> None:
        for path in self.paused(name):
            path.unlink(missing_ok=True)

    def disarm(self) -> None:
        """Nothing armed, fired or paused is left for the next run (the worker logs stay)."""
        for path in self.directory.iterdir():
            if path.suffix != ".log":
                path.unlink(missing_ok=True)


# --- the seeded runs ------------------------------------------------------------------------------


@dataclass
class Outcome:
    job: str
    seed: int
    kind: str  # kill | redis | postgres
    point: str
    outcome: str = ""  # the job's terminal state, or "error"
    seconds: float = 0.0
    error: str = ""
    notes: dict = field(default_factory=dict)


class Job:
    """One job type under faults: what a fault run needs to know about it."""

    name = ""
    kill_points: tuple[str, ...] = ()
    mid_points: tuple[str, ...] = ()  # where a worker is paused for a Redis/PostgreSQL restart
    # where a worker stalls past the stuck age (outside any transaction: inside one, its locks
    # would hold up the run that takes over)
    stall_points: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("kill", "redis", "stall", "postgres")  # those that apply
    queued_ok = True  # a Redis/PostgreSQL fault may strike with the job's message queued
    # A known defect this job type shows under these faults (runs that fail are reported as
    # "known", and bench/faults.py does not count them as new failures).
    known_bug = ""
    terminal: frozenset[str] = frozenset()

    def submit(self, rng: random.Random) -> object:  # the job's handle (its row)
        raise NotImplementedError

    def state(self, handle) -> str:
        raise NotImplementedError

    def sweep(self) -> None:
        raise NotImplementedError

    def check(self, handle) -> dict:
        """The job's invariants after a terminal state (raise AssertionError)."""
        raise NotImplementedError

    def describe(self, handle) -> str:
        return self.state(handle)

    def known(self, error: str) -> str:
        """The known defect a failed run's error shows, if any."""
        return self.known_bug


def _transient(exc: Exception) -> bool:
    import kombu.exceptions
    import redis
    from django.db import InterfaceError, OperationalError

    return isinstance(
        exc,
        kombu.exceptions.OperationalError
        | redis.RedisError
        | ConnectionError
        | OSError
        | OperationalError
        | InterfaceError,
    )


def beat(job: Job) -> None:
    """The sweeper task's body in this process (beat's worker); a broker or database being
    down only makes it try again on the next beat."""
    try:
        job.sweep()
    except Exception as exc:
        if not _transient(exc):
            raise
        connection.close()


def drive(job: Job, handle, workers: Workers, *, timeout: float, idle: bool = True) -> str:
    """Beat and revive dead workers until the job is terminal and (`idle`) no worker holds a
    task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers.revive()
        beat(job)
        try:
            state = job.state(handle)
        except Exception as exc:
            if not _transient(exc):
                raise
            connection.close()
            state = ""
        if state in job.terminal and (not idle or workers.idle()):
            return state
        time.sleep(BEAT_SECONDS)
    raise AssertionError(f"{job.name} not terminal after {timeout}s: {job.describe(handle)}")


class FaultRunner:
    """The seeded fault runs of one job type on a worker pool and a private Redis."""

    def __init__(
        self,
        job: Job,
        workers: Workers,
        redis_server: PrivateRedis,
        postgres: PrivatePostgres | None,
        *,
        timeout: float = 60.0,
    ):
        self.job, self.workers, self.redis, self.postgres = job, workers, redis_server, postgres
        self.points = Points(workers.failpoints)
        self.timeout = timeout
        self.kinds = [
            k for k in job.kinds if k != "stall" or job.stall_points if k != "postgres" or postgres
        ]
        self.outcomes: list[Outcome] = []

    def run(self, seed: int, index: int) -> Outcome:
        rng = random.Random(seed)
        kind = self.kinds[index % len(self.kinds)]
        if kind == "kill":
            point = self.job.kill_points[(index // len(self.kinds)) % len(self.job.kill_points)]
        elif kind == "stall":
            point = rng.choice(self.job.stall_points)
        else:
            point = rng.choice(
                ["queued", *self.job.mid_points] if self.job.queued_ok else self.job.mid_points
            )
        outcome = Outcome(self.job.name, seed, kind, point)
        started = time.monotonic()
        print(f"--- {self.job.name} seed={seed} {kind} {point}")
        try:
            getattr(self, f"_{kind}")(rng, point, outcome)
        except BaseException as exc:
            outcome.outcome = outcome.outcome or "error"
            outcome.error = "".join(traceback.format_exception_only(exc)).strip()[-2000:]
            outcome.error += "".join(f" [{note}]" for note in getattr(exc, "__notes__", []))
            outcome.error += f" (replay: BLANKET_FAULT_SEEDS={seed})"
            if known := self.job.known(outcome.error):
                outcome.notes["known_bug"] = known
            print(traceback.format_exc())
            if not isinstance(exc, Exception):
                raise
        finally:
            outcome.seconds = round(time.monotonic() - started, 2)
            self.points.disarm()
            self._record(outcome)
        return outcome

    def _record(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        report = os.environ.get("BLANKET_FAULT_REPORT")
        if report:
            with open(report, "a") as out:
                out.write(json.dumps(outcome.__dict__) + "\n")

    def _finish(self, handle, outcome: Outcome) -> None:
        outcome.outcome = drive(self.job, handle, self.workers, timeout=self.timeout)
        outcome.notes.update(self.job.check(handle) or {})

    def _kill(self, rng, point: str, outcome: Outcome) -> None:
        self.points.arm_kill(point)
        deaths = len(self.workers.deaths)
        handle = self.job.submit(rng)
        wait_for(lambda: bool(self.points.fired(point)), timeout=30, what=f"{point} to fire")
        (pid,) = self.points.fired(point)
        wait_for(lambda: self.workers.died_of_sigkill(pid), timeout=15, what=f"{pid} to die")
        for path in self.workers.failpoints.glob(f"{point}.fired.*"):
            path.unlink()
        assert len(self.workers.deaths) > deaths
        self._finish(handle, outcome)

    def _pause_at(self, point: str, rng):
        """Submit with `point` armed to pause, and wait for a worker to wait there."""
        self.points.arm_pause(point)
        handle = self.job.submit(rng)
        try:
            wait_for(
                lambda: bool(self.points.paused(point)), timeout=30, what=f"a pause at {point}"
            )
        except AssertionError as exc:
            exc.add_note(f"the job: {self.job.describe(handle)}")
            raise
        return handle

    def _redis(self, rng, point: str, outcome: Outcome) -> None:
        if point == "queued":  # the message is in Redis, no worker has taken it: lost
            self.workers.signal_all(signal.SIGSTOP)
            try:
                handle = self.job.submit(rng)
                outcome.notes["queued"] = self.redis.queued(self.workers.queue)
                self.redis.kill()
            finally:
                self.workers.signal_all(signal.SIGCONT)
        else:  # a worker is in the middle of the job
            handle = self._pause_at(point, rng)
            self.redis.kill()
        for _ in range(rng.randint(1, 3)):
            beat(self.job)  # beat fires while the broker is down
            time.sleep(BEAT_SECONDS)
        self.redis.start()
        self.points.release(point)
        self._finish(handle, outcome)

    def _stall(self, rng, point: str, outcome: Outcome) -> None:
        """A live worker stalls at `point` (a long GC pause, a swapping machine) past the
        job's stuck age: the sweeper takes it for dead and another worker runs the job. Then
        the stalled one wakes up and carries on: it must change nothing."""
        handle = self._pause_at(point, rng)
        try:
            state = drive(self.job, handle, self.workers, timeout=self.timeout, idle=False)
            outcome.notes["while_stalled"] = state
        finally:
            self.points.release(point)
        self._finish(handle, outcome)

    def _postgres(self, rng, point: str, outcome: Outcome) -> None:
        assert self.postgres is not None
        if point == "queued":  # idle workers hold connections that the restart cuts
            self.workers.signal_all(signal.SIGSTOP)
            try:
                handle = self.job.submit(rng)
                self.postgres.restart(down_seconds=rng.uniform(0.0, 1.0))
            finally:
                self.workers.signal_all(signal.SIGCONT)
        else:  # a worker is in the middle of the job, with a transaction open or not
            handle = self._pause_at(point, rng)
            self.postgres.restart(down_seconds=rng.uniform(0.0, 1.0))
            self.points.release(point)
        self._finish(handle, outcome)


def runs_wanted(default: int) -> int:
    return int(os.environ.get("BLANKET_FAULT_RUNS", "") or default)


def seed_base(default: int) -> int:
    return int(os.environ.get("BLANKET_FAULT_SEED", "") or default)


def run_faults(
    runner: FaultRunner, *, runs: int, base: int, allow_known: bool = False
) -> list[Outcome]:
    """`runs` seeded runs; every failure is reported together at the end. `allow_known`:
    runs failing with a known defect (which an xfail test of its own pins) do not fail."""
    for seed in seeds(base, runs):
        runner.run(seed, seed - base)  # the kind follows the seed: a replay is the same run
    failed = [
        o for o in runner.outcomes if o.error and not (allow_known and o.notes.get("known_bug"))
    ]
    summary = {}
    for o in runner.outcomes:
        key = f"{o.kind}:{o.point}"
        summary.setdefault(key, []).append(o.outcome)
    print(f"{runner.job.name}: {summary}")
    assert not failed, "\n".join(f"seed {o.seed} {o.kind}:{o.point}: {o.error}" for o in failed)
    return runner.outcomes


def ledger_check() -> None:
    """Every journal entry balances (postings sum to zero per currency); so does the ledger."""
    from django.db.models import Sum

    from royalties.models import Posting
    from royalties.services.ledger import ledger_trial_balance

    unbalanced = list(
        Posting.objects.values("entry_id", "currency")
        .annotate(total=Sum("amount_minor"))
        .exclude(total=0)[:5]
    )
    assert not unbalanced, f"unbalanced journal entries: {unbalanced}"
    totals = {c: v for c, v in ledger_trial_balance().items() if v}
    assert not totals, f"trial balance not zero: {totals}"


@contextlib.contextmanager
def fault_pool(tmp_path: Path, redis_server: PrivateRedis, *, count: int = 2, **env: str):
    """`count` workers (`BLANKET_FAULT_WORKERS` if set: bench/faults.py runs three) on the
    private Redis with fail points in `tmp_path` (and `env`)."""
    require_services()
    count = int(os.environ.get("BLANKET_FAULT_WORKERS", "") or count)
    pool = Workers(
        broker_url=redis_server.url,
        env={
            "BLANKET_FAILPOINT_DIR": str(tmp_path),
            "BLANKET_FAULTS_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LOG_LEVEL": "WARNING",
            **env,
        },
        count=count,
    )
    with broker(redis_server.url):
        pool.start()
        wait_for(lambda: workers_ready(pool, redis_server), timeout=60, what="workers to listen")
        try:
            yield pool
        finally:
            pool.signal_all(signal.SIGCONT)
            pool.stop()


def isbn13(n: int) -> str:
    body = f"978{n:09d}"
    check = (10 - sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)
