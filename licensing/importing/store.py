"""Write validated catalogue works set-based: bulk loads and a few INSERT/UPDATE/DELETE
statements over whole sets, never one ORM save per row.

In the caller's transaction:

- works: the file's works are staged (PostgreSQL: ``COPY ... FROM STDIN`` of CSV made by
  Arrow; SQLite: ``executemany``) and matched to the catalogue's by ``work_ref``; existing
  ones are updated only where a field differs, new ones inserted. Works of the catalogue
  absent from the file are left alone.
- identifiers and shares of new works are bulk-loaded straight into their tables. Those of
  existing works are staged and compared: rows the file no longer has are deleted first (the
  database's share-sum trigger checks each work after every insert), rows it adds are
  inserted, equal rows are not touched. Importing the same file again changes no row.
- counts: created, updated (a field, an identifier or a share changed), unchanged.

No Django: the service passes a cursor (Django's, which takes ``%s`` parameters on both
databases) and owns the transaction. The SQL names the tables of ``licensing.models``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from licensing.importing.validate import Validation

__all__ = ["WriteCounts", "catalogue_works_store", "claimant_work_ids", "staging_drop"]

_COPY_BATCH_ROWS = 200_000
_WORK_MEM = "256MB"  # PostgreSQL, per sort/hash node, for the write transaction only


@dataclass
class WriteCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


_STAGING = {
    "imp_work": "k bigint NOT NULL, work_ref text NOT NULL, title text NOT NULL, "
    "media_type text NOT NULL, consent text NOT NULL",
    "imp_identifier": "k bigint NOT NULL, scheme text NOT NULL, value text NOT NULL",
    "imp_share": "k bigint NOT NULL, holder_id bigint NOT NULL, role text NOT NULL, "
    "share_ppm bigint NOT NULL",
    "imp_map": "k bigint NOT NULL, work_id bigint NOT NULL, is_new smallint NOT NULL, "
    "changed smallint NOT NULL",
    "imp_changed": "work_id bigint NOT NULL",
    "imp_identifier_gone": "id bigint NOT NULL, work_id bigint NOT NULL",
    "imp_identifier_added": "work_id bigint NOT NULL, scheme text NOT NULL, value text NOT NULL",
    "imp_share_gone": "id bigint NOT NULL, work_id bigint NOT NULL",
    "imp_share_added": "work_id bigint NOT NULL, holder_id bigint NOT NULL, "
    "role text NOT NULL, share_ppm bigint NOT NULL",
}

_MAP_EXISTING = """
INSERT INTO imp_map (k, work_id, is_new, changed)
SELECT s.k, w.id, 0,
       CASE WHEN w.title = s.title AND w.media_type = s.media_type
             AND w.consent_training = s.consent AND w.consent_fine_tuning = s.consent
             AND w.consent_rag = s.consent THEN 0 ELSE 1 END
  FROM imp_work s
  JOIN licensing_work w ON w.catalogue_id = %s AND w.work_ref = s.work_ref
"""
_UPDATE_CHANGED = """
UPDATE licensing_work
   SET title = s.title, media_type = s.media_type, consent_training = s.consent,
       consent_fine_tuning = s.consent, consent_rag = s.consent, updated_at = %s
  FROM imp_map m JOIN imp_work s ON s.k = m.k
 WHERE licensing_work.id = m.work_id AND m.changed = 1
"""
_INSERT_NEW = """
INSERT INTO licensing_work (catalogue_id, work_ref, title, media_type, status,
                            consent_training, consent_fine_tuning, consent_rag,
                            created_at, updated_at)
SELECT %s, s.work_ref, s.title, s.media_type, 'active', s.consent, s.consent, s.consent, %s, %s
  FROM imp_work s
 WHERE NOT EXISTS (SELECT 1 FROM imp_map m WHERE m.k = s.k)
"""
_MAP_NEW = """
INSERT INTO imp_map (k, work_id, is_new, changed)
SELECT s.k, w.id, 1, 0
  FROM imp_work s
  JOIN licensing_work w ON w.catalogue_id = %s AND w.work_ref = s.work_ref
 WHERE NOT EXISTS (SELECT 1 FROM imp_map m WHERE m.k = s.k)
