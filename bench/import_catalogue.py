"""Catalogue import at scale: a generated 1,000,000-row catalogue file imported on PostgreSQL.

    .venv/bin/python bench/import_catalogue.py                 # 1M rows into blanket_bench
    .venv/bin/python bench/import_catalogue.py --rows 100000 --keep-file /tmp/cat.csv
    .venv/bin/python bench/import_catalogue.py --database-url postgres://postgres@host/db

The database (default ``postgres://postgres@127.0.0.1:5432/blanket_bench``) is dropped,
recreated and migrated on every run unless ``--reuse-database`` is given. The file is
generated from a seed in a child process (so its memory is not the import's), with about two
rows per work: valid ISBN-13s and ISBN-10s (some hyphenated), DOIs (some as resolver URLs),
ISRCs and ISWCs, and co-holder rows (50/50, 60/40, 33.3333/33.3333/33.3334) against a few
pre-created holder organisations. It is then imported end to end through the service
(``catalogue_import_start`` + ``catalogue_import_run``, as the Celery task would), then
imported again (the idempotent path: nothing may change).

Prints rows/second, the per-stage timings the service reports, and peak RSS
(``getrusage``: this process, and the generator child separately). Target (issue 3): at least
40,000 rows/s end to end and under 1.5 GB peak RSS on 2 cores.
"""

from __future__ import annotations

import argparse
import atexit
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/blanket_bench"
HOLDERS = 12
WORDS = [
    "river",
    "night",
    "winter",
    "garden",
    "light",
    "stone",
    "silver",
    "machine",
    "quiet",
    "letters",
    "harbour",
    "northern",
    "glass",
    "empire",
    "summer",
    "paper",
    "orchard",
    "signal",
    "tide",
    "engine",
    "memory",
    "lantern",
    "atlas",
    "echo",
]


# ------------------------------------------------------------------------------------------
# The file
# ------------------------------------------------------------------------------------------


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) matrix of the decimal digits of ``values`` (zero-padded)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def _text(values: np.ndarray, width: int) -> pa.Array:
    return pa.array(np.char.zfill(values.astype(str), width))


