"""Payout cycle at scale: allocation of one period from the database to stored statements, on
PostgreSQL, through the services (issue 6).

    .venv/bin/python bench/cycle.py                       # 1M works, 200k holders, 300 licences,
                                                          # aggregates of 10M declaration lines
    .venv/bin/python bench/cycle.py --reuse-database      # allocate again, registry kept
    .venv/bin/python bench/cycle.py --works 100000 --holders 20000 --licences 60 --lines 1000000

The database (default ``postgres://postgres@127.0.0.1:5432/blanket_bench_cycle``) is dropped,
recreated and migrated unless ``--reuse-database`` is given (then the data of an earlier run is
kept and only its payout cycles are removed). Everything is generated from ``--seed`` and
loaded with COPY or set-based SQL, in a child process (so the peak RSS reported is the
allocation's, not the data build's):

- ``--holders`` rights-holder organisations (codes ``RH-000001``...), 100 licensees;
- ``--works`` works in ``works // 500`` catalogues, media types text/image/audio/code, each with
  1-3 holders (80/15/5 %) whose shares sum to 100 % (2 % of works to 80 %, the rest in
  suspense as an unassigned share); 0.5 % of works disputed, 0.5 % reserved for training;
- ``--licences`` active licences on 3 products (one declared monthly), 12-month terms that
  overlap the period, each with a succeeded payment (processor fee 1.5 % + 0.25);
- accepted usage declarations for the period: ``--undeclared`` (10 %) of licences have none, a
  fifth of those a nil one instead (the policy's proxy applies to both), the monthly product's
  licences three monthly ones, the others one quarterly one. Their stored aggregates
  (``DeclarationWorkUsage`` per (declaration, work), ``DeclarationUnmatched`` per identifier)
  are those of ``--lines`` declaration lines with Zipf-like work popularity (rank = works x U^3)
  and 5 % unmatched identifiers (drawn the same way from a pool of works / 5 unknown ISBNs),
  written directly: the matching itself is ``bench/declarations.py``'s business;
- distribution policy v1 (15 % fee, 10 % on one product, 20 % on audio; images weigh 0.5;
  threshold 25.00; proxy fallback) and two society staff users (operator, approver).

Then, in this process: ``cycle_create`` and ``--runs`` allocations through ``cycle_allocate``
(Celery runs eagerly without a broker, so the job ``cycle_allocate_run`` runs in-process; a
second run re-allocates the allocated cycle). Prints the service's stage timings
(``Allocation.timings``: load, engine, write, total) with the rows of each stage and a finer
breakdown taken by wrapping the service's helpers (selector queries, the engine's own stages,
each COPY / bulk insert), the statements and lines written, the totals identity, the checksum
of every run and whether they agree, wall time and peak RSS (``ru_maxrss`` and ``VmHWM``).
Targets (issue 6): the whole allocation under 20 s and 1.5 GB peak RSS on 2 cores, the engine
alone under 3 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.declarations import (  # noqa: E402
    UNKNOWN_BASE,
    _copy,
    _database_recreate,
    _django_setup,
    _in_child,
    isbn13,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/blanket_bench_cycle"
MEDIA = np.array(["text", "image", "audio", "code"])
PRODUCTS = [  # code, name, declaration period
    ("bench-training", "Bench training", "quarter"),
    ("bench-finetune", "Bench fine-tuning", "month"),
    ("bench-rag", "Bench retrieval", "quarter"),
]
LICENSEES = 100
MARKER = "bench/cycle.py data"  # LicenceProduct.description of the first product: the parameters


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------


def _text(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


def _const(n: int, value) -> pa.Array:
    if isinstance(value, bool):
        return pa.array(np.full(n, value), pa.bool_())
    if isinstance(value, int):
        return pa.array(np.full(n, value, dtype=np.int64))
    return _text(np.full(n, value, dtype=object))


def _status_mb() -> dict[str, float]:
    """VmRSS and VmHWM (peak) of this process, MB."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return out


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); ru_maxrss cannot be."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:  # pragma: no cover
        return False


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _zipf_ranks(rng: np.random.Generator, size: int, n: int) -> np.ndarray:
    """Zipf-like ranks in 0..size-1 (density ~ rank^-2/3), as bench/engine.py draws them."""
    return np.minimum((size * rng.random(n) ** 3).astype(np.int64), size - 1)


# ------------------------------------------------------------------------------------------
# The data (in a child process)
# ------------------------------------------------------------------------------------------


def data_build(url: str, var_dir: str, params: dict) -> None:
    _django_setup(url, var_dir)
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"  migrated in {time.perf_counter() - started:.1f} s", flush=True)
    _data_load(**params)