"""
# PostgreSQL: the new works' ids straight from RETURNING, without looking them up again.
_INSERT_NEW_AND_MAP_PG = f"""
WITH inserted AS ({_INSERT_NEW} RETURNING id, work_ref)
INSERT INTO imp_map (k, work_id, is_new, changed)
SELECT s.k, i.id, 1, 0 FROM inserted i JOIN imp_work s ON s.work_ref = i.work_ref
"""  # noqa: S608  # nosec B608 - constant SQL (_INSERT_NEW), no input

# Identifiers and shares of existing works (staged): rows the file no longer has ("gone"), rows
# the file has that the works lack ("added"). New works' rows are written directly.
_IDENTIFIERS_GONE = """
INSERT INTO imp_identifier_gone (id, work_id)
SELECT wi.id, wi.work_id
  FROM licensing_workidentifier wi
  JOIN imp_map m ON m.work_id = wi.work_id AND m.is_new = 0
 WHERE NOT EXISTS (SELECT 1 FROM imp_identifier i
                    WHERE i.k = m.k AND i.scheme = wi.scheme AND i.value = wi.value)
"""
_IDENTIFIERS_ADDED = """
INSERT INTO imp_identifier_added (work_id, scheme, value)
SELECT m.work_id, i.scheme, i.value
  FROM imp_identifier i
  JOIN imp_map m ON m.k = i.k AND m.is_new = 0
 WHERE NOT EXISTS (SELECT 1 FROM licensing_workidentifier wi
                    WHERE wi.work_id = m.work_id AND wi.scheme = i.scheme
                      AND wi.value = i.value)
"""
_IDENTIFIERS_WRITE = (
    "DELETE FROM licensing_workidentifier WHERE id IN (SELECT id FROM imp_identifier_gone)",
    """INSERT INTO licensing_workidentifier (work_id, scheme, value)
       SELECT work_id, scheme, value FROM imp_identifier_added""",
)
_SHARES_GONE = """
INSERT INTO imp_share_gone (id, work_id)
SELECT sh.id, sh.work_id
  FROM licensing_share sh
  JOIN imp_map m ON m.work_id = sh.work_id AND m.is_new = 0
 WHERE NOT EXISTS (SELECT 1 FROM imp_share s
                    WHERE s.k = m.k AND s.holder_id = sh.holder_id AND s.role = sh.role
                      AND s.share_ppm = sh.share_ppm)
"""
_SHARES_ADDED = """
INSERT INTO imp_share_added (work_id, holder_id, role, share_ppm)
SELECT m.work_id, s.holder_id, s.role, s.share_ppm
  FROM imp_share s
  JOIN imp_map m ON m.k = s.k AND m.is_new = 0
 WHERE NOT EXISTS (SELECT 1 FROM licensing_share sh
                    WHERE sh.work_id = m.work_id AND sh.holder_id = s.holder_id
                      AND sh.role = s.role AND sh.share_ppm = s.share_ppm)
"""
# Stale shares go first: the share-sum trigger checks each work after every insert.
_SHARES_WRITE = (
    "DELETE FROM licensing_share WHERE id IN (SELECT id FROM imp_share_gone)",
    """INSERT INTO licensing_share (work_id, holder_id, role, share_ppm)
       SELECT work_id, holder_id, role, share_ppm FROM imp_share_added""",
)
_CHANGED_COLLECT = """
INSERT INTO imp_changed (work_id)
SELECT work_id FROM imp_identifier_gone UNION SELECT work_id FROM imp_identifier_added
UNION SELECT work_id FROM imp_share_gone UNION SELECT work_id FROM imp_share_added
"""
_TOUCH_CHANGED = """
UPDATE licensing_work SET updated_at = %s
 WHERE id IN (SELECT work_id FROM imp_changed)
   AND id NOT IN (SELECT work_id FROM imp_map WHERE changed = 1)
