"""Registry check latency: 10,000 identifiers against a 1,000,000-work registry on PostgreSQL.

    .venv/bin/python bench/registry_check.py [--works 1000000] [--batch 10000] [--runs 7]

Creates (or reuses, with --reuse) the database `blanket_bench_registry`, loads the works and
their ISBNs with COPY, then times `POST /api/v1/registry/check` end to end through Django's
test client (parse, normalise, look up, serialise) and prints the median, p95 and peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "blanket_bench_registry"
PG = "postgres://postgres@127.0.0.1:5432"


def isbn13s(numbers: np.ndarray) -> np.ndarray:
    """Valid ISBN-13 strings for 978 + 9-digit numbers, vectorised."""
    digits = np.zeros((len(numbers), 12), dtype=np.int64)
    digits[:, 0], digits[:, 1], digits[:, 2] = 9, 7, 8
    rest = numbers.copy()
    for position in range(11, 2, -1):
        digits[:, position] = rest % 10
        rest //= 10
    weights = np.array([1, 3] * 6)
    check = (10 - (digits * weights).sum(axis=1) % 10) % 10
    body = np.char.add("978", np.char.zfill(numbers.astype(str), 9))
    return np.char.add(body, check.astype(str))


def setup_database(works: int, reuse: bool) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and reuse:
            return
        if exists:
            conn.execute(f"DROP DATABASE {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from accounts.services import organisation_create
    from licensing.models import Catalogue

    holder = organisation_create(
        creator=None, name="Bench Press", kind="rights_holder", country="GB"
    )
    catalogue = Catalogue.objects.create(owner=holder, name="Everything", media_type="text")
    started = time.perf_counter()
    works_copy(catalogue.pk, works)
    print(f"loaded {works:,} works with ISBNs in {time.perf_counter() - started:.1f}s")


def works_copy(catalogue_id: int, works: int) -> int:
    """COPY ``works`` text works into the catalogue, each with one ISBN (number i of
    `isbn13s(i * 7 + 1_000_000)`), every tenth reserved for training; returns the first id."""
    from django.db import connection

    isbns = isbn13s(np.arange(works, dtype=np.int64) * 7 + 1_000_000)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM licensing_work")
        before = cursor.fetchone()[0]
        with cursor.copy(
            "COPY licensing_work (catalogue_id, work_ref, title, media_type, status, "
            "consent_training, consent_fine_tuning, consent_rag, created_at, updated_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(works):
                consent = "reserved" if i % 10 == 0 else ""
                copy.write_row(
                    (
                        catalogue_id,
                        f"W{i}",
                        f"Title {i}",
                        "text",
                        "active",
                        consent,
                        "",
                        "",
                        "2026-01-01",
                        "2026-01-01",
                    )
                )
        cursor.execute("SELECT min(id) FROM licensing_work WHERE id > %s", [before])
        first_id = cursor.fetchone()[0]
        with cursor.copy(
            "COPY licensing_workidentifier (work_id, scheme, value) FROM STDIN"
        ) as copy:
            for i in range(works):
                copy.write_row((first_id + i, "isbn", isbns[i]))
        cursor.execute("ANALYZE")
    return first_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep an existing bench database")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ["REGISTRY_RATE"] = "100000/minute"
    setup_database(args.works, args.reuse)

    import django

    django.setup()
    from rest_framework.test import APIClient

    rng = np.random.default_rng(42)
    hits = isbn13s(rng.choice(args.works, size=args.batch // 2, replace=False) * 7 + 1_000_000)
    misses = isbn13s(rng.integers(900_000_000, 999_999_999, size=args.batch * 3 // 10))
    items = [{"scheme": "isbn", "identifier": v} for v in np.concatenate([hits, misses])]
    items += [
        {"scheme": "url", "identifier": f"https://site{i % 500}.example/page/{i}"}
        for i in range(args.batch // 10)
    ]
    items += [
        {"scheme": "isbn", "identifier": f"97800000{i:05d}"} for i in range(args.batch - len(items))
    ]
    client = APIClient()
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        response = client.post("/api/v1/registry/check", {"items": items}, format="json")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.content[:500]
    results = response.json()["results"]
    counts = {
        s: sum(r["status"] == s for r in results)
        for s in ("licensed", "reserved", "unknown", "invalid")
    }
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"registry check of {len(items):,} identifiers against {args.works:,} works")
    print(f"  results: {counts}")
    print(
        f"  latency ms: median {statistics.median(timings):.0f}, "
        f"p95 {sorted(timings)[int(len(timings) * 0.95) - 1]:.0f}, "
        f"min {min(timings):.0f} over {args.runs} runs (first run {timings[0]:.0f})"
    )
    print(f"  peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