def _data_load(
    *, works: int, holders: int, licences: int, lines: int, seed: int, undeclared: float
) -> None:
    from django.contrib.auth.models import Group
    from django.db import connection, transaction

    from accounts.models import User
    from accounts.scoping import Caller
    from licensing.models import LicenceProduct
    from royalties.services.cycles import policy_publish

    if holders < 7:
        raise SystemExit("--holders must be at least 7")
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC).isoformat()
    step = time.perf_counter()

    def done(what: str) -> None:
        nonlocal step
        print(f"  {what} in {time.perf_counter() - step:.1f} s", flush=True)
        step = time.perf_counter()

    with transaction.atomic(), connection.cursor() as cursor:
        # Organisations, set-based; registry codes as the sequence would give them.
        cursor.execute(
            "INSERT INTO accounts_organisation (name, kind, code, country, isni, ipi_name_number,"
            " company_number, contact_email, created_at) "
            "SELECT 'Holder ' || n, 'rights_holder', 'RH-' || lpad(n::text, 6, '0'), 'GB', '', "
            "'', '', '', now() FROM generate_series(1, %s) n ORDER BY n",
            [holders],
        )
        cursor.execute(
            "INSERT INTO accounts_organisation (name, kind, code, country, isni, ipi_name_number,"
            " company_number, contact_email, created_at) "
            "SELECT 'Licensee ' || n, 'licensee', 'LI-' || lpad(n::text, 6, '0'), 'GB', '', "
            "'', '', '', now() FROM generate_series(1, %s) n ORDER BY n",
            [LICENSEES],
        )
        cursor.execute(
            "INSERT INTO accounts_registrysequence (prefix, last_value) VALUES ('RH', %s), "
            "('LI', %s) ON CONFLICT (prefix) DO UPDATE SET last_value = EXCLUDED.last_value",
            [holders, LICENSEES],
        )
        cursor.execute(
            "SELECT id FROM accounts_organisation WHERE kind = 'rights_holder' ORDER BY code"
        )
        holder_ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        cursor.execute("SELECT id FROM accounts_organisation WHERE kind = 'licensee' ORDER BY code")
        licensee_ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        done(f"{holders:,} holders and {LICENSEES} licensees (SQL)")

        # Catalogues and works.
        n_cat = max(4, works // 500)
        cat_ids = np.arange(1, n_cat + 1, dtype=np.int64)
        cat_media = MEDIA[(cat_ids - 1) % len(MEDIA)]
        _copy(
            cursor,
            "licensing_catalogue",
            "id, owner_id, name, media_type, default_consent, created_at, updated_at",
            pa.table(
                {
                    "id": cat_ids,
                    "owner_id": holder_ids[(cat_ids - 1) * 97 % holders],
                    "name": pc.binary_join_element_wise(
                        "Catalogue ", pc.cast(pa.array(cat_ids), pa.string()), ""
                    ),
                    "media_type": _text(cat_media),
                    "default_consent": _const(n_cat, "licensed"),
                    "created_at": _const(n_cat, now),
                    "updated_at": _const(n_cat, now),
                }
            ),
        )
        ids = np.arange(1, works + 1, dtype=np.int64)
        catalogue = rng.integers(0, n_cat, works)
        disputed = rng.random(works) < 0.005
        reserved = rng.random(works) < 0.005
        _copy(
            cursor,
            "licensing_work",
            "id, catalogue_id, work_ref, title, media_type, status, consent_training, "
            "consent_fine_tuning, consent_rag, created_at, updated_at",
            pa.table(
                {
                    "id": ids,
                    "catalogue_id": cat_ids[catalogue],
                    "work_ref": pc.cast(pa.array(ids), pa.string()),
                    "title": pc.binary_join_element_wise(
                        "Work ", pc.cast(pa.array(ids), pa.string()), ""
                    ),
                    "media_type": _text(cat_media[catalogue]),
                    "status": _text(np.where(disputed, "disputed", "active").astype(object)),
                    "consent_training": _text(np.where(reserved, "reserved", "").astype(object)),
                    "consent_fine_tuning": _const(works, ""),
                    "consent_rag": _const(works, ""),
                    "created_at": _const(works, now),
                    "updated_at": _const(works, now),
                }
            ),
        )
        done(f"{n_cat:,} catalogues and {works:,} works (COPY)")

        # Shares: 1-3 distinct holders a work; 2 % of works only 80 % assigned.
        n_holders = rng.choice([1, 2, 3], size=works, p=[0.80, 0.15, 0.05])
        share_work = np.repeat(ids, n_holders)
        position = np.arange(len(share_work)) - np.repeat(
            np.cumsum(n_holders) - n_holders, n_holders
        )
        first = rng.integers(0, holders, works)
        holder_index = (np.repeat(first, n_holders) + position * (holders // 3 + 1)) % holders
        whole = np.repeat(np.where(rng.random(works) < 0.02, 800_000, 1_000_000), n_holders)
        split = np.repeat(rng.integers(100_000, 600_000, works), n_holders)
        count = np.repeat(n_holders, n_holders)
        third = (whole - split) // 2
        ppm = np.select(
            [count == 1, position == 0, count == 2, position == 1],
            [whole, split, whole - split, third],
            whole - split - third,
        )
        roles = np.array(["author", "publisher", "other"], dtype=object)
        _copy(
            cursor,
            "licensing_share",
            "work_id, holder_id, role, share_ppm",
            pa.table(
                {
                    "work_id": share_work,
                    "holder_id": holder_ids[holder_index],
                    "role": _text(roles[position]),
                    "share_ppm": ppm.astype(np.int64),
                }
            ),
        )
        done(f"{len(share_work):,} shares (COPY)")

        # Products, licences and their payments.
        cursor.execute(
            "INSERT INTO licensing_licenceproduct (code, name, description, uses, media_types, "
            "territory, term_months, declaration_period, currency, minimum_fee_minor, active, "
            "created_at) VALUES "
            + ", ".join(
                ["(%s, %s, %s, '[\"training\"]', '[]', 'WORLD', 12, %s, 'EUR', 0, true, now())"] * 3
            )
            + " RETURNING id",
            [
                value
                for i, (code, name, period) in enumerate(PRODUCTS)
                for value in (
                    code,
                    name,
                    (
                        MARKER
                        + " "
                        + json.dumps(
                            {
                                "works": works,
                                "holders": holders,
                                "licences": licences,
                                "lines": lines,
                                "seed": seed,
                            }
                        )
                    )
                    if i == 0
                    else "",
                    period,
                )
            ],
        )
        product_ids = np.array([r[0] for r in cursor.fetchall()], dtype=np.int64)
        lic_ids = np.arange(1, licences + 1, dtype=np.int64)
        lic_product = rng.integers(0, len(PRODUCTS), licences)
        period_start, period_end = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
        # 12-month terms that overlap the period: the first day between a year before its end
        # and its last day.
        earliest = period_end - dt.timedelta(days=364)
        offsets = rng.integers(0, (period_end - earliest).days + 1, licences)
        starts = [earliest + dt.timedelta(days=int(d)) for d in offsets]
        ends = [
            s.replace(year=s.year + 1) - dt.timedelta(days=1)
            if not (s.month == 2 and s.day == 29)
            else dt.date(s.year + 1, 2, 28)
            for s in starts
        ]
        amount = np.round(np.exp(rng.normal(np.log(5_000_000), 1.0, licences))).astype(np.int64)
        amount = np.clip(amount, 100_000, 500_000_000)
        _copy(
            cursor,
            "licensing_licence",
            "id, licensee_id, product_id, status, payment_method, amount_minor, currency, uses, "
            "media_types, territory, starts_on, ends_on, created_at, activated_at",
            pa.table(
                {
                    "id": lic_ids,
                    "licensee_id": licensee_ids[(lic_ids - 1) % LICENSEES],
                    "product_id": product_ids[lic_product],
                    "status": _const(licences, "active"),
                    "payment_method": _const(licences, "checkout"),
                    "amount_minor": amount,
                    "currency": _const(licences, "EUR"),
                    "uses": _const(licences, '["training"]'),
                    "media_types": _const(licences, "[]"),
                    "territory": _const(licences, "WORLD"),
                    "starts_on": _text([s.isoformat() for s in starts]),
                    "ends_on": _text([e.isoformat() for e in ends]),
                    "created_at": _const(licences, now),
                    "activated_at": _const(licences, now),
                }
            ),
        )
        _copy(
            cursor,
            "licensing_payment",
            "licence_id, method, status, amount_minor, fee_minor, refunded_minor, currency, "
            "idempotency_key, checkout_session_id, checkout_url, invoice_id, invoice_url, "
            "payment_intent_id, charge_id, balance_transaction_id, reference, failure_message, "
            "created_at, paid_at",
            pa.table(
                {
                    "licence_id": lic_ids,
                    "method": _const(licences, "checkout"),
                    "status": _const(licences, "succeeded"),
                    "amount_minor": amount,
                    "fee_minor": amount * 15 // 1000 + 25,
                    "refunded_minor": _const(licences, 0),
                    "currency": _const(licences, "EUR"),
                    "idempotency_key": pc.binary_join_element_wise(
                        "bench-", pc.cast(pa.array(lic_ids), pa.string()), ""
                    ),
                    **{
                        name: _const(licences, "")
                        for name in (
                            "checkout_session_id",
                            "checkout_url",
                            "invoice_id",
                            "invoice_url",
                            "payment_intent_id",
                            "charge_id",
                            "balance_transaction_id",
                            "reference",
                            "failure_message",
                        )
                    },
                    "created_at": _const(licences, now),
                    "paid_at": _text([f"{s.isoformat()}T00:00:00+00:00" for s in starts]),
                }
            ),
        )
        done(f"{licences} licences on {len(PRODUCTS)} products with payments (COPY)")

        # Declarations: none or nil (--undeclared), three monthly or one quarterly.
        kind = rng.random(licences)
        decl_rows = []  # (licence index, period label, start, end, nil)
        for i in range(licences):
            if kind[i] < undeclared * 0.8:
                continue
            if kind[i] < undeclared:
                decl_rows.append((i, "2026-Q3", period_start, period_end, True))
                continue
            if PRODUCTS[lic_product[i]][2] == "month":
                for month in (7, 8, 9):
                    first_day = dt.date(2026, month, 1)
                    last_day = dt.date(2026, month + 1, 1) - dt.timedelta(days=1)
                    if starts[i] <= last_day and ends[i] >= first_day:
                        decl_rows.append((i, f"2026-{month:02d}", first_day, last_day, False))
            else:
                decl_rows.append((i, "2026-Q3", period_start, period_end, False))
        n_decl = len(decl_rows)
        decl_ids = np.arange(1, n_decl + 1, dtype=np.int64)
        decl_licence = np.array([r[0] for r in decl_rows], dtype=np.int64)
        decl_nil = np.array([r[4] for r in decl_rows], dtype=bool)
        # Each licence's share of the lines (lognormal), spread evenly over its declarations.
        weight = np.exp(rng.normal(0.0, 1.0, licences))
        per_licence_decls = np.bincount(decl_licence[~decl_nil], minlength=licences)
        decl_weight = np.where(
            decl_nil, 0.0, weight[decl_licence] / np.maximum(per_licence_decls[decl_licence], 1)
        )
        decl_lines = rng.multinomial(lines, decl_weight / decl_weight.sum())

        # The lines themselves, aggregated as the matcher stores them.
        line_decl = np.repeat(decl_ids, decl_lines)
        popularity = rng.permutation(ids)
        unmatched = rng.random(lines) < 0.05
        quantity = rng.integers(1, 100_001, lines)
        line_work = popularity[_zipf_ranks(rng, works, lines)]
        line_unknown = _zipf_ranks(rng, max(1, works // 5), lines)
        stride = np.int64(works + 1)
        keys, inverse, counts = np.unique(
            line_decl[~unmatched] * stride + line_work[~unmatched],
            return_inverse=True,
            return_counts=True,
        )
        sums = np.bincount(inverse, weights=quantity[~unmatched]).astype(np.int64)
        usage_decl, usage_work = keys // stride, keys % stride
        usage_reserved = reserved[usage_work - 1]
        del inverse
        ukeys, uinverse, ucounts = np.unique(
            line_decl[unmatched] * stride + line_unknown[unmatched],
            return_inverse=True,
            return_counts=True,
        )
        usums = np.bincount(uinverse, weights=quantity[unmatched]).astype(np.int64)
        unm_decl, unm_stem = ukeys // stride, ukeys % stride
        del uinverse, line_work, line_unknown
        done(
            f"{lines:,} lines drawn and aggregated: {len(keys):,} work rows, "
            f"{len(ukeys):,} unmatched rows over {n_decl} declarations"
        )

        def per_decl(values, decl, mask=None) -> np.ndarray:
            if mask is not None:
                values, decl = values[mask], decl[mask]
            return np.bincount(decl - 1, weights=values, minlength=n_decl).astype(np.int64)

        matched_lines = per_decl(counts, usage_decl, ~usage_reserved)
        matched_qty = per_decl(sums, usage_decl, ~usage_reserved)
        reserved_lines = per_decl(counts, usage_decl, usage_reserved)
        reserved_qty = per_decl(sums, usage_decl, usage_reserved)
        unmatched_lines = per_decl(ucounts, unm_decl)
        unmatched_qty = per_decl(usums, unm_decl)
        works_matched = np.bincount(usage_decl - 1, minlength=n_decl).astype(np.int64)
        total_lines = matched_lines + reserved_lines + unmatched_lines
        total_qty = matched_qty + reserved_qty + unmatched_qty
        zero = _const(n_decl, 0)
        _copy(
            cursor,
            "licensing_usagedeclaration",
            "id, licence_id, period, period_start, period_end, model_name, model_version, unit, "
            "status, nil, deadline, late, lines, declared_quantity, matched_lines, "
            "matched_quantity, unmatched_lines, unmatched_quantity, reserved_lines, "
            "reserved_quantity, works_matched, stage, percent, rows_total, rows_done, "
            "error_count, errors, error_report, message, file, file_format, original_name, "
            "file_sha256, file_size, timings, created_at, started_at, finished_at",
            pa.table(
                {
                    "id": decl_ids,
                    "licence_id": lic_ids[decl_licence],
                    "period": _text([r[1] for r in decl_rows]),
                    "period_start": _text([r[2].isoformat() for r in decl_rows]),
                    "period_end": _text([r[3].isoformat() for r in decl_rows]),
                    "model_name": _const(n_decl, "bench-model"),
                    "model_version": _const(n_decl, "1"),
                    "unit": _const(n_decl, "tokens"),
                    "status": _const(n_decl, "accepted"),
                    "nil": pa.array(decl_nil),
                    "deadline": _text(
                        [(r[3] + dt.timedelta(days=30)).isoformat() for r in decl_rows]
                    ),
                    "late": _const(n_decl, False),
                    "lines": total_lines,
                    "declared_quantity": total_qty,
                    "matched_lines": matched_lines,
                    "matched_quantity": matched_qty,
                    "unmatched_lines": unmatched_lines,
                    "unmatched_quantity": unmatched_qty,
                    "reserved_lines": reserved_lines,
                    "reserved_quantity": reserved_qty,
                    "works_matched": works_matched,
                    "stage": _const(n_decl, "accepted"),
                    "percent": _const(n_decl, 100),
                    "rows_total": total_lines,
                    "rows_done": total_lines,
                    "error_count": zero,
                    "errors": _const(n_decl, "[]"),
                    "error_report": _const(n_decl, ""),
                    "message": _const(n_decl, ""),
                    "file": _const(n_decl, ""),
                    "file_format": _const(n_decl, "csv"),
                    "original_name": _const(n_decl, "usage.csv"),
                    "file_sha256": _const(n_decl, ""),
                    "file_size": zero,
                    "timings": _const(n_decl, "{}"),
                    "created_at": _const(n_decl, now),
                    "started_at": _const(n_decl, now),
                    "finished_at": _const(n_decl, now),
                }
            ),
        )
        _copy(
            cursor,
            "licensing_declarationworkusage",
            "declaration_id, work_id, quantity, lines, reserved",
            pa.table(
                {
                    "declaration_id": usage_decl,
                    "work_id": usage_work,
                    "quantity": sums,
                    "lines": counts.astype(np.int64),
                    "reserved": pa.array(usage_reserved),
                }
            ),
        )
        n_unm = len(ukeys)
        _copy(
            cursor,
            "licensing_declarationunmatched",
            "declaration_id, scheme, identifier, valid, note, quantity, lines, title",
            pa.table(
                {
                    "declaration_id": unm_decl,
                    "scheme": _const(n_unm, "isbn"),
                    "identifier": isbn13(UNKNOWN_BASE + unm_stem),
                    "valid": _const(n_unm, True),
                    "note": _const(n_unm, ""),
                    "quantity": usums,
                    "lines": ucounts.astype(np.int64),
                    "title": _const(n_unm, ""),
                }
            ),
        )
        for table in (
            "licensing_catalogue", "licensing_work", "licensing_licence",
            "licensing_usagedeclaration",
        ):  # fmt: skip
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        done(
            f"{n_decl} declarations, {len(keys):,} work usage rows, {n_unm:,} unmatched rows (COPY)"
        )

    # Staff, and the policy through its service (one row each: the ORM is fine here).
    operator = User.objects.create_user(
        "operator@bench.invalid", full_name="Bench Operator", is_staff=True
    )
    operator.groups.add(Group.objects.get(name="operator"))
    approver = User.objects.create_user(
        "approver@bench.invalid", full_name="Bench Approver", is_staff=True
    )
    approver.groups.add(Group.objects.get(name="approver"))
    policy_publish(
        caller=Caller(user=operator, organisation=None),
        admin_fee_bp=1500,
        fee_bp_by_product={PRODUCTS[2][0]: 1000},
        fee_bp_by_media={"audio": 2000},
        media_weight_bp={"image": 5000},
        threshold_minor=2_500,
        fallback="proxy",
        note="bench/cycle.py",
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    assert LicenceProduct.objects.filter(description__startswith=MARKER).exists()
    done("staff users, policy v1, VACUUM ANALYZE")


# ------------------------------------------------------------------------------------------
# Instrumentation: wrap the service's helpers (module globals) to time them
# ------------------------------------------------------------------------------------------


class Probe:
    """Seconds and rows of each helper call the allocation makes, per run."""

    def __init__(self, dump: str | None = None) -> None:
        self.dump = dump
        self.events: list[tuple[str, str, int, float]] = []  # stage, label, rows, seconds
        self.engine: dict[str, float] = {}

    def reset(self) -> None:
        self.events = []
        self.engine = {}

    def add(self, stage: str, label: str, rows: int, seconds: float) -> None:
        self.events.append((stage, label, rows, seconds))

    def install(self) -> None:
        from django.db.models.query import QuerySet

        import royalties.selectors.cycle_inputs as selectors
        import royalties.services.cycles as cycles

        probe = self

        def timed(module, name, stage, label_of, rows_of):
            original = getattr(module, name)

            @functools.wraps(original)
            def wrapper(*args, **kwargs):
                started = time.perf_counter()
                result = original(*args, **kwargs)
                probe.add(
                    stage, label_of(args, kwargs), rows_of(result), time.perf_counter() - started
                )
                return result

            setattr(module, name, wrapper)

        def table_of(sql: str) -> str:
            if "declarationunmatched" in sql:
                return "usage (unmatched and reserved identifier rows)"
            words = sql.replace("(", " ").split()
            return words[words.index("FROM") + 1] if "FROM" in words else "?"

        timed(selectors, "table_read", "load", lambda a, k: f"COPY TO {table_of(a[0])}", len)
        timed(
            selectors, "_pg_rows", "load",
            lambda a, k: f"COPY TO (binary arrays) {table_of(a[0])}", len,
        )  # fmt: skip
        timed(selectors, "_frame", "load", lambda a, k: "  Arrow -> pandas", len)
        timed(cycles, "licence_pools", "load", lambda a, k: "licence_pools (recognition)", len)
        timed(
            cycles.cycle_inputs, "declarations_for_cycle", "load",
            lambda a, k: "declarations_for_cycle", lambda r: sum(len(v) for v in r.values()),
        )  # fmt: skip
        timed(cycles, "table_write", "write", lambda a, k: f"COPY FROM {a[0]}", lambda r: 0)
        timed(cycles, "table_read", "write", lambda a, k: f"COPY TO {table_of(a[0])}", len)
        timed(cycles, "_statements_store", "write", lambda a, k: "_statements_store", lambda r: 0)
        timed(
            cycles, "suspense_releases_prepare", "prepare",
            lambda a, k: "suspense_releases_prepare", len,
        )  # fmt: skip

        # table_write returns nothing: count its rows from the argument instead.
        write = cycles.table_write

        def table_write(table_name, table):
            write(table_name, table)
            stage, label, _, seconds = probe.events[-1]
            probe.events[-1] = (stage, label, len(table), seconds)

        cycles.table_write = table_write

        engine = cycles.allocate

        def allocate(inputs, params, **kwargs):
            if probe.dump:
                import pickle

                with open(probe.dump, "wb") as handle:
                    pickle.dump((inputs, params), handle, protocol=5)
                print(
                    f"  (engine inputs saved to {probe.dump}: in this run's engine time)",
                    flush=True,
                )
                probe.dump = None
            probe.engine = {}
            return engine(inputs, params, timings=probe.engine, **kwargs)

        cycles.allocate = allocate

        bulk_create = QuerySet.bulk_create

        def bulk_create_timed(qs, objs, *args, **kwargs):
            objs = list(objs)
            started = time.perf_counter()
            result = bulk_create(qs, objs, *args, **kwargs)
            probe.add(
                "write",
                f"bulk_create {qs.model.__name__}",
                len(objs),
                time.perf_counter() - started,
            )
            return result

        QuerySet.bulk_create = bulk_create_timed


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def _cycles_remove() -> None:
    """Forget the payout cycles of earlier runs (--reuse-database), nothing else."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE royalties_statementworkline, royalties_statementsourceline, "
            "royalties_statement, royalties_suspenserelease, royalties_suspenseitem, "
            "royalties_cyclelicence, royalties_allocationresidue, royalties_allocationpartial, "
            "royalties_allocationpartiallicence, royalties_allocationpartition, "
            "royalties_allocationrun, royalties_allocation, royalties_cycle CASCADE"
        )


def _written(allocation_id: int) -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for label, sql in (
            (
                "cycle licences",
                "SELECT count(*) FROM royalties_cyclelicence WHERE allocation_id = %s",
            ),
            ("statements", "SELECT count(*) FROM royalties_statement WHERE allocation_id = %s"),
            (
                "work lines",
                "SELECT count(*) FROM royalties_statementworkline l JOIN royalties_statement s "
                "ON s.id = l.statement_id WHERE s.allocation_id = %s",
            ),
            (
                "source lines",
                "SELECT count(*) FROM royalties_statementsourceline l JOIN royalties_statement s "
                "ON s.id = l.statement_id WHERE s.allocation_id = %s",
            ),
            (
                "suspense items",
                "SELECT count(*) FROM royalties_suspenseitem WHERE allocation_id = %s",
            ),
        ):
            cursor.execute(sql, [allocation_id])
            counts[label] = cursor.fetchone()[0]
    return counts


def _report_run(number: int, cycle, wall: float, peak: dict, probe: Probe) -> dict:
    from django.db.models import Sum

    from royalties.models import SuspenseItem

    allocation = cycle.current_allocation
    timings = allocation.timings
    written = _written(allocation.pk)
    t = allocation.totals
    rows = defaultdict(int)
    for stage, _label, n, _s in probe.events:
        if stage == "load" and _label.startswith("COPY TO"):
            rows["load"] += n
    print(
        f"\nRun {number}: allocation {allocation.number} of {cycle} "
        f"(policy v{allocation.policy.version})"
    )
    print("  stage        seconds   rows")
    print(
        f"  load        {timings.get('load', 0):8.2f}   {rows['load']:,} read "
        "(usage, works, shares, brought forward)"
    )
    print(
        f"  engine      {timings.get('engine', 0):8.2f}   {written['statements']:,} holders, "
        f"{written['work lines'] + written['source lines']:,} lines, "
        f"{written['suspense items']:,} suspense buckets   (target < 3 s)"
    )
    write_rows = sum(written.values())
    print(f"  write       {timings.get('write', 0):8.2f}   {write_rows:,} written")
    other = timings.get("total", 0) - sum(timings.get(k, 0) for k in ("load", "engine", "write"))
    print(f"  (other)     {other:8.2f}   suspense releases, progress updates")
    print(f"  total       {timings.get('total', 0):8.2f}   (target < 20 s)")
    print(f"  wall, cycle_allocate -> allocated: {wall:.2f} s")
    print(
        f"  peak RSS: VmHWM {peak.get('VmHWM', float('nan')):,.0f} MB this run, ru_maxrss "
        f"{_maxrss_mb():,.0f} MB process lifetime (target < 1,500)"
    )
    print("  breakdown (wrapped helpers):")
    for stage, label, n, seconds in probe.events:
        print(f"    {stage:<8} {label:<46} {seconds:7.2f} s {n:>12,} rows")
    if probe.engine:
        stages = "  ".join(f"{k} {v:.2f}" for k, v in probe.engine.items())
        print(f"    engine stages (s): {stages}")
    print("  written: " + ", ".join(f"{label} {n:,}" for label, n in written.items()))
    identity = t["fee_minor"] + t["holders_minor"] + t["suspense_minor"]
    print(
        f"  identity: pool {t['pool_minor']:,} + releases {t['releases_minor']:,} = in "
        f"{t['in_minor']:,} = fee {t['fee_minor']:,} + holders {t['holders_minor']:,} + "
        f"suspense {t['suspense_minor']:,} -> {'OK' if identity == t['in_minor'] else 'BROKEN'}"
    )
    by_reason = dict(
        SuspenseItem.objects.filter(allocation=allocation)
        .values_list("reason")
        .annotate(n=Sum("amount_minor"))
    )
    print("  suspense by reason: " + ", ".join(f"{k} {v:,}" for k, v in sorted(by_reason.items())))
    print(
        f"  payable {t.get('payable_minor', 0):,}, carried forward "
        f"{t.get('carried_forward_minor', 0):,}"
    )
    print(f"  checksum {allocation.checksum}")
    return {
        "checksum": allocation.checksum,
        "identity": identity == t["in_minor"],
        "total": timings.get("total", 0),
        "engine": timings.get("engine", 0),
        "peak": peak.get("VmHWM", _maxrss_mb()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--holders", type=int, default=200_000)
    parser.add_argument("--licences", type=int, default=300)
    parser.add_argument("--lines", type=int, default=10_000_000, help="declaration lines")
    parser.add_argument("--seed", type=int, default=20260926)
    parser.add_argument("--period", default="2026-Q3")
    parser.add_argument("--runs", type=int, default=2, help="allocations (re-allocations)")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--reuse-database", action="store_true")
    parser.add_argument(
        "--undeclared",
        type=float,
        default=0.10,
        help="share of licences without a usage declaration (a fifth of them with a nil one)",
    )
    parser.add_argument(
        "--dump-inputs",
        metavar="PATH",
        help="pickle the engine's inputs (CycleInputs, PolicyParams) of the first run here",
    )
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="blanket-bench-cycle-")
    try:
        _main(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _main(args, workdir: str) -> None:
    params = {
        "works": args.works, "holders": args.holders, "licences": args.licences,
        "lines": args.lines, "seed": args.seed, "undeclared": args.undeclared,
    }  # fmt: skip
    if not args.reuse_database:
        print(f"Building the data ({json.dumps(params)}) in a child process:", flush=True)
        _database_recreate(args.database_url)
        seconds = _in_child(data_build, args.database_url, workdir, params)
        print(f"Built in {seconds:.1f} s")

    _django_setup(args.database_url, workdir)
    from django.db import connection

    from accounts.models import User
    from accounts.scoping import Caller
    from licensing.models import LicenceProduct
    from royalties.models import CycleStatus
    from royalties.services.cycles import cycle_allocate, cycle_create

    product = LicenceProduct.objects.filter(description__startswith=MARKER).first()
    if product is None:
        raise SystemExit("No bench data in this database: run without --reuse-database first.")
    built = json.loads(product.description[len(MARKER) :])
    if args.reuse_database:
        print(f"Reusing the data built with {json.dumps(built)}")
        _cycles_remove()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM licensing_declarationworkusage), "
            "(SELECT count(*) FROM licensing_declarationunmatched), "
            "(SELECT coalesce(sum(lines), 0) FROM licensing_usagedeclaration), "
            "(SELECT count(*) FROM licensing_usagedeclaration), "
            "(SELECT count(*) FROM licensing_share)"
        )
        usage_rows, unmatched_rows, line_total, declarations, shares = cursor.fetchone()
        cursor.execute("CHECKPOINT")
    print(
        f"Database: {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}; "
        f"{os.cpu_count()} CPUs. {built['works']:,} works, {shares:,} shares, "
        f"{built['holders']:,} holders, {built['licences']} licences, {declarations} "
        f"declarations of {line_total:,} lines stored as {usage_rows:,} work rows + "
        f"{unmatched_rows:,} unmatched rows"
    )

    probe = Probe(args.dump_inputs)
    probe.install()
    operator = User.objects.get(email="operator@bench.invalid")
    caller = Caller(user=operator, organisation=None)
    started = time.perf_counter()
    cycle = cycle_create(caller=caller, period=args.period)
    print(f"cycle_create {cycle.period}: {time.perf_counter() - started:.2f} s")

    results = []
    for number in range(1, args.runs + 1):
        probe.reset()
        _reset_peak()
        started = time.perf_counter()
        cycle = cycle_allocate(caller=caller, cycle=cycle)  # eager Celery: runs the job here
        wall = time.perf_counter() - started
        peak = _status_mb()
        cycle.refresh_from_db()
        if cycle.status != CycleStatus.ALLOCATED:
            print(
                f"\nRun {number}: FAILED after {wall:.2f} s: cycle {cycle.status}: {cycle.message}"
            )
            for stage, label, n, seconds in probe.events:
                print(f"    {stage:<8} {label:<46} {seconds:7.2f} s {n:>12,} rows")
            raise SystemExit(1)
        results.append(_report_run(number, cycle, wall, peak, probe))

    print("\nSummary")
    checksums = {r["checksum"] for r in results}
    print(
        f"  checksums of the {len(results)} allocations identical: "
        f"{'yes' if len(checksums) == 1 else 'NO'}"
    )
    print(
        "  totals identity held every run: "
        f"{'yes' if all(r['identity'] for r in results) else 'NO'}"
    )
    print(
        "  total (s): "
        + ", ".join(f"{r['total']:.2f}" for r in results)
        + "; engine (s): "
        + ", ".join(f"{r['engine']:.2f}" for r in results)
        + "; peak VmHWM (MB): "
        + ", ".join(f"{r['peak']:,.0f}" for r in results)
        + f"; ru_maxrss {_maxrss_mb():,.0f} MB"
    )
    ok = len(checksums) == 1 and all(r["identity"] for r in results)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
