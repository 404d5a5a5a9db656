"""A whole quarter of a national society, end to end, on PostgreSQL + Redis + Celery (issue 10).

    .venv/bin/python bench/society.py --scale 0.01 --workers 1    # 10k works, 200k lines
    .venv/bin/python bench/society.py --scale 0.01 --workers 2    # same statements, 2 workers
    .venv/bin/python bench/society.py                             # 1M works, 200k holders,
                                                                  # 300 licensees, 20M lines

Generates a society from ``--seed`` (``bench/society_data.py``): at ``--scale 1`` 1,000,000
works (text, image, audio, code) in 20 agencies' catalogue files, 200,000 rights holders
(co-owned works, 0.3 % of works claimed twice: disputes), 300 licensees on 3 products, and
their usage declarations for the current quarter, 20,000,000 lines in all (Zipf-like
popularity, 5 % unknown identifiers, ISBN-10s, hyphens, upper-case hosts, default ports,
fragments...). Then runs the quarter through the real services, every asynchronous step on
``--workers`` real Celery worker processes (``--pool=solo``, one process each, as on N
machines) over Redis DB 11, with the local Stripe server (``stripe_local``) in this process:

  import        the agencies upload their catalogue files (``catalogue_import_start``)
  licences      each licensee quotes, buys by Checkout, Stripe's webhooks activate the licence
  declarations  each licensee files its declaration file (``declaration_file_start``)
  allocation    the operator allocates (``cycle_allocate``, ``ROYALTIES_ALLOCATION_PARTITIONS``)
  approval      the approver (another staff user) approves: ledger booked, statements published
  payouts       payable holders connect Stripe Express accounts, the approver starts the run,
                workers send one transfer per payout, webhooks confirm
  reconcile     ``reconcile_cycle`` checks Stripe against the ledger and closes the cycle

Licensees and rights holders are independent organisations, so they act at the same time as
they would in life: ``--actors`` (default 4) of them at once pay their Checkout sessions
(``licence_checkout_start`` and Stripe's payment page) and onboard their Express accounts
(``payout_account_connect`` and Stripe's onboarding form), each on its own thread and database
connection. Stripe, another independent party, delivers the webhooks it held the same way,
``--actors`` requests at once to the same receiving code as ``POST /stripe/webhook/``
(signature checked, stored once, processed on the workers), as Stripe does not deliver events
one at a time nor in order. The quotes and licences are still made one after the other, in
licensee order, so licence ids (which the allocation's checksum sees) are the same in every
run; ``--actors 1`` is the old one-by-one driver. Everything the society's own staff and
workers do stays as it was, and a stage still waits for its webhooks to be processed on the
workers.

Prints, per stage, seconds, rows and rows/s, the peak RSS (``VmHWM``, reset at the start of
each stage) of this process and of the largest worker, and the 1-minute load average; then the
totals identity, the allocation's checksum and a checksum of the statements keyed by stable
codes (holder registry code, catalogue, ``work_ref``: not database ids, which depend on the
order the workers import in). ``--results FILE`` appends the figures as one JSON line
(``bench/society_plot.py`` draws docs/img/scaling.svg from them).

``--chunk-rows R`` (``ROYALTIES_ALLOCATION_CHUNK_ROWS``, default the setting's: 10,000,000;
0: no chunks) bounds the allocation's memory: a cycle with more usage rows than R is allocated
chunk by chunk of about R rows in its one task (at ``--scale 1`` 9 chunks of declared
licences and 3 of proxy pools), each chunk's exact partial sums added up as they come, the
works and shares read once for every chunk, and a proxy pool's donor usage summed from the
chunks that priced the donors. At ``--scale 1`` it took the allocation worker from 2.2-2.3 to
1.6-1.7 GB for about 10-13 s more CPU (docs/scaling.md); the statements are the same.
``--partitions N`` (``ROYALTIES_ALLOCATION_PARTITIONS``, default 1) instead fans it out over
at least N map tasks, a chunk each at most, which write their partial sums to the database
for one reduce task: worth it with workers on N machines; on one 2-core machine the partials'
rows (millions at ``--scale 1``) cost minutes to write, sum and delete. The statements are the
same for any N and R.

``--stop-after STAGE`` ends the quarter after a stage (e.g. ``allocation``, to time the
stages before it). The whole quarter at ``--scale 1`` takes about 4.5 minutes on 2 quiet cores
with 2 workers (266.5 s; 343.5 s with 1 worker; docs/scaling.md), plus a minute to generate
the files and migrate.

Several machines: run the same workers anywhere with the same ``DATABASE_URL``,
``CELERY_BROKER_URL``, ``CELERY_TASK_DEFAULT_QUEUE``, ``STRIPE_API_BASE`` and a shared
``BLANKET_VAR_DIR`` (uploaded files), see docs/scaling.md; ``--workers 0`` starts none here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.declarations import _database_recreate  # noqa: E402
from bench.society_data import (  # noqa: E402
    catalogue_generate,
    declaration_generate,
    licence_lines,
)

QUEUE = "blanket_bench_society"
STAGES = ("import", "licences", "declarations", "allocation", "approval", "payouts", "reconcile")
PRODUCTS = (  # code, name, uses, media types, price (minor units a year)
    ("society-training", "Society training", ["training", "fine_tuning"], [], 5_000_000),
    ("society-rag", "Society retrieval", ["rag"], ["text", "image"], 1_200_000),
    ("society-code", "Society code models", ["training"], ["code", "text"], 2_500_000),
)


# ------------------------------------------------------------------------------------------
# Sizes, processes, memory
# ------------------------------------------------------------------------------------------


def sizes(scale: float) -> dict[str, int]:
    works = max(1000, round(1_000_000 * scale))
    return {
        "works": works,
        "holders": max(50, round(200_000 * scale)),
        "licensees": max(6, round(300 * scale)),
        "lines": max(10_000, round(20_000_000 * scale)),
        "files": max(2, min(20, math.ceil(works / 50_000))),
    }


def _status(pid: int | str = "self") -> dict[str, float]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def _reset_peak(pid: int | str = "self") -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _generate(workdir: str, size: dict, seed: int, undeclared: float) -> dict:
    """Every file of the society, in child processes (two at a time)."""
    cat_dir, decl_dir = Path(workdir, "catalogues"), Path(workdir, "declarations")
    cat_dir.mkdir(), decl_dir.mkdir()
    per_licence = licence_lines(
        licences=size["licensees"], lines=size["lines"], seed=seed, undeclared=undeclared
    )
    jobs = [
        (catalogue_generate, str(cat_dir / f"agency-{i:02d}.csv"),
         {"file_index": i, "files": size["files"], "works": size["works"],
          "holders": size["holders"], "seed": seed})
        for i in range(size["files"])
    ] + [
        (declaration_generate, str(decl_dir / f"licensee-{i:03d}.csv"),
         {"lines": int(n), "works": size["works"], "seed": seed, "number": i})
        for i, n in enumerate(per_licence) if n
    ]  # fmt: skip
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.starmap(_call, jobs)
    rows = sum(r.get("rows", 0) for r in results)
    return {"catalogue_rows": rows, "per_licence": [int(n) for n in per_licence]}


def _call(function, path, kwargs):
    return function(path, **kwargs)


def _env(args, url: str, var_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        CELERY_BROKER_URL=args.redis_url,
        CELERY_TASK_DEFAULT_QUEUE=QUEUE,
        BLANKET_VAR_DIR=var_dir,
        STRIPE_API_BASE=f"http://127.0.0.1:{args.stripe_port}",
        ROYALTIES_ALLOCATION_PARTITIONS=str(args.partitions),
        **(
            {"ROYALTIES_ALLOCATION_CHUNK_ROWS": str(args.chunk_rows)}
            if args.chunk_rows is not None
            else {}
        ),
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DEBUG="false",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


class Workers:
    """``count`` Celery worker processes (solo pool: one process, one task at a time)."""

    def __init__(self, count: int, env: dict[str, str], log_dir: str) -> None:
        self.processes = []
        for i in range(count):
            log = open(Path(log_dir, f"worker-{i + 1}.log"), "wb")  # noqa: SIM115
            self.processes.append(
                subprocess.Popen(
                    [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "--pool=solo",
                     "-Q", QUEUE, "-n", f"society{i + 1}-{os.getpid()}@%h",
                     "--loglevel=WARNING", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"],
                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
        self.log_dir = log_dir

    def ready(self, timeout: float = 120) -> float:
        """Wait until every worker answers a ping (Django set up, queue consumed)."""
        from config.celery import app

        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            if len(app.control.ping(timeout=0.5) or []) >= len(self.processes):
                return time.perf_counter() - started
        raise SystemExit("the workers did not answer in time")

    def reset_peaks(self) -> None:
        for p in self.processes:
            _reset_peak(p.pid)

    def peak_mb(self) -> float:
        return max((_status(p.pid).get("VmHWM", 0.0) for p in self.processes), default=0.0)

    def check(self) -> None:
        for i, p in enumerate(self.processes):
            if p.poll() is not None:
                log = Path(self.log_dir, f"worker-{i + 1}.log").read_text()[-3000:]
                raise SystemExit(f"worker {i + 1} exited ({p.returncode}):\n{log}")

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


class Stages:
    def __init__(self, workers: Workers | None) -> None:
        self.workers = workers
        self.rows: list[dict] = []

    def start(self) -> float:
        _reset_peak()
        if self.workers:
            self.workers.reset_peaks()
        return time.perf_counter()

    def done(self, name: str, started: float, rows: int, unit: str, note: str = "") -> None:
        seconds = time.perf_counter() - started
        row = {
            "stage": name,
            "seconds": round(seconds, 2),
            "rows": rows,
            "unit": unit,
            "per_second": round(rows / seconds) if seconds else 0,
            "driver_mb": round(_status().get("VmHWM", 0.0)),
            "worker_mb": round(self.workers.peak_mb()) if self.workers else 0,
            "load": round(os.getloadavg()[0], 2),
            "note": note,
        }
        self.rows.append(row)
        print(
            f"  {name:<13} {seconds:8.1f} s {rows:>12,} {unit:<12} {row['per_second']:>10,}/s "
            f"driver {row['driver_mb']:>6,} MB  worker {row['worker_mb']:>6,} MB  "
            f"load {row['load']:.2f}  {note}",
            flush=True,
        )


def _concurrently(items: list, action, actors: int) -> list:
    """``action(item)`` for every item, ``actors`` at a time on threads (independent users, each
    with its own database connection, closed when its thread is done); the results in the
    order of ``items``. The first error is raised once every thread has stopped."""
    from django.db import connections

    results: list = [None] * len(items)
    errors: list[BaseException] = []
    queue = iter(enumerate(items))
    lock = threading.Lock()

    def actor() -> None:
        try:
            while not errors:
                with lock:
                    nxt = next(queue, None)
                if nxt is None:
                    return
                results[nxt[0]] = action(nxt[1])
        except BaseException as exc:  # raised again in the calling thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=actor) for _ in range(max(1, min(actors, len(items))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _webhooks_deliver(control, actors: int) -> int:
    """``demo_webhooks_deliver`` with ``actors`` deliveries at once: every held webhook
    through the path of ``POST /stripe/webhook/`` (verify the signature, store once, enqueue
    its processing). Returns how many."""
    from licensing.services.stripe_events import stripe_event_receive
    from royalties.integrations.stripe_client import webhook_event_construct

    held = control.webhooks_held()
    control.webhooks_discard()

    def deliver(item) -> None:
        event = webhook_event_construct(
            item["payload"].encode("utf-8"), item["headers"]["Stripe-Signature"]
        )
        stripe_event_receive(event=event)

    _concurrently(held, deliver, actors)
    return len(held)


def _wait(what: str, done, workers: Workers | None, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = done()
        if result:
            return result
        if workers:
            workers.check()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


# ------------------------------------------------------------------------------------------
# The society's static parts (organisations, staff, products, policy): set-based SQL
# ------------------------------------------------------------------------------------------


def society_setup(size: dict, regime: str) -> dict:
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from accounts.models import Organisation, User
    from accounts.scoping import Caller
    from licensing.models import Catalogue
    from licensing.services.products import product_create
    from licensing.services.society import society_settings_update
    from royalties.services.cycles import policy_publish

    with transaction.atomic(), connection.cursor() as cursor:
        for prefix, kind, label, count in (
            ("RH", "rights_holder", "Holder", size["holders"]),
            ("LI", "licensee", "Licensee", size["licensees"]),
        ):
            cursor.execute(
                "INSERT INTO accounts_organisation (name, kind, code, country, isni, "
                "ipi_name_number, company_number, contact_email, created_at) "
                f"SELECT '{label} ' || n, '{kind}', '{prefix}-' || lpad(n::text, 6, '0'), 'GB', "
                "'', '', '', 'org' || n || '@bench.invalid', now() "
                "FROM generate_series(1, %s) n ORDER BY n",
                [count],
            )
            cursor.execute(
                "INSERT INTO accounts_registrysequence (prefix, last_value) VALUES (%s, %s) "
                "ON CONFLICT (prefix) DO UPDATE SET last_value = EXCLUDED.last_value",
                [prefix, count],
            )
        cursor.execute("ANALYZE accounts_organisation")
    operator = User.objects.create_user(
        "operator@bench.invalid", full_name="Bench Operator", is_staff=True
    )
    operator.groups.add(Group.objects.get(name="operator"))
    approver = User.objects.create_user(
        "approver@bench.invalid", full_name="Bench Approver", is_staff=True
    )
    approver.groups.add(Group.objects.get(name="approver"))
    staff = Caller(user=operator, organisation=None)
    society_settings_update(caller=staff, consent_regime=regime)
    catalogues = []
    for i in range(size["files"]):
        agency = Organisation.objects.get(code=f"RH-{i + 1:06d}")
        catalogues.append(
            Catalogue.objects.create(
                owner=agency,
                name=f"Agency {i + 1} repertoire",
                media_type="text",
                default_consent="licensed",
            )
        )
    products = [
        product_create(
            caller=staff, code=code, name=name, description="bench/society.py",
            uses=uses, media_types=media, territory="WORLD", term_months=12, currency="EUR",
            minimum_fee_minor=0, ai_revenue_share_bp=None,
            tiers=[{"name": "Flat", "price_minor": price}],
        )
        for code, name, uses, media, price in PRODUCTS
    ]  # fmt: skip
    policy_publish(
        caller=staff,
        admin_fee_bp=1500,
        fee_bp_by_product={PRODUCTS[1][0]: 1000},
        fee_bp_by_media={"audio": 2000},
        media_weight_bp={"image": 5000},
        threshold_minor=2_500,
        fallback="proxy",
        note="bench/society.py",
    )
    return {
        "operator": operator,
        "approver": approver,
        "catalogues": catalogues,
        "products": products,
    }


# ------------------------------------------------------------------------------------------
# The quarter
# ------------------------------------------------------------------------------------------


def quarter_run(args, size: dict, files: dict, workdir: str, workers: Workers | None) -> dict:
    from django.core.files import File
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Organisation, Role
    from accounts.scoping import Caller
    from licensing.demo_declarations import current_quarter
    from licensing.models import CatalogueImport, Licence, LicenceStatus, UsageDeclaration
    from licensing.services.declarations import declaration_file_start
    from licensing.services.imports import catalogue_import_start
    from licensing.services.licences import (
        cash_account,
        licence_checkout_start,
        licence_from_quote,
        quote_create,
    )
    from royalties.integrations import stripe_client
    from royalties.models import Cycle, CycleStatus, PayoutAccount, Statement
    from royalties.services.cycles import cycle_allocate, cycle_approve, cycle_create
    from royalties.services.ledger import Line, journal_entry_post
    from royalties.services.payouts import payout_account_connect, payout_run_start
    from royalties.services.reconciliation import reconcile_cycle
    from stripe_local import LocalStripe

    timeout = args.stage_timeout
    stages = Stages(workers)
    print(
        "\nStage            seconds         rows              rate   peak RSS (VmHWM)", flush=True
    )

    t = stages.start()
    society = society_setup(size, args.regime)
    stages.done("setup", t, size["holders"] + size["licensees"], "orgs", "(not the quarter)")

    server = LocalStripe(host="127.0.0.1", port=args.stripe_port)
    server.start()
    control = server.control
    from django.conf import settings

    control.webhook_endpoint_create(
        "http://127.0.0.1:9/stripe/webhook/", secret=settings.STRIPE_WEBHOOK_SECRET
    )
    control.webhooks_hold()
    quarter_started = time.perf_counter()
    try:
        # --- import ----------------------------------------------------------------------
        t = stages.start()
        jobs = []
        for catalogue, path in zip(
            society["catalogues"], sorted(Path(workdir, "catalogues").iterdir()), strict=True
        ):
            caller = Caller(user=None, organisation=catalogue.owner, role=Role.OWNER)
            with open(path, "rb") as handle:
                jobs.append(
                    catalogue_import_start(
                        caller=caller, catalogue=catalogue,
                        uploaded_file=File(handle, name=path.name),
                    ).pk
                )  # fmt: skip

        def imports_done():
            states = list(
                CatalogueImport.objects.filter(pk__in=jobs).values_list("status", "message")
            )
            if all(s in ("succeeded", "failed") for s, _ in states):
                return states
            return None

        states = _wait("imports", imports_done, workers, timeout)
        failed = [m for s, m in states if s != "succeeded"]
        if failed:
            raise SystemExit(f"import failed: {failed[:3]}")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM licensing_work), (SELECT count(*) FROM "
                "licensing_work WHERE status = 'disputed')"
            )
            n_works, n_disputed = cursor.fetchone()
            cursor.execute("ANALYZE")
        stages.done(
            "import", t, files["catalogue_rows"], "rows",
            f"{n_works:,} works, {n_disputed:,} disputed, {len(jobs)} files",
        )  # fmt: skip

        if args.stop_after == "import":
            raise _Stop(stages, quarter_started)
        # --- licences --------------------------------------------------------------------
        t = stages.start()
        licensees = list(Organisation.objects.filter(code__startswith="LI-").order_by("code"))
        buyers = []
        for i, licensee in enumerate(licensees):  # in order: the same licence ids every run
            caller = Caller(user=None, organisation=licensee, role=Role.OWNER)
            product = society["products"][i % len(society["products"])]
            quote = quote_create(
                caller=caller, product=product, annual_revenue_minor=10_000_000 * (1 + i % 7),
                training_volume=1_000_000,
            )  # fmt: skip
            buyers.append((caller, licence_from_quote(caller=caller, quote=quote)))

        def buy(buyer) -> int:  # one licensee: Checkout, then pays on Stripe's page
            caller, licence = buyer
            payment = licence_checkout_start(caller=caller, licence=licence)
            control.checkout_session_pay(
                payment.checkout_session_id, email=caller.organisation.contact_email
            )
            return licence.pk

        licences = _concurrently(buyers, buy, args.actors)
        _webhooks_deliver(control, args.actors)
        _wait(
            "licences",
            lambda: (
                Licence.objects.filter(pk__in=licences, status=LicenceStatus.ACTIVE).count()
                == len(licences)
            ),
            workers,
            timeout,
        )
        stages.done("licences", t, len(licences), "licences", "quote, Checkout, webhook")

        if args.stop_after == "licences":
            raise _Stop(stages, quarter_started)
        # --- declarations ----------------------------------------------------------------
        t = stages.start()
        period = current_quarter()
        declared = []
        for i, pk in enumerate(licences):
            n = files["per_licence"][i]
            if not n:
                continue
            licence = Licence.objects.select_related("licensee").get(pk=pk)
            caller = Caller(user=None, organisation=licence.licensee, role=Role.OWNER)
            path = Path(workdir, "declarations", f"licensee-{i:03d}.csv")
            with open(path, "rb") as handle:
                declared.append(
                    declaration_file_start(
                        caller=caller, licence=licence, period=period, model_name="bench-model",
                        model_version="1", uploaded_file=File(handle, name=path.name),
                    ).pk
                )  # fmt: skip

        def declarations_done():
            rows = list(
                UsageDeclaration.objects.filter(pk__in=declared).values_list("status", "message")
            )
            if all(s in ("accepted", "rejected", "failed") for s, _ in rows):
                return rows
            return None

        states = _wait("declarations", declarations_done, workers, timeout)
        bad = [m for s, m in states if s != "accepted"]
        if bad:
            raise SystemExit(f"{len(bad)} declarations not accepted: {bad[:3]}")
        lines = sum(files["per_licence"])
        stages.done(
            "declarations", t, lines, "lines",
            f"{len(declared)} files, {len(licences) - len(declared)} licences undeclared",
        )  # fmt: skip

        if args.stop_after == "declarations":
            raise _Stop(stages, quarter_started)
        # --- allocation ------------------------------------------------------------------
        t = stages.start()
        operator = Caller(user=society["operator"], organisation=None)
        approver = Caller(user=society["approver"], organisation=None)
        cycle = cycle_create(caller=operator, period=period)
        cycle_allocate(caller=operator, cycle=cycle)

        def allocated():
            c = Cycle.objects.get(pk=cycle.pk)
            return c if c.status in (CycleStatus.ALLOCATED, CycleStatus.FAILED) else None

        cycle = _wait("allocation", allocated, workers, timeout)
        if cycle.status != CycleStatus.ALLOCATED:
            raise SystemExit(f"allocation failed: {cycle.message}")
        allocation = cycle.current_allocation
        n_statements = Statement.objects.filter(allocation=allocation).count()
        partitions = allocation.timings.get("partitions", 1)
        stages.done(
            "allocation", t, n_statements, "statements",
            f"partitions {partitions}; service timings {allocation.timings}",
        )  # fmt: skip

        if args.stop_after == "allocation":
            raise _Stop(stages, quarter_started)
        # --- approval --------------------------------------------------------------------
        t = stages.start()
        cycle = cycle_approve(caller=approver, cycle=cycle)
        stages.done("approval", t, n_statements, "statements", "ledger booked, published")

        if args.stop_after == "approval":
            raise _Stop(stages, quarter_started)
        # --- payouts ---------------------------------------------------------------------
        t = stages.start()
        payable = list(
            Statement.objects.filter(allocation=allocation, payable_minor__gt=0)
            .select_related("holder")
            .order_by("holder__code")
        )
        # 1 % of payable holders never connect an account: their payouts are held.
        connect = [s.holder for k, s in enumerate(payable) if k % 100 != 99]

        def onboard(holder) -> None:  # one holder: connect, then Stripe's onboarding form
            payout_account_connect(
                caller=Caller(user=None, organisation=holder, role=Role.OWNER),
                return_url="http://127.0.0.1:8000/payouts/return/",
                refresh_url="http://127.0.0.1:8000/payouts/refresh/",
            )
            control.account_complete_onboarding(
                PayoutAccount.objects.filter(organisation=holder)
                .values_list("stripe_account_id", flat=True)
                .get()
            )

        _concurrently(connect, onboard, args.actors)
        _webhooks_deliver(control, args.actors)  # account.updated -> processed on the workers
        _wait(
            "payout accounts",
            lambda: (
                PayoutAccount.objects.filter(organisation__in=[h.pk for h in connect])
                .filter(payouts_enabled=True)
                .count()
                == len(connect)
            ),
            workers,
            timeout,
        )
        onboarding = time.perf_counter() - t
        control.balance_release()
        needed = sum(s.payable_minor for s in payable)
        shortfall = needed - stripe_client.balance_available(cycle.currency)
        if shortfall > 0:
            control.balance_fund(shortfall, cycle.currency.lower())
            journal_entry_post(
                idempotency_key=f"bench:topup:cycle:{cycle.pk}",
                lines=[
                    Line(cash_account(via="stripe", currency=cycle.currency), shortfall),
                    Line(cash_account(via="bank", currency=cycle.currency), -shortfall),
                ],
                source_type="topup",
                source_id=cycle.pk,
                description=f"{cycle.period} Stripe balance topped up for payouts",
                effective_date=timezone.localdate(),
                created_by=society["approver"],
            )
        payout_run_start(caller=approver, cycle=cycle)
        cycle = _wait(
            "payouts",
            lambda: (c := Cycle.objects.get(pk=cycle.pk)).status == CycleStatus.PAID and c,
            workers,
            timeout,
            every=1.0,
        )
        stages.done(
            "payouts", t, len(payable), "payouts",
            f"{len(connect):,} accounts onboarded in {onboarding:.1f} s (in the stage)",
        )  # fmt: skip

        if args.stop_after == "payouts":
            raise _Stop(stages, quarter_started)
        # --- reconciliation --------------------------------------------------------------
        t = stages.start()
        _webhooks_deliver(control, args.actors)  # transfer.created
        reconciliation = reconcile_cycle(cycle_id=cycle.pk)
        stages.done(
            "reconcile", t, reconciliation.checked.get("transfers", 0), "transfers",
            "clean" if reconciliation.clean else f"{len(reconciliation.mismatches)} mismatches",
        )  # fmt: skip
        quarter = time.perf_counter() - quarter_started
    finally:
        server.stop()

    cycle.refresh_from_db()
    allocation = cycle.current_allocation
    totals = allocation.totals
    identity = totals["fee_minor"] + totals["holders_minor"] + totals["suspense_minor"]
    return {
        "stages": stages.rows,
        "quarter_seconds": round(quarter, 1),
        "cycle_status": cycle.status,
        "totals": {k: totals.get(k) for k in ("pool_minor", "releases_minor", "in_minor",
                                             "fee_minor", "holders_minor", "suspense_minor")},
        "identity": identity == totals["in_minor"],
        "allocation_checksum": allocation.checksum,
        "statements_checksum": statements_checksum(allocation.pk),
        "reconciliation_clean": reconciliation.clean,
    }  # fmt: skip


class _Stop(Exception):  # not an error: --stop-after
    def __init__(self, stages: Stages, started: float) -> None:
        self.stages, self.seconds = stages, time.perf_counter() - started


def checksums() -> dict[str, str]:
    """The checksums of the latest allocation, if there is one (--stop-after)."""
    from royalties.models import Allocation

    allocation = Allocation.objects.order_by("-pk").first()
    if allocation is None or not allocation.checksum:
        return {}
    return {
        "allocation_checksum": allocation.checksum,
        "statements_checksum": statements_checksum(allocation.pk),
    }


def statements_checksum(allocation_id: int) -> str:
    """sha256 over the statements and their work lines, keyed by registry code, catalogue name
    and work_ref (stable across runs; database ids are not when imports run concurrently)."""
    from django.db import connection

    digest = hashlib.sha256()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.code, s.brought_forward_minor, s.gross_minor, s.deductions_minor, "
            "s.earned_minor, s.total_minor, s.payable_minor, s.carried_forward_minor "
            "FROM royalties_statement s JOIN accounts_organisation o ON o.id = s.holder_id "
            "WHERE s.allocation_id = %s ORDER BY o.code",
            [allocation_id],
        )
        for row in cursor:
            digest.update(repr(row).encode())
        cursor.execute(
            "SELECT o.code, c.name, w.work_ref, l.quantity, l.amount_minor "
            "FROM royalties_statementworkline l "
            "JOIN royalties_statement s ON s.id = l.statement_id "
            "JOIN accounts_organisation o ON o.id = s.holder_id "
            "JOIN licensing_work w ON w.id = l.work_id "
            "JOIN licensing_catalogue c ON c.id = w.catalogue_id "
            "WHERE s.allocation_id = %s ORDER BY 1, 2, 3",
            [allocation_id],
        )
        while rows := cursor.fetchmany(100_000):
            for row in rows:
                digest.update(repr(row).encode())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 1M works, 20M lines")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker processes")
    parser.add_argument(
        "--partitions", type=int, default=1,
        help="allocation map tasks at least (ROYALTIES_ALLOCATION_PARTITIONS); 1: one task, "
        "chunk by chunk",
    )  # fmt: skip
    parser.add_argument(
        "--chunk-rows", type=int, default=None,
        help="usage rows an allocation task holds at most (ROYALTIES_ALLOCATION_CHUNK_ROWS; "
        "default: the setting's, 10,000,000 unless set in the environment; 0: no chunks)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=20261001)
    parser.add_argument("--regime", choices=("opt_out", "opt_in"), default="opt_out")
    parser.add_argument("--undeclared", type=float, default=0.10)
    parser.add_argument("--database-url", help="default blanket_bench_society_<scale>_w<N>")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--stripe-port", type=int, default=12911)
    parser.add_argument("--stage-timeout", type=float, default=3600)
    parser.add_argument(
        "--actors", type=int, default=4,
        help="licensees buying and holders onboarding at the same time (1: one by one)",
    )  # fmt: skip
    parser.add_argument("--results", help="append this run's figures as one JSON line here")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument(
        "--stop-after",
        choices=STAGES,
        help="end the quarter after this stage (e.g. allocation, when approval cannot finish)",
    )
    args = parser.parse_args()

    size = sizes(args.scale)
    tag = f"{args.scale:g}".replace(".", "_")
    url = args.database_url or (
        f"postgres://postgres@127.0.0.1:5432/blanket_bench_society_{tag}_w{args.workers}"
    )
    workdir = tempfile.mkdtemp(prefix="blanket-bench-society-")
    var_dir = os.path.join(workdir, "var")
    os.makedirs(var_dir)
    print(f"Society at scale {args.scale:g}: {json.dumps(size)}; seed {args.seed}; "
          f"{args.workers} worker(s), {args.partitions} partition(s), {args.regime}; "
          f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    started = time.perf_counter()
    files = _generate(workdir, size, args.seed, args.undeclared)
    print(f"Generated {size['files']} catalogue files ({files['catalogue_rows']:,} rows) and "
          f"{sum(1 for n in files['per_licence'] if n)} declaration files "
          f"({sum(files['per_licence']):,} lines) in {time.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip

    env = _env(args, url, var_dir)
    os.environ.update(env)
    _database_recreate(url)
    import django
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"Migrated {url.rsplit('/', 1)[1]} in {time.perf_counter() - started:.1f} s", flush=True)
    workers = Workers(args.workers, env, workdir) if args.workers else None
    try:
        if workers:
            print(f"{args.workers} worker(s) ready in {workers.ready():.1f} s", flush=True)
        try:
            result = quarter_run(args, size, files, workdir, workers)
        except _Stop as stop:
            result = {"stages": stop.stages.rows, "quarter_seconds": round(stop.seconds, 1),
                      "stopped_after": args.stop_after, **checksums()}  # fmt: skip
    finally:
        if workers:
            workers.stop()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if "stopped_after" in result:
        print(f"\nStopped after {args.stop_after}: {result['quarter_seconds']:.1f} s")
        for name in ("allocation_checksum", "statements_checksum"):
            if name in result:
                print(f"{name.replace('_', ' ').capitalize():<21}{result[name]}")
        _record(args, size, result)
        return
    t = result["totals"]
    print(f"\nQuarter (import .. reconcile): {result['quarter_seconds']:.1f} s (target < 300 s); "
          f"cycle {result['cycle_status']}; reconciliation "
          f"{'clean' if result['reconciliation_clean'] else 'NOT clean'}")  # fmt: skip
    print(
        f"Identity: pool {t['pool_minor']:,} + releases {t['releases_minor']:,} = in "
        f"{t['in_minor']:,} = fee {t['fee_minor']:,} + holders {t['holders_minor']:,} + "
        f"suspense {t['suspense_minor']:,} -> {'OK' if result['identity'] else 'BROKEN'}"
    )
    print(f"Allocation checksum  {result['allocation_checksum']}")
    print(f"Statements checksum  {result['statements_checksum']}  (stable keys)")
    _record(args, size, result)
    if not result["identity"]:
        raise SystemExit(1)


def _chunk_rows() -> int:
    """The chunk the run's workers used (its environment is theirs)."""
    from django.conf import settings

    return settings.ROYALTIES_ALLOCATION_CHUNK_ROWS


def _record(args, size: dict, result: dict) -> None:
    if args.results:
        record = {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "scale": args.scale, "workers": args.workers, "partitions": args.partitions,
            "chunk_rows": _chunk_rows(),
            "regime": args.regime, "seed": args.seed, **size, **result,
        }  # fmt: skip
        with open(args.results, "a") as out:
            out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
