"""Snapshots of the identifier index, one per registry version.

Every declaration is matched against the whole identifier index (scheme, value, work) and the
list of works with their consent. Reading them from PostgreSQL costs about 1.7 seconds for a
million works, and a society's quarter files hundreds of declarations against a registry that
changed in none of them. So the index is read once per registry version and kept as Arrow files
on the worker's disk (``settings.REGISTRY_SNAPSHOT_DIR``), memory-mapped by every later
declaration on that machine: nothing is copied, and the processes share the pages.

The version: migration 0013 has statement-level triggers write a row to
``licensing_registry_change`` for every statement that inserts, deletes or truncates works,
changes a work's id or consent, a catalogue's default consent, or identifiers. A snapshot is
tagged with the rows its connection could see when the tag was read (their count and the random
token of the newest), and the tag is read *before* the index, so a snapshot is never older than
its tag: a change committed between the two is in the snapshot and makes the next reader's tag
differ. Two readers with equal tags see the same committed changes (a later database snapshot
sees a superset of an earlier one's committed transactions, and equal counts make the sets
equal). Each folder of snapshots is named by the token of the log's first row, written by the
migration: a database dropped and created again starts a new folder.

The works are kept with whether each is reserved for each use (its own consent, or else its
catalogue's default): a declaration's reserved works are those reserved for any of its
licence's uses.

SQLite, the embedded demo database, keeps no change log: its index is read every time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import connection

from licensing.matching import INDEX_SCHEMA

__all__ = [
    "USES",
    "WORKS_SNAPSHOT_SCHEMA",
    "registry_index",
    "registry_index_read",
    "registry_version",
]

logger = logging.getLogger(__name__)

USES = ("training", "fine_tuning", "rag")
WORKS_SNAPSHOT_SCHEMA = pa.schema(
    [("work_id", pa.int64()), *((f"reserved_{use}", pa.bool_()) for use in USES)]
)
_BUILDING = ".building-"


def registry_version() -> tuple[str, str] | None:
    """(the database's log token, the tag of the registry as this connection sees it now);
    None where no change log is kept (SQLite)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT token FROM licensing_registry_change ORDER BY id LIMIT 1), "
            "count(*), (SELECT token FROM licensing_registry_change ORDER BY id DESC LIMIT 1) "
            "FROM licensing_registry_change"
        )
        first, count, last = cursor.fetchone()
    return str(first), f"{count}-{last}"


def registry_index() -> tuple[pa.Table, pa.Table]:
    """The identifier index (``INDEX_SCHEMA``) and all works (``WORKS_SNAPSHOT_SCHEMA``): from
    this machine's snapshot of the current registry version, or read (and kept as the
    snapshot)."""
    version = registry_version()
    if version is None:
        return registry_index_read()
    folder = Path(settings.REGISTRY_SNAPSHOT_DIR) / version[0] / version[1]
    loaded = _load(folder)
    if loaded is not None:
        return loaded
    index, works = registry_index_read()
    try:
        _publish(folder, index, works)
    except OSError as exc:  # a full or read-only disk: the declaration goes on without it
        logger.warning("registry snapshot not kept in %s: %s", folder, exc)
    return index, works


def _reserved_sql(use: str) -> str:
    return f"COALESCE(NULLIF(w.consent_{use}, ''), c.default_consent) = 'reserved'"


def registry_index_read() -> tuple[pa.Table, pa.Table]:
    """The identifier index and the works with their reserved flags, read from the database
    set-based.

    PostgreSQL: the server writes the rows as CSV text in chunks of 100,000 ids
    (``string_agg``), a few large values that pyarrow parses; ``COPY ... TO STDOUT`` hands the
    client one message per row, and iterating those in Python cost twice as long. SQLite: one
    query each."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            index = _csv_out(
                cursor,
                "SELECT string_agg(scheme || ',' || chr(34) || replace(value, chr(34), "
                "chr(34) || chr(34)) || chr(34) || ',' || work_id, chr(10)) "
                "FROM licensing_workidentifier GROUP BY id / 100000",
                INDEX_SCHEMA,
            )
            flags = " || ',' || ".join(
                f"CASE WHEN {_reserved_sql(use)} THEN '1' ELSE '0' END" for use in USES
            )
            works = _csv_out(
                cursor,
                f"SELECT string_agg(w.id::text || ',' || {flags}, chr(10)) "  # noqa: S608  # nosec B608 - module constants
                "FROM licensing_work w JOIN licensing_catalogue c ON c.id = w.catalogue_id "
                "GROUP BY w.id / 100000",
                WORKS_SNAPSHOT_SCHEMA,
            )
            return index, works.combine_chunks()
        cursor.execute("SELECT scheme, value, work_id FROM licensing_workidentifier")
        rows = cursor.fetchall()
        index = pa.table(
            {name: [row[i] for row in rows] for i, name in enumerate(INDEX_SCHEMA.names)},
            schema=INDEX_SCHEMA,
        )
        flags = ", ".join(f"CASE WHEN {_reserved_sql(use)} THEN 1 ELSE 0 END" for use in USES)
        cursor.execute(
            f"SELECT w.id, {flags} FROM licensing_work w "  # noqa: S608  # nosec B608 - module constants
            "JOIN licensing_catalogue c ON c.id = w.catalogue_id"
        )
        rows = cursor.fetchall()
        columns = {"work_id": pa.array([row[0] for row in rows], pa.int64())}
        for i, use in enumerate(USES, start=1):
            columns[f"reserved_{use}"] = pa.array([bool(row[i]) for row in rows], pa.bool_())
        return index, pa.table(columns, schema=WORKS_SNAPSHOT_SCHEMA)


def _csv_out(cursor, sql: str, schema: pa.Schema) -> pa.Table:
    """Rows of ``sql``: each one text value holding CSV lines of ``schema``'s columns."""
    cursor.execute(sql)
    text = "\n".join(row[0] for row in cursor.fetchall())
    if not text:
        return schema.empty_table()
    return pa_csv.read_csv(
        pa.py_buffer(text.encode("utf-8")),
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=16 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _load(folder: Path) -> tuple[pa.Table, pa.Table] | None:
    try:
        index = pa.ipc.open_file(pa.memory_map(str(folder / "index.arrow"))).read_all()
        works = pa.ipc.open_file(pa.memory_map(str(folder / "works.arrow"))).read_all()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, pa.ArrowInvalid) as exc:  # damaged: read the database instead
        logger.warning("registry snapshot in %s unreadable: %s", folder, exc)
        return None
    if index.schema != INDEX_SCHEMA or works.schema != WORKS_SNAPSHOT_SCHEMA:
        return None
    return index, works


def _publish(folder: Path, index: pa.Table, works: pa.Table) -> None:
    """Write the snapshot into a fresh folder and rename it into place (atomic: a reader sees
    all of it or none); another process's snapshot of the same version wins a race. Then
    remove this database's other versions (a reader still mapping one keeps its pages)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=_BUILDING, dir=folder.parent))
    try:
        _write(building / "index.arrow", index)
        _write(building / "works.arrow", works)
        os.rename(building, folder)
    except OSError:
        shutil.rmtree(building, ignore_errors=True)
        if not folder.is_dir():
            raise
        return  # another process published this version first
    for other in folder.parent.iterdir():
        if other.name != folder.name and not other.name.startswith(_BUILDING):
            shutil.rmtree(other, ignore_errors=True)


def _write(path: Path, table: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