"""
# Works written now (new, or identifiers/shares changed) that carry an identifier some other
# work carries too: the only works whose claims can have become a conflict.
_CLAIMANTS = """
SELECT DISTINCT wi.work_id
  FROM licensing_workidentifier wi
  JOIN (SELECT work_id FROM imp_map WHERE is_new = 1
        UNION SELECT work_id FROM imp_changed) c ON c.work_id = wi.work_id
 WHERE EXISTS (SELECT 1 FROM licensing_workidentifier o
                WHERE o.scheme = wi.scheme AND o.value = wi.value AND o.work_id <> wi.work_id)
"""
_COUNTS = """
SELECT (SELECT COUNT(*) FROM imp_map WHERE is_new = 1),
       (SELECT COUNT(*) FROM (SELECT work_id FROM imp_map WHERE changed = 1
                              UNION SELECT work_id FROM imp_changed) u),
       (SELECT COUNT(*) FROM imp_map)
"""


def _table(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    return pa.Table.from_pandas(frame[columns], preserve_index=False)


def _copy_in(cursor, table_name: str, table: pa.Table) -> None:
    """PostgreSQL: stream ``table`` into ``table_name`` with COPY, as CSV made by Arrow.

    Empty strings are written quoted (``""``), which COPY reads as empty text, not NULL.
    """
    names = ", ".join(table.column_names)
    options = pa_csv.WriteOptions(include_header=False)
    with cursor.copy(f"COPY {table_name} ({names}) FROM STDIN (FORMAT csv)") as copy:
        for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(pa.Table.from_batches([batch]), sink, write_options=options)
            copy.write(memoryview(sink.getvalue()))


def _insert_in(cursor, table_name: str, table: pa.Table) -> None:
    """SQLite (and any other database): the same with executemany."""
    names = ", ".join(table.column_names)
    marks = ", ".join(["%s"] * table.num_columns)
    sql = f"INSERT INTO {table_name} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608 - table, column names: write_works' literals
    for batch in table.to_batches(max_chunksize=_COPY_BATCH_ROWS):
        columns = [column.to_pylist() for column in batch.columns]
        cursor.executemany(sql, list(zip(*columns, strict=True)))


def _work_ids(cursor, *, postgres: bool, n_works: int) -> tuple[np.ndarray, np.ndarray]:
    """Every work of the file by ``k``: its id and whether this import created it."""
    if postgres:
        with cursor.copy("COPY imp_map (k, work_id, is_new) TO STDOUT (FORMAT csv)") as copy:
            data = b"".join(bytes(block) for block in copy)
        table = pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=["k", "work_id", "is_new"]),
            convert_options=pa_csv.ConvertOptions(
                column_types={"k": pa.int64(), "work_id": pa.int64(), "is_new": pa.int8()}
            ),
        )
        k, work_id, is_new = (table[name].to_numpy() for name in ("k", "work_id", "is_new"))
    else:
        cursor.execute("SELECT k, work_id, is_new FROM imp_map")
        rows = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 3)
        k, work_id, is_new = rows[:, 0], rows[:, 1], rows[:, 2]
    ids = np.full(n_works, -1, dtype=np.int64)
    new = np.zeros(n_works, dtype=bool)
    ids[k] = work_id
    new[k] = is_new == 1
    if (ids < 0).any():  # pragma: no cover - every staged work is updated or inserted
        raise RuntimeError("a staged work has no id after the write")
    return ids, new


def catalogue_works_store(
    cursor,
    *,
    postgres: bool,
    catalogue_id: int,
    validation: Validation,
    now: object,
    progress: Callable[[str, int], None],
) -> WriteCounts:
    """Write the validated works of one catalogue; see the module docstring.

    ``cursor`` takes ``%s`` parameters (Django's cursor on either database); the caller owns
    the transaction (and the catalogue's row lock) and drops the staging tables when done
    with them (``staging_drop``). ``now`` is the timestamp as the database takes it.
    ``progress(stage, percent)`` is called between the steps.

    Identifiers and shares of works created now go straight into their tables (COPY on
    PostgreSQL); only those of existing works go through staging, to be compared.
    """
    bulk_in = _copy_in if postgres else _insert_in
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    if postgres:
        # Hash joins and aggregates over a million rows (ours, the share-sum trigger's,
        # conflict detection's) stay in memory instead of spilling; this transaction only.
        cursor.execute(f"SET LOCAL work_mem = '{_WORK_MEM}'")
    suffix = " ON COMMIT DROP" if postgres else ""
    for name, columns in _STAGING.items():
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} ({columns}){suffix}")
    progress("writing works", 47)
    works = validation.works
    bulk_in(cursor, "imp_work", _table(works, ["k", "work_ref", "title", "media_type", "consent"]))
    if postgres:
        cursor.execute("ANALYZE imp_work")
    cursor.execute(_MAP_EXISTING, [catalogue_id])
    cursor.execute(_UPDATE_CHANGED, [now])
    if postgres:
        cursor.execute(_INSERT_NEW_AND_MAP_PG, [catalogue_id, now, now])
        cursor.execute("ANALYZE imp_map")
    else:
        cursor.execute(_INSERT_NEW, [catalogue_id, now, now])
        cursor.execute(_MAP_NEW, [catalogue_id])
    work_ids, is_new = _work_ids(cursor, postgres=postgres, n_works=len(works))
    any_existing = not is_new.all()
    lap("works")

    progress("writing identifiers", 60)
    identifiers = validation.identifiers
    of_new = is_new[identifiers["k"].to_numpy()]
    if any_existing:
        existing = identifiers[~of_new]
        bulk_in(cursor, "imp_identifier", _table(existing, ["k", "scheme", "value"]))
        if postgres:
            cursor.execute("ANALYZE imp_identifier")
        for statement in (_IDENTIFIERS_GONE, _IDENTIFIERS_ADDED, *_IDENTIFIERS_WRITE):
            cursor.execute(statement)
    new = identifiers[of_new]
    table = _table(new, ["scheme", "value"])
    table = table.add_column(0, "work_id", pa.array(work_ids[new["k"].to_numpy()]))
    bulk_in(cursor, "licensing_workidentifier", table)
    lap("identifiers")

    progress("writing shares", 75)
    shares = validation.shares
    of_new = is_new[shares["k"].to_numpy()]
    if any_existing:
        existing = shares[~of_new]
        bulk_in(cursor, "imp_share", _table(existing, ["k", "holder_id", "role", "share_ppm"]))
        if postgres:
            cursor.execute("ANALYZE imp_share")
        # Stale shares are deleted before any insert: the share-sum trigger checks each work
        # after every insert.
        for statement in (_SHARES_GONE, _SHARES_ADDED, *_SHARES_WRITE):
            cursor.execute(statement)
    new = shares[of_new]
    table = _table(new, ["holder_id", "role", "share_ppm"])
    table = table.add_column(0, "work_id", pa.array(work_ids[new["k"].to_numpy()]))
    bulk_in(cursor, "licensing_share", table)
    lap("shares")

    if any_existing:
        cursor.execute(_CHANGED_COLLECT)
        cursor.execute(_TOUCH_CHANGED, [now])
    cursor.execute(_COUNTS)
    created, updated, total = cursor.fetchone()
    lap("finish")

    return WriteCounts(
        created=int(created),
        updated=int(updated),
        unchanged=int(total) - int(created) - int(updated),
        timings=timings,
    )


def claimant_work_ids(cursor, *, postgres: bool, analyze: bool) -> list[int]:
    """Works this import wrote (new, or identifiers/shares changed) that carry an identifier
    another work carries too: the only works whose claims can have become a conflict. Call
    after ``catalogue_works_store``, before ``staging_drop``. ``analyze`` refreshes the
    identifier table's statistics first (PostgreSQL), worth it after a big insert."""
    if postgres and analyze:
        cursor.execute("ANALYZE licensing_workidentifier")
    cursor.execute(_CLAIMANTS)
    return [row[0] for row in cursor.fetchall()]


def staging_drop(cursor) -> None:
    """PostgreSQL drops the staging tables at commit anyway (ON COMMIT DROP); SQLite keeps
    temporary tables for the connection's life."""
    for name in _STAGING:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
