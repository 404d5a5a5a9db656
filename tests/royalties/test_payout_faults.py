"""Fault injection against real processes: payouts stay exactly-once whatever dies.

Real Celery workers (`celery worker --pool=solo`, several on one queue, as production runs
several) take the payout tasks from Redis and call the local Stripe server over HTTP; the
PostgreSQL test database is shared with this process. This process plays celery beat: every
quarter second it runs the sweeper task's body (`payouts_sweep()`, then enqueue
`payouts_due()` and what the sweep found to resend), and it replaces dead workers at once, as
a process supervisor would. PAYOUT_STUCK_SECONDS is 3 s here (300 s in production) and the
back-off 0, so that recovery takes seconds.

What is broken, and how:

- Workers killed with SIGKILL at the three fail points of `payout_submit`
  (`payout.before_call`, `payout.after_call`, `payout.after_write`; config.failpoints).
  What a **run** is here: one seed, one fresh approved cycle (six holders, five with an
  onboarded Connect account and one without, whose payout is held), and three of its payouts
  picked by `random.Random(seed)`, each armed with a different fail point (for that payout
  only). Starting the run kills three workers, each a separate process dying of SIGKILL at
  its point (checked: the fired fail point names the pid, and that pid's exit is -9); beat
  and the replacement workers recover. 17 runs = 51 worker deaths, 17 at each point. (One
  kill per run would need 51 cycles: about three times the time for the same kills.)
  A killed solo worker also loses the message it had prefetched: only the sweeper resends it.
- Redis (a private `redis-server` on a free port, so the shared one other tests use is left
  alone) killed with SIGKILL, with the run's messages in it, and restarted empty on the same
  port: the lost messages are recovered from the database by the sweeper.
- Stripe answering 500 or not at all (time-outs, the worker's client giving up after 1 s),
  before and after doing the work, on the transfer, on the look-up by transfer group and on
  the read-back; each kind alone, then seeded mixes; and one fixed case where the sweeper
  looks a payout up while its second attempt is still in flight (the bug fixed in
  `payouts._claim`: the look-up found nothing, the payout was resent under the next key, and
  the first attempt's retry made a second transfer).

- Seeded runs of every kind through `tests.faults_support.FaultRunner`, as the other job
  types have (`PayoutJob`: CI_RUNS here, `bench/faults.py --job payouts --runs 50`): a worker
  killed at a fail point; Redis killed and restarted empty with the run's messages queued or a
  worker waiting at a fail point; a worker stalled at a fail point past the stuck age while
  the sweeper takes its payout over, then woken; PostgreSQL restarted (with
  `BLANKET_FAULTS_PG_CLUSTER`) with the messages queued or a worker waiting at a fail point.
  The stall before the Stripe call found a defect, fixed in `payouts._still_claimed`: the
  sweeper found no transfer and sent the next generation, then the stalled worker woke and
  called Stripe under the old generation's key: two transfers for one payout.

A run ends when every payout is paid or held, the run is done, and every live worker's log
shows every task it received as finished (an attempt still in flight could yet make a
duplicate). Then: exactly one transfer per paid payout and none for the held one, counted at
the local Stripe both by the transfers' metadata and by the idempotency keys it executed; one
`sent` ledger entry per paid payout; the ledger balanced; reconciliation clean; the cycle
paid, then closed.

A failing run names its seed; `BLANKET_FAULT_SEEDS=1005,5102 pytest ...` replays only those
(`FAULT_DEBUG=1` with `-s` prints the payouts' states as they change).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import signal
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from accounts.models import OrganisationKind
from licensing.models import Licence
from royalties.integrations import stripe_client
from royalties.models import (
    Cycle,
    CycleStatus,
    JournalEntry,
    Payout,
    PayoutRun,
    PayoutRunStatus,
    PayoutStatus,
)
from royalties.services import payouts, reconciliation
from royalties.services.ledger import ledger_trial_balance
from tests.conftest import _persona
from tests.faults_support import (  # shared with the other fault tests and bench/faults.py
    Clock,
    FaultRunner,
    Job,
    PrivatePostgres,
    Workers,
    fault_pool,
    isbn13,
    ledger_check,
    private_redis_server,
    run_faults,
    runs_wanted,
    seed_base,
    seeded,
)
from tests.faults_support import broker as _broker
from tests.faults_support import eager as _eager
from tests.faults_support import require_services as _require_services
from tests.faults_support import seeds as _seeds
from tests.faults_support import workers_ready as _workers_ready
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs
from tests.royalties import payouts_support as ps
from tests.services import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

KILL_POINTS = ("payout.before_call", "payout.after_call", "payout.after_write")
RUNS = 17  # x 3 kills per run = 51 worker deaths, 17 at each point
CI_RUNS = 4  # of the seeded runs of every kind; bench/faults.py runs 50 and more
CONNECTED_HOLDERS = 5  # plus one holder without a payout account: its payout is held
# A claim older than this is looked up by the sweeper. It must exceed the longest Stripe call
# of a live worker (settings/base.py): local calls take milliseconds, and 3 s leaves room for a
# loaded CI machine; with Stripe timing out (1 s x 3 tries + the SDK's pauses) it is 8 s.
STUCK_SECONDS = 3
STUCK_SECONDS_SLOW_STRIPE = 8
BEAT_SECONDS = 0.25
RUN_TIMEOUT = 90.0
TERMINAL = {PayoutStatus.PAID, PayoutStatus.HELD}
TASK_LINE = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (\w+)")


# --- services: the local Stripe for two processes, workers, a private Redis -------------------


@pytest.fixture
def fault_stripe(local_stripe, settings):
    """The local Stripe for this process (beat) and the workers: same address and key, short
    time-outs, no webhooks (the sweeper alone drives recovery here)."""
    settings.STRIPE_API_BASE = local_stripe.url
    settings.STRIPE_SECRET_KEY = local_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = "whsec_faults"
    settings.STRIPE_TIMEOUT_SECONDS = 1
    settings.PAYOUT_BACKOFF_SECONDS = 0
    settings.PAYOUT_STUCK_SECONDS = STUCK_SECONDS
    settings.PAYOUT_MAX_ATTEMPTS = 50  # the faults here must never exhaust the retries
    local_stripe.control.balance_fund(10**12, "eur")
    return local_stripe


@pytest.fixture(autouse=True)
def _services_first():
    """Skip (locally) or fail (CI) before building anything when the services are missing."""
    _require_services()


def _worker_env(local_stripe, failpoint_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "STRIPE_API_BASE": local_stripe.url,
        "STRIPE_SECRET_KEY": local_stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": "whsec_faults",
        "STRIPE_TIMEOUT_SECONDS": "1",
        "STRIPE_MAX_NETWORK_RETRIES": "2",
        "PAYOUT_BACKOFF_SECONDS": "0",
        "PAYOUT_STUCK_SECONDS": str(STUCK_SECONDS),
        "PAYOUT_MAX_ATTEMPTS": "50",
        "BLANKET_FAILPOINT_DIR": str(failpoint_dir),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
def workers(fault_stripe, tmp_path, django_db_blocker):
    _require_services()
    pool = Workers(broker_url=settings.CELERY_BROKER_URL, env=_worker_env(fault_stripe, tmp_path))
    with _broker(settings.CELERY_BROKER_URL):
        pool.start()
        yield pool
        pool.stop()


@pytest.fixture
def private_redis():
    with private_redis_server() as server:
        yield server


# --- the scenario: holders, one long licence, a fresh approved cycle per run -------------------


class Scenario:
    """Five rights holders with onboarded Connect accounts and one without an account, a
    licence running for fifteen years, and a new approved quarter for every run."""

    def __init__(self, operator, approver, licensee, control):
        self.operator, self.approver, self.licensee = operator, approver, licensee
        self.holders = [
            _persona(OrganisationKind.RIGHTS_HOLDER, name=f"Fault Holder {i}")
            for i in range(CONNECTED_HOLDERS + 1)
        ]
        self.isbns = []
        for i, holder in enumerate(self.holders):
            catalogue = catalogue_for(holder, f"Catalogue {i}")
            isbn = isbn13(100_000 + i)
            work_in(catalogue, holder, f"W{i}", isbn=isbn)
            self.isbns.append(isbn)
        with _eager():
            # No administration fee: with one, some quarters hit a one-unit rounding difference
            # between the allocation totals and its per-licence fees that cycle approval
            # refuses (a bug of the allocation, reported separately; payouts do not care).
            cs.policy(operator, admin_fee_bp=0)
            self.licence = cs.paid_licence(licensee, operator, amount=600_000_000)
            Licence.objects.filter(pk=self.licence.pk).update(ends_on=dt.date(2041, 6, 30))
            self.licence.refresh_from_db()
            for holder in self.holders[:CONNECTED_HOLDERS]:
                ps.connect(holder, control)
        self.unconnected = self.holders[-1].organisation
        self.quarter = 0

    def approved_cycle(self, rng: random.Random) -> Cycle:
        year, q = 2026 + (2 + self.quarter) // 4, (2 + self.quarter) % 4 + 1
        self.quarter += 1
        period = f"{year}-Q{q}"
        rows = [("isbn", isbn, rng.randint(50, 900)) for isbn in self.isbns]
        with _eager():
            cs.usage(self.licensee, self.licence, rows, period=period)
            cycle = cs.allocate(self.operator, period)
            assert cycle.status == CycleStatus.ALLOCATED, cycle.message
            return cs.approve(self.approver, cycle)

    def start_run(self, cycle: Cycle, *, arm=None) -> PayoutRun:
        """Start paying `cycle`; `arm(payouts)` runs after the payout rows exist and before
        anything is enqueued (the dispatch is sent when the outer transaction commits)."""
        with transaction.atomic():
            run = payouts.payout_run_start(caller=cs.staff_caller(self.approver), cycle=cycle)
            if arm is not None:
                arm(list(Payout.objects.filter(run=run).select_related("holder")))
        return run


@pytest.fixture
def scenario(fault_stripe, operator, approver, licensee):
    return Scenario(operator, approver, licensee, fault_stripe.control)


# --- beat, and the checks after every run ------------------------------------------------------


def _beat_once() -> None:
    from royalties.tasks_payouts import payouts_sweep_task

    try:
        payouts_sweep_task()  # the task body, in this process: beat's worker
    except Exception as exc:
        if not _transient(exc):
            raise
        if os.environ.get("FAULT_DEBUG"):
            print("BEAT ERROR", repr(exc))


def _transient(exc: Exception) -> bool:
    import kombu.exceptions
    import redis

    from royalties.integrations.stripe_client import StripeBoundaryError

    return isinstance(
        exc,
        kombu.exceptions.OperationalError
        | redis.RedisError
        | StripeBoundaryError
        | ConnectionError
        | OSError,
    )


def _settled(run: PayoutRun) -> bool:
    statuses = set(Payout.objects.filter(run=run).values_list("status", flat=True))
    state = PayoutRun.objects.filter(pk=run.pk).values_list("status", flat=True).get()
    return statuses <= TERMINAL and state == PayoutRunStatus.DONE


def drive_until_settled(
    run: PayoutRun, workers: Workers, *, timeout: float = RUN_TIMEOUT, also=None
) -> None:
    """Beat: sweep every BEAT_SECONDS, replacing dead workers, until the run is done (and
    `also()` holds) and no worker holds a task any more."""
    deadline = time.monotonic() + timeout
    t0, last = time.monotonic(), None
    while time.monotonic() < deadline:
        workers.revive()
        _beat_once()
        if os.environ.get("FAULT_DEBUG"):
            now = (
                sorted(Payout.objects.filter(run=run).values_list("pk", "status", "generation")),
                len(workers.processes),
                len(workers.deaths),
            )
            if now != last:
                print(f"    {time.monotonic() - t0:6.2f} {now}")
                last = now
        if _settled(run) and (also is None or also()) and workers.idle() and _settled(run):
            return
        time.sleep(BEAT_SECONDS)
    rows = list(
        Payout.objects.filter(run=run).values(
            "pk", "status", "generation", "attempts", "last_error"
        )
    )
    raise AssertionError(f"run {run.pk} not settled after {timeout}s: {rows}")


def _transfers_of(cycle: Cycle) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in stripe_client.transfers_list():
        meta = t.get("metadata") or {}
        if str(meta.get("cycle_id")) == str(cycle.pk):
            out.setdefault(str(meta.get("payout_id")), []).append(t["id"])
    return out


def assert_exactly_once(cycle: Cycle, control) -> dict[str, int]:
    rows = list(Payout.objects.filter(cycle=cycle))
    assert rows, "the cycle has no payouts"
    by_status = {s: sum(1 for p in rows if p.status == s) for s in {p.status for p in rows}}
    assert set(by_status) <= TERMINAL, by_status
    assert by_status.get(PayoutStatus.HELD) == 1, by_status  # the holder without an account
    transfers = _transfers_of(cycle)
    executed = ps.executed_transfer_keys(control)
    for p in rows:
        key = str(p.pk)
        if p.status == PayoutStatus.PAID:
            assert transfers.get(key) == [p.transfer_id], (p.pk, transfers.get(key))
            assert executed.get(key) == 1, (p.pk, executed.get(key))
            sent = JournalEntry.objects.filter(idempotency_key=f"payout:{p.pk}:sent").count()
            assert sent == 1, (p.pk, sent)
        else:
            assert key not in transfers and key not in executed, (p.pk, transfers.get(key))
    unbalanced = {c: v for c, v in ledger_trial_balance().items() if v}
    assert not unbalanced, unbalanced
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.PAID
    result = reconciliation.reconcile_cycle(cycle_id=cycle.pk)
    assert result.clean, result.mismatches
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED
    return by_status


# --- the tests --------------------------------------------------------------------------------


def _fired(workers: Workers, name: str) -> list[Path]:
    return list(workers.failpoints.glob(f"{name}.fired.*"))


def test_workers_killed_at_every_point_of_the_payout_task_pay_each_payout_exactly_once(
    scenario, workers, fault_stripe
):
    """RUNS runs; in each, KILL_POINTS are armed on three different payouts picked by the
    seed, so every run kills three workers (one at each point): 51 SIGKILLs in all, 17 at
    each point, each a separate worker process dying."""
    control = fault_stripe.control
    # Four workers: a run kills three, so one is always left to carry on while the others
    # are replaced (a worker takes seconds to boot; waiting for it would be most of a run).
    workers.count = 4
    workers.start()
    seeds = _seeds(1000, RUNS)
    for seed in seeds:
        with seeded(seed, "kill at every fail point") as rng:
            clock = Clock()
            cycle = scenario.approved_cycle(rng)
            clock.lap("build")
            armed: dict[str, Payout] = {}

            def arm(rows, rng=rng, armed=armed):
                connected = [p for p in rows if p.holder_id != scenario.unconnected.pk]
                for point, payout in zip(KILL_POINTS, rng.sample(connected, 3), strict=True):
                    armed[f"{point}@{payout.pk}"] = payout
                    (workers.failpoints / f"{point}@{payout.pk}").touch()

            run = scenario.start_run(cycle, arm=arm)
            # Beat runs and dead workers are replaced throughout, as in production: a killed
            # worker also loses the message it had prefetched, which only the sweeper resends.
            drive_until_settled(
                run, workers, also=lambda armed=armed: all(_fired(workers, n) for n in armed)
            )
            pids = [int(_fired(workers, name)[0].name.rsplit(".", 1)[1]) for name in armed]
            assert len(set(pids)) == len(pids), f"one process fired twice: {pids}"
            for pid in pids:
                wait_for(lambda pid=pid: workers.died_of_sigkill(pid), what=f"{pid} to die")
            clock.lap("kills and recovery")
            assert_exactly_once(cycle, control)
            clock.lap("checks")
            for name, payout in armed.items():
                payout.refresh_from_db()
                # Killed before the call: the look-up found nothing, the next key was used.
                # After it: the look-up found the transfer (or it was booked already).
                expected = 1 if name.startswith("payout.before_call") else 0
                assert payout.generation == expected, (name, payout.generation)
    assert [code for _, code in workers.deaths] == [-signal.SIGKILL] * (3 * len(seeds))


def test_redis_dropped_mid_run_loses_the_messages_and_the_sweeper_recovers_them(
    scenario, fault_stripe, private_redis, tmp_path
):
    """Redis killed (SIGKILL, no persistence) with the run's messages in it, restarted empty on
    the same port. Half the seeds freeze the workers before the run starts (every message of
    the run is lost); the others let a first payout through, then freeze them (mid-run)."""
    _require_services()
    control = fault_stripe.control
    pool = Workers(broker_url=private_redis.url, env=_worker_env(fault_stripe, tmp_path))
    with _broker(private_redis.url):
        pool.start()
        wait_for(lambda: _workers_ready(pool, private_redis), what="the workers to listen")
        try:
            for seed in _seeds(4000, 4):
                with seeded(seed, "redis dropped") as rng:
                    cycle = scenario.approved_cycle(rng)
                    if seed % 2 == 0:
                        pool.signal_all(signal.SIGSTOP)
                        run = scenario.start_run(cycle)
                    else:
                        run = scenario.start_run(cycle)
                        wait_for(
                            lambda run=run: Payout.objects.filter(
                                run=run, status=PayoutStatus.PAID
                            ).exists(),
                            what="a first payout",
                        )
                        pool.signal_all(signal.SIGSTOP)
                    time.sleep(rng.uniform(0.0, 0.2))
                    queued = private_redis.queued(pool.queue)
                    open_ = Payout.objects.filter(run=run).exclude(status__in=TERMINAL).count()
                    private_redis.kill()
                    pool.signal_all(signal.SIGCONT)
                    for _ in range(rng.randint(1, 4)):
                        _beat_once()  # beat fires while the broker is down
                        time.sleep(BEAT_SECONDS)
                    private_redis.start()
                    print(f"redis killed: {queued} queued, {open_} payouts open")
                    if seed % 2 == 0:  # frozen before the run: it cannot have finished
                        assert open_ > 0, "Redis was killed after the run had finished"
                    # (after a first payout, fast workers may have finished the run already:
                    # then the kill tests a broker lost between runs, still worth checking)
                    drive_until_settled(run, pool)
                    assert_exactly_once(cycle, control)
        finally:
            pool.signal_all(signal.SIGCONT)
            pool.stop()


# (path, method, status, after_effect): Stripe failing on the transfer, on the look-up by
# transfer group (GET /v1/transfers) and on the read-back after it (GET /v1/transfers/<id>).
STRIPE_FAULTS = [
    ("/v1/transfers", "POST", 500, False),
    ("/v1/transfers", "POST", 500, True),
    ("/v1/transfers", "POST", "timeout", False),
    ("/v1/transfers", "POST", "timeout", True),
    ("/v1/transfers", "GET", 500, False),
    ("/v1/transfers", "GET", "timeout", False),
    ("/v1/transfers/*", "GET", 500, False),
    ("/v1/transfers/*", "GET", "timeout", False),
]


def _stripe_cases() -> list[tuple[int, list[tuple]]]:
    """Every kind on its own, often enough (4) to outlast the SDK's two retries; then seeded
    mixes of two to four rules."""
    cases = [(5000 + i, [(*fault, 4)]) for i, fault in enumerate(STRIPE_FAULTS)]
    # Time-outs outlasting every payout's first attempt (5 x 3 tries) and the first try of
    # its second: the sweeper looks the payouts up while their second attempt is in flight.
    cases.append((5050, [("/v1/transfers", "POST", "timeout", False, 18)]))
    for seed in range(5100, 5106):
        rng = random.Random(seed)
        rules = [(*rng.choice(STRIPE_FAULTS), rng.randint(1, 5)) for _ in range(rng.randint(2, 4))]
        cases.append((seed, rules))
    only = os.environ.get("BLANKET_FAULT_SEEDS", "").strip()
    if only:
        wanted = {int(s) for s in only.split(",") if s.strip()}
        cases = [c for c in cases if c[0] in wanted]
    return cases


def test_stripe_500s_and_time_outs_never_make_a_second_transfer(
    scenario, workers, fault_stripe, settings
):
    control = fault_stripe.control
    settings.PAYOUT_STUCK_SECONDS = STUCK_SECONDS_SLOW_STRIPE
    for seed, rules in _stripe_cases():
        with seeded(seed, f"stripe faults {rules}") as rng:
            cycle = scenario.approved_cycle(rng)
            for path, method, status, after_effect, count in rules:
                control.failure_add(
                    path,
                    method=method,
                    status=status,
                    after_effect=after_effect,
                    count=count,
                    hang_seconds=1.5,
                )
            run = scenario.start_run(cycle)
            drive_until_settled(run, workers)
            control.failures_clear()
            assert_exactly_once(cycle, control)


def test_a_look_up_never_races_an_attempt_in_flight(scenario, workers, fault_stripe, settings):
    """Every payout's first attempt gets a 500 (nothing made, `last_error` recorded); the
    sweeper sends them again; two of the second attempts hang on their first try and succeed
    on the SDK's retry. Meanwhile beat keeps sweeping and idle workers wait for work: a
    look-up while the second attempt is in flight finds nothing, and resending then would
    make a second transfer when the retry lands."""
    control = fault_stripe.control
    settings.PAYOUT_STUCK_SECONDS = STUCK_SECONDS_SLOW_STRIPE
    workers.count = 4
    workers.start()
    with seeded(5200, "a look-up racing an attempt in flight") as rng:
        cycle = scenario.approved_cycle(rng)
        control.failure_add("/v1/transfers", method="POST", status=500, count=CONNECTED_HOLDERS)
        run = scenario.start_run(cycle)
        wait_for(
            lambda: (
                Payout.objects.filter(run=run, status=PayoutStatus.SUBMITTING)
                .exclude(last_error="")
                .count()
                == CONNECTED_HOLDERS
            ),
            what="every first attempt to fail",
        )
        control.failure_add(
            "/v1/transfers", method="POST", status="timeout", count=2, hang_seconds=1.5
        )
        drive_until_settled(run, workers)
        assert_exactly_once(cycle, control)


# --- seeded runs of every fault kind (bench/faults.py --job payouts runs 50 and more) -----------


class PayoutJob(Job):
    """One run: a fresh approved quarter, its payout run started, one fault (the kinds in
    turn: a worker killed at a fail point, Redis killed and restarted empty, a worker stalled
    past the stuck age, PostgreSQL restarted), with the run's message still queued or a worker
    waiting at a fail point of `payout_submit`."""

    name = "payouts"
    kill_points = KILL_POINTS
    mid_points = KILL_POINTS
    # A worker stalled at any of them past PAYOUT_STUCK_SECONDS: the sweeper takes the payout
    # over; before the call, the stalled worker must then not call Stripe under its old key
    # (`payouts._still_claimed`: without it, these runs made a second transfer).
    stall_points = KILL_POINTS
    terminal = frozenset({"settled"})

    def __init__(self, scenario: Scenario, control):
        self.scenario, self.control = scenario, control

    def submit(self, rng: random.Random) -> PayoutRun:
        return self.scenario.start_run(self.scenario.approved_cycle(rng))

    def state(self, handle: PayoutRun) -> str:
        return "settled" if _settled(handle) else handle.status

    def describe(self, handle: PayoutRun) -> str:
        return str(
            list(Payout.objects.filter(run=handle).values("pk", "status", "generation", "attempts"))
        )

    def sweep(self) -> None:
        _beat_once()

    def check(self, handle: PayoutRun) -> dict:
        ledger_check()
        return assert_exactly_once(handle.cycle, self.control)


def test_seeded_faults_of_every_kind_pay_each_payout_exactly_once(
    scenario, fault_stripe, private_redis, tmp_path
):
    env = _worker_env(fault_stripe, tmp_path)
    env.pop("BLANKET_FAILPOINT_DIR")
    job = PayoutJob(scenario, fault_stripe.control)
    with fault_pool(tmp_path, private_redis, count=3, **env) as pool:
        runner = FaultRunner(
            job, pool, private_redis, PrivatePostgres.from_env(), timeout=RUN_TIMEOUT
        )
        run_faults(runner, runs=runs_wanted(CI_RUNS), base=seed_base(6000))