def _join(*parts: pa.Array | str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def catalogue_generate(path: str, *, rows: int, seed: int, owner: str, holders: list[str]) -> None:
    """Write a deterministic catalogue file of exactly ``rows`` data rows to ``path``."""
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    # Rows per work: 40% one holder, 45% two, 15% three (about 1.75 rows per work).
    per_work = rng.choice([1, 2, 3], size=rows, p=[0.40, 0.45, 0.15])
    ends = np.cumsum(per_work)
    n_works = int(np.searchsorted(ends, rows)) + 1
    per_work = per_work[:n_works]
    per_work[-1] -= int(ends[n_works - 1] - rows)
    if per_work[-1] <= 0:
        per_work = per_work[:-1]
        n_works -= 1
        per_work[-1] += rows - int(per_work.sum())
    work = np.repeat(np.arange(n_works), per_work)
    position = np.arange(rows) - np.repeat(np.cumsum(per_work) - per_work, per_work)
    size = per_work[work]

    kind = rng.choice([0, 1, 2], size=n_works, p=[0.5, 0.3, 0.2])  # text, audio, dataset
    media = np.array(["text", "audio", "dataset"], dtype=object)[kind]
    serial = rng.permutation(n_works).astype(np.int64) + 10_000_000  # unique per work

    # ISBN-13: 978 + 9 digits + check digit; 10% written as ISBN-10, 50% hyphenated.
    body = 100_000_000 + serial % 900_000_000
    digits = _digits(body, 9)
    check13 = (10 - (38 + digits @ np.array([3, 1] * 4 + [3])) % 10) % 10
    isbn13 = _join("978", _text(body, 9), _text(check13, 1))
    check10 = (digits @ np.arange(1, 10)) % 11
    isbn10 = _join(_text(body, 9), pa.array(np.where(check10 == 10, "X", check10.astype(str))))
    hyphenated = _join(
        "978-",
        pc.utf8_slice_codeunits(_text(body, 9), 0, 1),
        "-",
        pc.utf8_slice_codeunits(_text(body, 9), 1, 5),
        "-",
        pc.utf8_slice_codeunits(_text(body, 9), 5, 9),
        "-",
        _text(check13, 1),
    )
    style = rng.random(n_works)
    isbn = pc.if_else(
        pa.array(style < 0.1), isbn10, pc.if_else(pa.array(style < 0.55), hyphenated, isbn13)
    )
    isbn = pc.if_else(pa.array(kind == 0), isbn, "")

    doi_plain = _join("10.5555/blanket.", _text(serial, 8))
    doi = pc.if_else(
        pa.array(rng.random(n_works) < 0.2), _join("https://doi.org/", doi_plain), doi_plain
    )
    has_doi = (kind == 2) | ((kind == 0) & (rng.random(n_works) < 0.3))
    doi = pc.if_else(pa.array(has_doi), doi, "")

    countries = np.array(["GB", "US", "FR", "DE", "SE", "JP"])[rng.integers(0, 6, n_works)]
    isrc = _join(
        pa.array(countries),
        "-BLK-",
        _text((serial // 100_000) % 100, 2),  # year and designation: unique per serial
        "-",
        _text(serial % 100_000, 5),
    )
    isrc = pc.if_else(pa.array(kind == 1), isrc, "")
    iswc_digits = _digits(serial % 1_000_000_000, 9)
    iswc_check = (10 - (1 + iswc_digits @ np.arange(1, 10)) % 10) % 10
    nine = _text(serial % 1_000_000_000, 9)
    iswc = _join(
        "T-",
        pc.utf8_slice_codeunits(nine, 0, 3),
        ".",
        pc.utf8_slice_codeunits(nine, 3, 6),
        ".",
        pc.utf8_slice_codeunits(nine, 6, 9),
        "-",
        _text(iswc_check, 1),
    )
    iswc = pc.if_else(pa.array((kind == 1) & (rng.random(n_works) < 0.2)), iswc, "")

    words = np.array(WORDS, dtype=object)
    title = _join(
        pa.array(words[rng.integers(0, len(WORDS), n_works)]).cast(pa.string()),
        " ",
        pa.array(words[rng.integers(0, len(WORDS), n_works)]).cast(pa.string()),
        " ",
        _text(serial, 8),
    )
    consent = np.array(["", "licensed", "reserved"], dtype=object)[
        rng.choice([0, 1, 2], size=n_works, p=[0.8, 0.15, 0.05])
    ]

    # Shares: 100 (blank half the time); 50/50 or 60/40; 33.3333/33.3333/33.3334.
    two = np.where(rng.random(n_works) < 0.7, 0, 1)[work]
    share = np.select(
        [
            size == 1,
            (size == 2) & (two == 0),
            (size == 2) & (position == 0),
            size == 2,
            position < 2,
        ],
        [np.where(rng.random(rows) < 0.5, "", "100"), "50", "60", "40", "33.3333"],
        default="33.3334",
    )
    co_holder = np.array(holders, dtype=object)[rng.integers(0, len(holders), rows)]
    holder = np.where(position == 0, np.where(rng.random(rows) < 0.5, "", owner), co_holder)
    role = np.array(["author", "publisher", "producer"], dtype=object)[position]

    take = pa.array(work)
    table = pa.table(
        {
            "work_ref": _join("NLP-", _text(np.arange(n_works), 7)).take(take),
            "title": title.take(take),
            "media_type": pa.array(media).cast(pa.string()).take(take),
            "isbn": isbn.take(take),
            "doi": doi.take(take),
            "isrc": isrc.take(take),
            "iswc": iswc.take(take),
            "holder": pa.array(holder.astype(object)).cast(pa.string()),
            "share": pa.array(share.astype(object)).cast(pa.string()),
            "role": pa.array(role).cast(pa.string()),
            "consent": pa.array(consent).cast(pa.string()).take(take),
        }
    )
    # Nothing generated holds a comma, quote or newline, so no cell needs quoting (as from a
    # spreadsheet's "CSV UTF-8" export).
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="none"))


def _generate_in_child(path: str, rows: int, seed: int, owner: str, holders: list[str]) -> float:
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    process = context.Process(
        target=catalogue_generate,
        args=(path,),
        kwargs={"rows": rows, "seed": seed, "owner": owner, "holders": holders},
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        raise SystemExit(f"generating the file failed (exit code {process.exitcode})")
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _database_recreate(url: str) -> None:
    import psycopg
    from psycopg import sql

    info = psycopg.conninfo.conninfo_to_dict(url.replace("postgres://", "postgresql://", 1))
    name = info.pop("dbname")
    with psycopg.connect(**info, dbname="postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _django_setup(url: str, var_dir: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["BLANKET_VAR_DIR"] = var_dir
    os.environ["CELERY_BROKER_URL"] = ""  # the service is called directly, nothing enqueued
    os.environ["DEBUG"] = "false"  # no SQL kept in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # bench output only; LOG_LEVEL=INFO for more
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _redundant_indexes_drop(connection) -> None:
    """Each of these is the leading column of a unique constraint's index already."""
    covered = {
        "licensing_work": ("catalogue_id", "work_ref_unique"),
        "licensing_workidentifier": ("work_id", "work_identifier_unique"),
        "licensing_share": ("work_id", "share_unique"),
    }
    with connection.cursor() as cursor:
        for table, (column, unique) in covered.items():
            cursor.execute(
                "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_attribute a"
                " ON a.attrelid = t.oid AND a.attnum = x.indkey[0]"
                " WHERE t.relname = %s AND a.attname = %s AND x.indnatts = 1"
                " AND NOT x.indisunique",
                [table, column],
            )
            for (index,) in cursor.fetchall():
                cursor.execute(f'DROP INDEX "{index}"')
                print(f"what-if: dropped {index} ({table}.{column}, covered by {unique})")


class _Stages:
    """Times each stage the service reports through ``on_progress``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.current: str | None = None
        self.since = self.started
        self.seconds: dict[str, float] = {}

    def __call__(self, stage: str, percent: int, rows_done: int) -> None:
        if stage != self.current:
            self.close()
            self.current, self.since = stage, time.perf_counter()

    def close(self) -> None:
        if self.current is not None:
            self.seconds[self.current] = time.perf_counter() - self.since
            self.current = None


def _checkpoint(connection) -> None:
    """Start each timed import from a fresh checkpoint, so that the WAL the previous run (or
    the database's re-creation) left behind does not trigger a checkpoint in the middle of
    this one. The import's own WAL (about 1 GB per million rows) still counts. Needs a
    superuser or pg_checkpoint; skipped, with a note, when not allowed."""
    from django.db import DatabaseError

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as exc:
        print(f"  (no CHECKPOINT before the run: {exc})")


class _SqlTimer:
    """``connection.execute_wrapper`` that keeps the time of every statement."""

    def __init__(self) -> None:
        self.statements: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((time.perf_counter() - started, " ".join(str(sql).split())))

    def print_slowest(self, count: int = 12) -> None:
        for seconds, sql in sorted(self.statements, reverse=True)[:count]:
            print(f"    {seconds:6.2f} s  {sql[:110]}")


def _import(
    path: str, catalogue, caller, label: str, profile: bool = False
) -> tuple[object, float, dict[str, float]]:
    from contextlib import nullcontext

    from django.core.files import File
    from django.db import connection

    from licensing.services.imports import catalogue_import_run, catalogue_import_start

    _checkpoint(connection)
    stages = _Stages()
    started = time.perf_counter()
    with open(path, "rb") as handle:
        job = catalogue_import_start(
            caller=caller,
            catalogue=catalogue,
            uploaded_file=File(handle, name="catalogue.csv"),
            enqueue=False,
        )
    stored = time.perf_counter() - started
    timer = _SqlTimer()
    with connection.execute_wrapper(timer) if profile else nullcontext():
        job = catalogue_import_run(import_id=job.pk, on_progress=stages)
    stages.close()
    elapsed = time.perf_counter() - started
    timings = {"upload (hash + store)": stored, **stages.seconds}
    print(f"\n{label}: {job.status} in {elapsed:.1f} s -> {job.rows_total / elapsed:,.0f} rows/s")
    print(f"  {job.message}")
    for stage, seconds in timings.items():
        print(f"  {stage:<24} {seconds:6.2f} s")
    print(f"  peak RSS so far: {_peak_mb(resource.RUSAGE_SELF):,.0f} MB (this process)")
    if profile:
        print("  slowest SQL statements (COPY not included):")
        timer.print_slowest()
    return job, elapsed, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20260301)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--reuse-database", action="store_true", help="do not drop/recreate/migrate the database"
    )
    parser.add_argument("--keep-file", help="write the generated file here and keep it")
    parser.add_argument(
        "--profile-sql", action="store_true", help="print the slowest SQL statements of each run"
    )
    parser.add_argument(
        "--without-redundant-indexes",
        action="store_true",
        help="what-if: drop, in the bench database only, the single-column foreign-key indexes "
        "that a unique constraint already covers (licensing_work.catalogue_id, "
        "licensing_workidentifier.work_id, licensing_share.work_id)",
    )
    args = parser.parse_args()

    # The generated file and the uploaded copies (MEDIA_ROOT) live here, removed at exit.
    workdir = tempfile.mkdtemp(prefix="blanket-bench-")
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    if not args.reuse_database:
        _database_recreate(args.database_url)
    _django_setup(args.database_url, workdir)

    from django.core.management import call_command
    from django.db import connection

    from accounts.models import OrganisationKind, Role
    from accounts.scoping import Caller
    from accounts.services import organisation_create
    from licensing.models import Catalogue

    if not args.reuse_database:
        call_command("migrate", verbosity=0)
    if args.without_redundant_indexes:
        _redundant_indexes_drop(connection)
    suffix = str(time.time_ns())[-6:]
    owner, *holders = [
        organisation_create(
            creator=None,
            name=f"Bench holder {i} {suffix}",
            kind=OrganisationKind.RIGHTS_HOLDER,
            country="GB",
        )
        for i in range(HOLDERS + 1)
    ]
    catalogue = Catalogue.objects.create(owner=owner, name=f"Bench {suffix}", media_type="text")
    caller = Caller(user=None, organisation=owner, role=Role.OWNER)

    path = args.keep_file or os.path.join(workdir, "catalogue.csv")
    generated = _generate_in_child(
        path, args.rows, args.seed, owner.code, [h.code for h in holders]
    )
    size = os.path.getsize(path)
    print(
        f"Generated {args.rows:,} rows ({size / 2**20:,.0f} MiB, seed {args.seed}) "
        f"in {generated:.1f} s; child peak RSS {_peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB"
    )
    print(
        f"Database: {connection.settings_dict['NAME']} on {connection.settings_dict['HOST']}; "
        f"{os.cpu_count()} CPUs"
    )

    first, first_seconds, _ = _import(path, catalogue, caller, "First import", args.profile_sql)
    peak_first = _peak_mb(resource.RUSAGE_SELF)
    again, again_seconds, _ = _import(
        path, catalogue, caller, "Re-import (idempotent)", args.profile_sql
    )

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM licensing_work WHERE catalogue_id = %s),"
            " (SELECT COUNT(*) FROM licensing_workidentifier wi JOIN licensing_work w"
            "   ON w.id = wi.work_id WHERE w.catalogue_id = %s),"
            " (SELECT COUNT(*) FROM licensing_share s JOIN licensing_work w"
            "   ON w.id = s.work_id WHERE w.catalogue_id = %s)",
            [catalogue.pk] * 3,
        )
        works, identifiers, shares = cursor.fetchone()

    rows_per_second = args.rows / first_seconds
    print("\nSummary")
    print(
        f"  rows                 {args.rows:,} ({works:,} works, {identifiers:,} identifiers,"
        f" {shares:,} shares stored)"
    )
    print(
        f"  first import         {first_seconds:.1f} s = {rows_per_second:,.0f} rows/s "
        f"(target >= 40,000)"
    )
    print(
        f"  re-import            {again_seconds:.1f} s = {args.rows / again_seconds:,.0f} rows/s;"
        f" created {again.works_created}, updated {again.works_updated},"
        f" unchanged {again.works_unchanged:,}"
    )
    print(
        f"  peak RSS (import)    {peak_first:,.0f} MB after the first import, "
        f"{_peak_mb(resource.RUSAGE_SELF):,.0f} MB overall (target < 1,500)"
    )
    print(f"  peak RSS (generator) {_peak_mb(resource.RUSAGE_CHILDREN):,.0f} MB (child process)")
    ok = (
        first.status == "succeeded"
        and again.status == "succeeded"
        and first.works_created == works
        and (again.works_created, again.works_updated) == (0, 0)
        and again.works_unchanged == works
    )
    if not ok:
        raise SystemExit("FAILED: the imports did not give the expected counts")


if __name__ == "__main__":
    main()
