# ruff: noqa: S608 - the SQL is assembled from this module's constants; values are parameters
# Bandit B608, marked `# nosec B608` on each statement: the DuckDB SQL here is assembled only
# from this module's constants (SQL fragments, SCHEMES, UNITS, limits), ints, and the file's
# own column names, which are only case/space variants of REQUIRED/OPTIONAL (checked in
# _source) and are quoted as identifiers (_columns_sql); the unit is one of UNITS (checked in
# declaration_match). The path, the schemes and identifiers read from the file, and the
# registry are parameters (?, $name) or registered Arrow tables, never SQL text.
"""Match a usage declaration file to the repertoire: parse, validate, normalise, join, sum.

Pure: no Django, no ORM, no settings. A path and two Arrow tables in, Arrow tables and exact
integer totals out. Everything runs set-based in an embedded DuckDB:

1. parse - one streaming pass of DuckDB's reader over the file (CSV with a header row,
   optionally gzip; or JSON Lines), every column as text, sums the lines per (scheme,
   declared identifier) and notes what validation needs; the lines themselves are never held,
   so memory follows the number of distinct identifiers, not of lines. A file whose first
   lines name one scheme is summed per identifier alone (cheaper), and read a second time per
   (scheme, identifier) only if a later line names another.
2. validate - required columns, the scheme in ``SCHEMES``, a non-empty identifier, a quantity
   that is a non-negative whole number (1 to 18 digits: no sign, decimal point, exponent or
   separator), one unit per file. Any error rejects the whole file; only then is the file
   read again line by line (the table's ``rowid`` is the record's position), so that the
   errors name row (the header is row 1; in JSON Lines the first record is row 1), column,
   value and what is wrong.
3. normalise - only distinct identifiers are normalised, with the repertoire's own rules
   (``licensing.identifiers.normalise_many``), so a declared spelling matches exactly when
   ``normalise`` of it equals a stored value. ISBNs written as digits, hyphens and spaces and
   work ids written as digits are normalised in SQL with the same arithmetic (tested for
   parity; anything else about them is left to ``normalise_many``). A declared identifier
   equal to a stored value is taken as it is (stored values are ``normalise`` results, which
   normalise to themselves). ``work_id`` values are work ids: digits, leading zeros ignored.
   An identifier that does not validate is not an error of the file: its usage is unmatched,
   kept under the declared text with the reason.
4. hold - the valid identifiers covered by a registered reservation (opt-out) in force for
   the licence's uses (``reservations``: the caller passes only those): an identifier
   reservation on exactly that (scheme, normalised value); for ``url`` lines, a URL-prefix
   reservation that is a prefix of the normalised URL (joined on the URL's origin first, then
   compared), or a domain reservation equal to the URL's host or to a parent domain of it
   (the host's suffixes are exploded and joined by equality). All equi-joins.
5. match - the normalised identifiers are joined with the identifier index (scheme, value,
   work_id) and the works (work_id, reserved).
6. aggregate - per work, per unmatched (scheme, identifier), and per held (scheme,
   identifier) that matched no work.

Accounting, exactly: every line's quantity is in exactly one of matched, reserved, unmatched.
An identifier carried by several works (co-claimed by different holders) has its total
quantity in the declaration split over those works equally with the largest-remainder method,
ties to the lower work id (``q // k`` each, and one more to the first ``q % k`` works): the
parts sum to ``q``. A work's part is reserved usage if the work is reserved, else matched. The
identifier's lines count as matched if any of its works is licensed, else as reserved; on
each work, ``lines`` is the number of lines naming it.

Reservations: a work named by a held identifier is reserved in this declaration, all of its
usage (the reservation covers the content, whichever identifier the licensee named it by;
one row per work keeps "reserved" a property of the work's row). A held identifier that
matches no work is reserved usage too, never unmatched: it is returned in
``reserved_unmatched`` (with the lowest id of the reservations covering it), not in
``unmatched``, so the unmatched pool holds only what someone may still claim and
matched + unmatched + reserved == declared, in lines and in quantity.
"""

from __future__ import annotations

import gzip
import queue
import re
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from licensing.identifiers import SCHEMES as IDENTIFIER_SCHEMES
from licensing.identifiers import normalise_many

__all__ = [
    "ERRORS_COLLECTED",
    "INDEX_SCHEMA",
    "MAX_QUANTITY",
    "RESERVATIONS_SCHEMA",
    "SCHEMES",
    "UNITS",
    "WORKS_SCHEMA",
    "DeclarationRejected",
    "MatchResult",
    "declaration_match",
    "normalise_declared",
]

SCHEMES = (*IDENTIFIER_SCHEMES, "work_id")
UNITS = ("tokens", "items", "bytes", "seconds", "attribution")
REQUIRED = ("scheme", "identifier", "quantity")
OPTIONAL = ("unit", "title")
MAX_QUANTITY = 2**63 - 1
ERRORS_COLLECTED = 100_000  # rows of the error report; the count is always exact
TITLE_MAX = 500
IDENTIFIER_MAX = 2000

INDEX_SCHEMA = pa.schema([("scheme", pa.string()), ("value", pa.string()), ("work_id", pa.int64())])
WORKS_SCHEMA = pa.schema([("work_id", pa.int64()), ("reserved", pa.bool_())])
RESERVATIONS_SCHEMA = pa.schema(
    [
        ("reservation_id", pa.int64()),
        ("kind", pa.string()),  # identifier | url_prefix | domain
        ("scheme", pa.string()),  # identifier reservations; else empty
        ("value", pa.string()),  # normalised identifier, normalised URL, or domain
    ]
)

StageCallback = Callable[[str, int], None]


class DeclarationRejected(Exception):
    """The file is refused as a whole. ``errors``: row, column, value, message (maybe empty);
    ``error_count``: all errors, even beyond the ``ERRORS_COLLECTED`` rows kept."""

    def __init__(
        self, message: str, errors: pd.DataFrame | None = None, error_count: int = 0
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors if errors is not None else _no_errors()
        self.error_count = error_count or len(self.errors)


@dataclass
class MatchResult:
    unit: str
    lines: int
    declared_quantity: int
    matched_lines: int
    matched_quantity: int
    unmatched_lines: int
    unmatched_quantity: int
    reserved_lines: int
    reserved_quantity: int
    work_usage: pa.Table  # work_id, quantity, lines, reserved
    unmatched: pa.Table  # scheme, identifier, valid, note, quantity, lines, title; sorted by
    # (scheme, identifier), the order of the unmatched pool's index
    reserved_unmatched: pa.Table  # scheme, identifier, quantity, lines, title, reservation_id
    timings: dict[str, float] = field(default_factory=dict)


def _no_errors() -> pd.DataFrame:
    return pd.DataFrame({"row": [], "column": [], "value": [], "message": []})


# --------------------------------------------------------------------------------------------
# Normalisation (the repertoire's rules, over distinct values)
# --------------------------------------------------------------------------------------------

_WORK_ID_RE = re.compile(r"[0-9]{1,18}")
_WS = " \t\n\r\f\v\u00a0\u200b\ufeff"


def normalise_declared(scheme: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(canonical, reasons)`` for declared identifiers of ``scheme``, as ``normalise_many``
    (exactly one of the two is None on each row). ``work_id``: a work id in digits."""
    if scheme != "work_id":
        return normalise_many(scheme, values)
    canonical, reasons = [], []
    for value in values.tolist():
        text = value.strip(_WS) if isinstance(value, str) else ""
        if _WORK_ID_RE.fullmatch(text) and int(text) > 0:
            canonical.append(str(int(text)))
            reasons.append(None)
        else:
            canonical.append(None)
            reasons.append("value is empty" if not text else "a work id is a positive integer")
    return (
        pd.Series(canonical, index=values.index, dtype=object),
        pd.Series(reasons, index=values.index, dtype=object),
    )


_PARALLEL_FROM = 200_000  # distinct values; below this one thread is as fast


def _normalise_in_parallel(scheme: str, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``normalise_declared`` over halves of ``values`` on two threads (its Arrow kernels
    release the GIL); row by row the same result."""
    if len(values) < _PARALLEL_FROM:
        return normalise_declared(scheme, values)
    middle = len(values) // 2
    halves = [values.iloc[:middle], values.iloc[middle:]]
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda half: normalise_declared(scheme, half), halves))
    return (
        pd.concat([part[0] for part in parts]),
        pd.concat([part[1] for part in parts]),
    )


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


Registry = tuple[pa.Table, pa.Table, pa.Table | None]


def declaration_match(
    path: str,
    *,
    index: pa.Table | None = None,
    works: pa.Table | None = None,
    reservations: pa.Table | None = None,
    registry: Callable[[], Registry] | None = None,
    file_format: str = "csv",
    unit: str | None = None,
    on_stage: StageCallback | None = None,
    threads: int | None = None,
    memory_limit: str = "1GB",
    temp_directory: str | None = None,
    max_inflated_bytes: int | None = None,
) -> MatchResult:
    """Match the declaration file at ``path`` against ``index`` (scheme, value, work_id) and
    ``works`` (work_id, reserved). ``reservations`` (``RESERVATIONS_SCHEMA``): the
    reservations in force for the licence's uses. ``unit``: the unit the declaration was
    filed with, which the file's ``unit`` column (if any) must agree with; without either it
    is tokens.

    ``registry``, instead of the three tables: a function returning them (index, works,
    reservations). It is called in the calling thread while the file is parsed and validated
    in another, so that reading the registry (from a database) overlaps the parse; the
    stages are still reported from the calling thread, in order.

    ``max_inflated_bytes``: a gzip file that inflates past this is refused before it is
    parsed (a gzip bomb: a small upload that would take hours to read).

    Raises ``DeclarationRejected`` when the file cannot be accepted.
    """
    if (registry is None) == (index is None or works is None):
        raise TypeError("give index and works, or registry")
    if unit and unit not in UNITS:
        raise ValueError(f"unit: one of {', '.join(UNITS)}, not {unit!r}")
    if file_format != "jsonl":
        _raw_checks(path, max_inflated_bytes)
    timings: dict[str, float] = {}

    def stage(name: str, percent: int) -> None:
        if on_stage is not None:
            on_stage(name, percent)

    db = duckdb.connect(config={"preserve_insertion_order": True})
    try:
        if threads:
            db.execute(f"SET threads = {int(threads)}")
        db.execute(f"SET memory_limit = '{memory_limit}'")
        if temp_directory:
            db.execute("SET temp_directory = ?", [temp_directory])

        stage("parsing", 10)
        if registry is None:
            lines, unit, titled = _parse_and_check(db, path, file_format, unit, timings, stage)
        else:
            events: queue.SimpleQueue = queue.SimpleQueue()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="declaration") as pool:
                parsed = pool.submit(
                    _parse_and_check,
                    db,
                    path,
                    file_format,
                    unit,
                    timings,
                    lambda name, percent: events.put((name, percent)),
                )
                parsed.add_done_callback(lambda _: events.put(None))
                try:
                    index, works, reservations = registry()
                except BaseException:
                    db.interrupt()
                    wait([parsed])
                    raise
                # The parse thread's stages, reported from this one, until it has finished.
                while (event := events.get()) is not None:
                    stage(*event)
                lines, unit, titled = parsed.result()

        clock = [time.perf_counter()]

        def done(name: str) -> None:
            now = time.perf_counter()
            timings[name] = now - clock[0]
            clock[0] = now

        stage("normalising", 45)
        db.register("idx_in", index)
        db.register("works_in", works)
        # Work ids are matched as text among the index's values; the million works are cast
        # to text only when the file names some by work id (most files name none).
        by_work_id = db.execute(
            "SELECT count(*) FROM raw WHERE lower(trim(scheme)) = 'work_id'"
        ).fetchall()[0][0]
        db.execute(
            "CREATE TEMP VIEW idx AS SELECT scheme, value, work_id FROM idx_in"  # nosec B608
            + (
                " UNION ALL SELECT 'work_id', CAST(work_id AS VARCHAR), work_id FROM works_in"
                if by_work_id
                else ""
            )
        )
        _normalise(db, titled=titled)
        done("normalise")

        stage("matching", 60)
        _hold(db, reservations)
        _match(db)
        done("match")

        stage("aggregating", 75)
        result = _aggregate(db, unit=unit, lines=lines)
        done("aggregate")
        result.timings = timings
        return result
    finally:
        db.close()


def _parse_and_check(
    db: duckdb.DuckDBPyConnection,
    path: str,
    file_format: str,
    unit: str | None,
    timings: dict[str, float],
    stage: StageCallback,
) -> tuple[int, str, bool]:
    """Parse (table ``raw``) and validate the file: (lines, unit, whether it has titles), or
    ``DeclarationRejected``."""
    started = time.perf_counter()
    source, columns = _source(db, path, file_format)
    lines, clean = _read_summed(db, source, path, columns)
    timings["parse"] = time.perf_counter() - started

    started = time.perf_counter()
    stage("validating", 30)
    first_row = 1 if file_format == "jsonl" else 2
    unit = _check(db, columns, unit, clean=clean, source=source, path=path, first_row=first_row)
    if lines == 0:
        raise DeclarationRejected(
            "The file has no lines. If nothing was used in the period, file a nil "
            "declaration instead."
        )
    timings["validate"] = time.perf_counter() - started
    return lines, unit, "title" in columns


def _source(db: duckdb.DuckDBPyConnection, path: str, file_format: str) -> tuple[str, dict]:
    """The DuckDB table function reading the file (``?`` is the path) and its columns
    ({lower-case name: name in the file}) among those a declaration has."""
    if file_format == "jsonl":
        source = (
            "read_json(?, format = 'newline_delimited', "
            "columns = {scheme: 'VARCHAR', identifier: 'VARCHAR', quantity: 'VARCHAR', "
            "unit: 'VARCHAR', title: 'VARCHAR'})"
        )
    else:
        compression = "gzip" if _is_gzip(path) else "none"
        source = (
            "read_csv(?, header = true, all_varchar = true, delim = ',', quote = '\"', "
            f"escape = '\"', compression = '{compression}', null_padding = false)"
        )
    with _read_errors(file_format):
        described = db.execute(f"DESCRIBE SELECT * FROM {source}", [path])  # nosec B608
        names = [row[0] for row in described.fetchall()]
    wanted = {name.strip().lower(): name for name in names}
    missing = [name for name in REQUIRED if name not in wanted]
    if missing:
        raise DeclarationRejected(
            f"The file has no {', '.join(missing)} column"
            f"{'s' if len(missing) > 1 else ''}. A declaration file has a header row with "
            "scheme, identifier and quantity, and optionally unit and title."
        )
    return source, {name: wanted[name] for name in (*REQUIRED, *OPTIONAL) if name in wanted}


class _read_errors:
    """Turns DuckDB's reading errors into a rejection with a reason for people."""

    def __init__(self, file_format: str) -> None:
        self.file_format = file_format

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None:
            return False
        if isinstance(exc, duckdb.InvalidInputException | duckdb.ConversionException):
            raise DeclarationRejected(_read_problem(str(exc), self.file_format)) from None
        if isinstance(exc, duckdb.IOException | OSError | EOFError | gzip.BadGzipFile):
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            first = re.sub(r":\s*/\S+", "", first)  # never show the server's file paths
            raise DeclarationRejected(f"The file cannot be read: {first}") from None
        return False


def _columns_sql(columns: dict) -> str:
    """The file's columns (quoted as identifiers: as written in the header) as ours."""
    return ", ".join(
        '"' + original.replace('"', '""') + f'" AS {name}' for name, original in columns.items()
    )


# A quantity is 1 to 18 ASCII digits (no sign, point, exponent or separator; spaces around are
# ignored), so it fits a BIGINT and the sum of a file fits a HUGEINT.
_QUANTITY_OK = "regexp_full_match(quantity, ' *[0-9]{1,18} *')"


def _read_summed(
    db: duckdb.DuckDBPyConnection, source: str, path: str, columns: dict
) -> tuple[int, bool]:
    """One streaming pass over the file: table ``raw``, the lines summed per (scheme,
    declared identifier), with what the validation needs (bad quantities, units seen). The
    lines themselves are never held. Returns (lines, whether every quantity is valid)."""
    # The optional columns are aggregated only when the file has them: without them they are
    # NULL constants, since min/max over NULLs cost about 1.3 of 4 seconds on 10M lines with
    # 2.8M distinct identifiers. ``raw`` has the same columns either way.
    inner, outer = [], []
    if "unit" in columns:
        inner.append("min(lower(trim(unit))) AS unit_min, max(lower(trim(unit))) AS unit_max")
        outer.append("min(unit_min) AS unit_min, max(unit_max) AS unit_max")
    else:
        inner.append("NULL::VARCHAR AS unit_min, NULL::VARCHAR AS unit_max")
        outer.append("NULL::VARCHAR AS unit_min, NULL::VARCHAR AS unit_max")
    if "title" in columns:
        inner.append(f"min(left(title, {TITLE_MAX})) AS title")
        outer.append("min(title) AS title")
    else:
        inner.append("NULL::VARCHAR AS title")
        outer.append("NULL::VARCHAR AS title")
    inner_sql = "".join(f", {part}" for part in inner)
    # One hash aggregation of the lines per (scheme as written, declared identifier); insertion
    # order is not needed (every output is sorted), and keeping it costs the parallel reader.
    # Most files name one scheme: then (sampled first) the lines are grouped by identifier
    # alone, a third cheaper, counting the lines of any other scheme; if there are some, the
    # file is read again and grouped by both.
    aggregates = (
        "sum(TRY_CAST(quantity AS BIGINT))::HUGEINT AS quantity, count(*) AS lines, "
        f"count(*) FILTER (WHERE NOT coalesce({_QUANTITY_OK}, false)) AS bad_quantity"
        f"{inner_sql}"
    )
    lines_sql = f"SELECT {_columns_sql(columns)} FROM {source}"  # nosec B608
    db.execute("SET preserve_insertion_order = false")
    with _read_errors("jsonl" if source.startswith("read_json") else "csv"):
        first, last = db.execute(
            f"SELECT min(scheme), max(scheme) FROM ({lines_sql} LIMIT 10000)",  # nosec B608
            [path],
        ).fetchall()[0]
        grouped = False
        if first is not None and first == last:
            db.execute(
                "CREATE TABLE raw AS SELECT ?::VARCHAR AS scheme, * FROM ("  # nosec B608
                f"  SELECT identifier, {aggregates}, "
                "  count(*) FILTER (WHERE scheme IS DISTINCT FROM ?) AS other_scheme "
                f"  FROM ({lines_sql}) GROUP BY identifier)",
                [first, first, path],
            )
            others = db.execute("SELECT coalesce(sum(other_scheme), 0) FROM raw").fetchall()
            grouped = others[0][0] == 0
            db.execute("DROP TABLE raw" if not grouped else "ALTER TABLE raw DROP other_scheme")
        if not grouped:
            db.execute(
                f"CREATE TABLE raw AS SELECT scheme, identifier, {aggregates} "  # nosec B608
                f"FROM ({lines_sql}) GROUP BY scheme, identifier",
                [path],
            )
    # The scheme in any case and with spaces ("ISBN ") is grouped again under its canonical
    # spelling; files that write it canonically (the usual case) skip that second pass.
    respelled = db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT scheme FROM raw) "
        "WHERE scheme IS DISTINCT FROM lower(trim(scheme))"
    ).fetchall()[0][0]
    if respelled:
        db.execute(
            "CREATE TABLE raw_spelled AS SELECT lower(trim(scheme)) AS scheme, identifier, "  # nosec B608
            "sum(quantity)::HUGEINT AS quantity, sum(lines)::BIGINT AS lines, "
            f"sum(bad_quantity)::BIGINT AS bad_quantity, {', '.join(outer)} "
            "FROM raw GROUP BY ALL"
        )
        db.execute("DROP TABLE raw")
        db.execute("ALTER TABLE raw_spelled RENAME TO raw")
    lines, bad = db.execute(
        "SELECT coalesce(sum(lines), 0), coalesce(sum(bad_quantity), 0) FROM raw"
    ).fetchall()[0]
    return int(lines), bad == 0


def _check(
    db: duckdb.DuckDBPyConnection,
    columns: dict,
    unit: str | None,
    *,
    clean: bool,
    source: str,
    path: str,
    first_row: int,
) -> str:
    """The file's unit; or, if anything is wrong, re-read it line by line for the row errors
    (only a rejected file pays for that) and raise ``DeclarationRejected``."""
    schemes = ", ".join(f"'{s}'" for s in SCHEMES)
    bad_groups = db.execute(
        f"SELECT count(*) FILTER (WHERE coalesce(scheme, '') NOT IN ({schemes}) "  # nosec B608
        "OR coalesce(trim(identifier), '') = '') FROM raw"
    ).fetchall()[0][0]
    units = []
    if "unit" in columns:
        units = db.execute(
            "SELECT DISTINCT u FROM (SELECT unit_min AS u FROM raw UNION ALL "
            "SELECT unit_max FROM raw) WHERE u IS NOT NULL"
        ).fetchall()
    seen = sorted(row[0] for row in units if row[0])
    unit_ok = (
        all(u in UNITS for u in seen) and len(seen) <= 1 and (not unit or seen in ([], [unit]))
    )
    if clean and bad_groups == 0 and unit_ok:
        too_big = db.execute(
            f"SELECT coalesce(sum(quantity), 0) > {MAX_QUANTITY} FROM raw"  # nosec B608
        ).fetchall()[0][0]
        if too_big:
            raise DeclarationRejected(
                f"The quantities add up to more than {MAX_QUANTITY:,}; split the declaration."
            )
        return unit or (seen[0] if seen else "tokens")
    db.execute("DROP TABLE raw")
    db.execute("SET preserve_insertion_order = true")  # rowid: the line's place in the file
    with _read_errors("jsonl" if source.startswith("read_json") else "csv"):
        db.execute(f"CREATE TABLE lines AS SELECT {_columns_sql(columns)} FROM {source}", [path])  # nosec B608
    _validate(db, list(columns), unit, first_row=first_row)
    raise AssertionError("unreachable: the first pass found an error")  # pragma: no cover


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


_RAW_PROBE = 1 << 20


def _raw_checks(path: str, max_inflated_bytes: int | None) -> None:
    """Checks on the bytes before DuckDB reads them: a gzip file inflates within the bound and
    is whole; line endings are LF or CRLF (a bare CR, the old Mac ending, makes DuckDB's
    sniffer give up with a message about dialects)."""
    if _is_gzip(path):
        inflated, head = 0, b""
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                try:
                    out = decompressor.decompress(chunk)
                except zlib.error:
                    raise DeclarationRejected(
                        "The compressed file is damaged (not a valid gzip stream); compress "
                        "the CSV again and upload it."
                    ) from None
                inflated += len(out)
                if len(head) < _RAW_PROBE:
                    head += out[: _RAW_PROBE - len(head)]
                if max_inflated_bytes is not None and inflated > max_inflated_bytes:
                    raise DeclarationRejected(
                        f"The compressed file inflates to more than {max_inflated_bytes:,} "
                        "bytes, the limit for one declaration; it was refused before being "
                        "read. Split the declaration by period or model, or ask the society."
                    )
        if not decompressor.eof:
            raise DeclarationRejected(
                "The compressed file is cut short: its gzip stream ends early. Upload the "
                "whole file again."
            )
    else:
        with open(path, "rb") as handle:
            head = handle.read(_RAW_PROBE)
    try:
        head[:-4].decode("utf-8")  # (the probe may end inside a character)
    except UnicodeDecodeError:
        return  # not UTF-8 text: DuckDB says so, with the line
    bare = re.search(rb"\r(?!\n)", head)
    if bare is not None and bare.start() < len(head) - 1:  # (a last CR may precede an LF)
        line = head[: bare.start()].count(b"\n") + 1
        raise DeclarationRejected(
            f"Line {line} of the file ends with a bare carriage return (CR, the old Mac line "
            "ending). Save the file as CSV UTF-8 with Windows (CRLF) or Unix (LF) line endings."
        )


def _read_problem(text: str, file_format: str) -> str:
    line = re.search(r"on Line: (\d+)", text)
    where = f" (line {line.group(1)})" if line else ""
    lower = text.lower()
    if "maximum line size of" in lower:
        line = re.search(r"on Line: (\d+)", text)
        number = f"Line {int(line.group(1)) + 1}" if line else "A line"
        return (
            f"{number} of the file (counting the header) is longer than DuckDB's 2 MB line "
            "limit: no identifier or title is that long; check the quoting of that line."
        )
    if "unicode" in lower or "utf-8" in lower or "utf8" in lower:
        return f"The file is not UTF-8 text{where}. Save it as CSV UTF-8 and upload it again."
    if file_format == "jsonl":
        return f"The file is not valid JSON Lines{where}: one JSON object per line."
    first = text.splitlines()[0] if text else "unreadable"
    if ("expected" in lower and "columns" in lower) or "too many" in lower:
        return f"A line of the file has a different number of fields than the header{where}."
    return f"The file is not a readable CSV file{where}: {first}"


def _validate(
    db: duckdb.DuckDBPyConnection, columns: list[str], unit: str | None, *, first_row: int
) -> str:
    schemes = ", ".join(f"'{s}'" for s in SCHEMES)
    units = ", ".join(f"'{u}'" for u in UNITS)
    has_unit = "unit" in columns
    unit_text = "lower(trim(unit))" if has_unit else "NULL"
    checks = {
        "scheme": f"coalesce(lower(trim(scheme)), '') NOT IN ({schemes})",
        "identifier": "coalesce(trim(identifier), '') = ''",
        "quantity": f"NOT coalesce({_QUANTITY_OK}, false)",
        "unit": f"coalesce({unit_text}, '') NOT IN ('', {units})",
    }
    counts = db.execute(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {cond})" for cond in checks.values())
        + f", list_distinct(list({unit_text})), "
        + f"arg_min({unit_text}, rowid) FILTER (WHERE {unit_text} IN ({units})) FROM lines"
    ).fetchall()[0]
    file_units = sorted(u for u in (counts[-2] or []) if u and u in UNITS)
    bad = sum(counts[:-2])
    declared_unit = unit or counts[-1]  # the first line's unit
    mixed = [u for u in file_units if u != declared_unit] if declared_unit else []
    if bad == 0 and not mixed:
        return declared_unit or "tokens"

    row = f"rowid + {first_row}"
    parts = [
        f"SELECT {row} AS row, 'scheme' AS col, scheme AS value, "  # nosec B608
        "CASE WHEN coalesce(trim(scheme), '') = '' THEN 'scheme is empty' "
        f"ELSE 'unknown scheme; use one of {', '.join(SCHEMES)}' END AS message "
        f"FROM lines WHERE {checks['scheme']}",
        f"SELECT {row}, 'identifier', identifier, 'identifier is empty' "  # nosec B608
        f"FROM lines WHERE {checks['identifier']}",
        f"SELECT {row}, 'quantity', quantity, "  # nosec B608
        "CASE WHEN coalesce(trim(quantity), '') = '' THEN 'quantity is empty' "
        "WHEN regexp_full_match(trim(quantity), '-[0-9.,]+') THEN 'quantity must not be negative' "
        "WHEN regexp_full_match(trim(quantity), '[+-]?[0-9]*[.,]?[0-9]*([eE][+-]?[0-9]+)?') "
        "AND regexp_matches(trim(quantity), '[.,eE]') "
        "THEN 'quantity must be a whole number' "
        "WHEN regexp_full_match(trim(quantity), '[0-9]+') THEN 'quantity is too large' "
        "ELSE 'quantity must be a non-negative whole number' END "
        f"FROM lines WHERE {checks['quantity']}",
    ]
    if has_unit:
        parts.append(
            f"SELECT {row}, 'unit', unit, 'unknown unit; use one of {', '.join(UNITS)}' "  # nosec B608
            f"FROM lines WHERE {checks['unit']}"
        )
        if mixed:
            mixed_list = ", ".join(f"'{u}'" for u in mixed)
            parts.append(
                f"SELECT {row}, 'unit', unit, 'one unit per declaration: this declaration is in "  # nosec B608
                f"{declared_unit}' FROM lines WHERE lower(trim(unit)) IN ({mixed_list})"
            )
    union = " UNION ALL ".join(parts)
    error_count = db.execute(f"SELECT count(*) FROM ({union})").fetchall()[0][0]  # nosec B608
    errors = db.execute(f"SELECT * FROM ({union}) ORDER BY row, col LIMIT {ERRORS_COLLECTED}").df()  # nosec B608
    errors.columns = ["row", "column", "value", "message"]
    errors["row"] = errors["row"].astype("int64")
    errors["value"] = errors["value"].fillna("")
    if mixed and bad == 0:
        message = (
            f"The file mixes units ({', '.join(file_units)}); a declaration has one unit"
            + (f" and this one is in {unit}" if unit else "")
            + ". Split the file by unit."
        )
    else:
        message = (
            f"Nothing was accepted: the file has {error_count:,} "
            f"error{'s' if error_count != 1 else ''}. Download the error report, fix those "
            "lines and file the declaration again."
        )
    raise DeclarationRejected(message, errors, error_count)


def _fast_sql(table: str) -> str:
    """SQL selecting ``table``'s rows with ``canonical``: the normalised identifier where it
    is an ISBN (digits with hyphens or spaces: an ISBN-13, or an ISBN-10 ending in a digit, X
    or x) or a work id (1 to 18 digits) in the usual shape and valid; else NULL, and
    ``normalise_declared``, which is the rule, decides (and gives the reason). The ISBN
    arithmetic is the repertoire's ``_fast_isbn``'s; both are tested for parity with
    ``normalise``."""

    def digit(number: str, power: int) -> str:
        return f"(({number} // {10**power}) % 10)"

    ean13 = " + ".join(f"{(1, 3)[i % 2]} * {digit('n13', 12 - i)}" for i in range(13))
    isbn10 = " + ".join(f"{j + 1} * {digit('n9', 8 - j)}" for j in range(9))
    ean10 = " + ".join(f"{(3, 1)[j % 2]} * {digit('n9', 8 - j)}" for j in range(9))
    isbn = (
        "CASE "
        f"WHEN length(c) = 13 AND n13 // {10**10} IN (978, 979) AND ({ean13}) % 10 = 0 THEN c "
        f"WHEN length(c) = 10 AND n9 IS NOT NULL AND ({isbn10}) % 11 = l10 "
        f"  THEN '978' || left(c, 9) || CAST((10 - (38 + {ean10}) % 10) % 10 AS VARCHAR) "
        "END"
    )
    work_id = (
        "CASE WHEN regexp_full_match(identifier, '[0-9]{1,18}') "
        "AND CAST(identifier AS BIGINT) > 0 THEN CAST(CAST(identifier AS BIGINT) AS VARCHAR) END"
    )
    compact = (
        "SELECT *, CASE WHEN scheme = 'isbn' "  # nosec B608
        "AND regexp_full_match(identifier, '[0-9][0-9 -]*[0-9Xx]') "
        f"THEN replace(replace(identifier, '-', ''), ' ', '') END AS c FROM {table}"
    )
    numbers = (
        "SELECT *, CASE WHEN length(c) = 13 THEN TRY_CAST(c AS BIGINT) END AS n13, "  # nosec B608
        "CASE WHEN length(c) = 10 THEN TRY_CAST(left(c, 9) AS BIGINT) END AS n9, "
        "CASE WHEN length(c) = 10 THEN CASE WHEN right(c, 1) IN ('X', 'x') THEN 10 "
        "ELSE TRY_CAST(right(c, 1) AS BIGINT) END END AS l10 "
        f"FROM ({compact})"
    )
    return (
        f"SELECT * EXCLUDE (c, n13, n9, l10), CASE WHEN c IS NOT NULL THEN {isbn} "  # nosec B608
        f"WHEN scheme = 'work_id' THEN {work_id} END AS canonical FROM ({numbers})"
    )


def _normalise(db: duckdb.DuckDBPyConnection, *, titled: bool) -> None:
    """Table ``canon``: the usage per (scheme, normalised identifier).

    ISBNs and work ids in the usual shapes are normalised in SQL (``_fast_sql``, the same
    results). Of the rest, declared identifiers equal to a stored value skip normalisation:
    stored values are ``normalise`` results, which normalise to themselves, so the outcome is
    the same. The others (distinct values only) go through ``normalise_declared``.
    """
    db.execute(
        "CREATE TABLE fast AS "
        + _fast_sql("(SELECT scheme, identifier, quantity, lines, title FROM raw)")
    )
    db.execute("DROP TABLE raw")
    db.execute(
        "CREATE TABLE todo AS SELECT r.scheme, r.identifier FROM fast r "
        "ANTI JOIN idx i ON i.scheme = r.scheme AND i.value = r.identifier "
        "WHERE r.canonical IS NULL"
    )
    frames = []
    schemes = [row[0] for row in db.execute("SELECT DISTINCT scheme FROM todo").fetchall()]
    for scheme in sorted(schemes):
        table = db.sql(
            "SELECT identifier FROM todo WHERE scheme = $scheme",
            params={"scheme": scheme},
        ).to_arrow_table()
        column = table.column("identifier")
        if column.type != pa.string():
            column = column.cast(pa.string())
        values = pd.Series(pd.arrays.ArrowStringArray(column))
        canonical, reasons = _normalise_in_parallel(scheme, values)
        frames.append(
            pa.table(
                {
                    "scheme": pa.array(np.full(len(values), scheme, dtype=object), pa.string()),
                    "identifier": column,
                    "canonical": pa.array(canonical.to_numpy(dtype=object), pa.string()),
                    "reason": pa.array(reasons.to_numpy(dtype=object), pa.string()),
                }
            )
        )
    mapping = (
        pa.concat_tables(frames)
        if frames
        else pa.table(
            {
                name: pa.array([], pa.string())
                for name in ("scheme", "identifier", "canonical", "reason")
            }
        )
    )
    db.execute("DROP TABLE todo")
    db.register("mapping_in", mapping)
    # Decided in SQL: valid, canonical. Else: a stored value as declared (no mapping row), or
    # what ``normalise_declared`` said (the canonical form, or the trimmed text and a reason).
    # Aggregates over columns that are NULL throughout (no title column, no invalid value)
    # are left out: min() over 2.8M NULLs is not free.
    noted = mapping.column("reason").null_count < len(mapping)
    note = "min(note)" if noted else "NULL::VARCHAR"
    title = "min(title)" if titled else "NULL::VARCHAR"
    db.execute(
        "CREATE TABLE canon AS SELECT scheme, "  # nosec B608
        f"left(identifier, {IDENTIFIER_MAX}) AS identifier, valid, {note} AS note, "
        f"sum(quantity) AS quantity, sum(lines)::BIGINT AS lines, {title} AS title FROM ("
        "  SELECT scheme, canonical AS identifier, true AS valid, NULL::VARCHAR AS note, "
        "    quantity, lines, title FROM fast WHERE canonical IS NOT NULL "
        "  UNION ALL "
        "  SELECT r.scheme, CASE WHEN m.identifier IS NULL THEN r.identifier "
        "    ELSE coalesce(m.canonical, trim(r.identifier)) END, "
        "    (m.identifier IS NULL OR m.canonical IS NOT NULL), m.reason, "
        "    r.quantity, r.lines, r.title "
        "  FROM fast r LEFT JOIN mapping_in m "
        "  ON m.scheme = r.scheme AND m.identifier = r.identifier WHERE r.canonical IS NULL"
        ") GROUP BY 1, 2, 3"
    )
    db.unregister("mapping_in")
    db.execute("DROP TABLE fast")


# The origin (scheme://host[:port]) and the host of a normalised URL (no IPv6 literal).
_URL_ORIGIN = "regexp_extract({0}, '^[a-z]+://[^/?#]+')"
_URL_HOST = "regexp_extract({0}, '^[a-z]+://([^/:?#\\[\\]]+)', 1)"


def _hold(db: duckdb.DuckDBPyConnection, reservations: pa.Table | None) -> None:
    """Table ``held``: the valid (scheme, identifier) of ``canon`` covered by a reservation,
    with the lowest id of those covering it. Each kind is one equi-join, run only when the
    reservations have that kind."""
    empty = "SELECT NULL::VARCHAR AS scheme, NULL::VARCHAR AS identifier, NULL::BIGINT AS rid"
    kinds: set[str] = set()
    if reservations is not None and len(reservations):
        db.register("resv", reservations)
        kinds = {row[0] for row in db.execute("SELECT DISTINCT kind FROM resv").fetchall()}
    parts = []
    if "identifier" in kinds:
        parts.append(
            "SELECT c.scheme, c.identifier, r.reservation_id AS rid FROM canon c "
            "JOIN resv r ON r.kind = 'identifier' AND r.scheme = c.scheme "
            "AND r.value = c.identifier WHERE c.valid"
        )
    if "url_prefix" in kinds:
        parts.append(
            "SELECT c.scheme, c.identifier, r.reservation_id AS rid FROM ("  # nosec B608
            f"  SELECT scheme, identifier, {_URL_ORIGIN.format('identifier')} AS origin "
            "  FROM canon WHERE valid AND scheme = 'url') c "
            "JOIN ("
            f"  SELECT reservation_id, value, {_URL_ORIGIN.format('value')} AS origin "
            "  FROM resv WHERE kind = 'url_prefix') r "
            "ON r.origin = c.origin AND starts_with(c.identifier, r.value)"
        )
    if "domain" in kinds:
        parts.append(
            "SELECT c.scheme, c.identifier, r.reservation_id AS rid FROM ("  # nosec B608
            "  SELECT scheme, identifier, unnest(list_transform(range(len(labels)), "
            "    lambda i: array_to_string(labels[i + 1:], '.'))) AS domain FROM ("
            f"    SELECT scheme, identifier, string_split({_URL_HOST.format('identifier')}, '.') "
            "    AS labels FROM canon WHERE valid AND scheme = 'url')) c "
            "JOIN resv r ON r.kind = 'domain' AND r.value = c.domain"
        )
    union = " UNION ALL ".join(parts) if parts else empty
    db.execute(
        "CREATE TABLE held AS SELECT scheme, identifier, min(rid) AS reservation_id "  # nosec B608
        f"FROM ({union}) WHERE identifier IS NOT NULL GROUP BY scheme, identifier"
    )
    if reservations is not None and len(reservations):
        db.unregister("resv")


def _match(db: duckdb.DuckDBPyConnection) -> None:
    """Table ``hits``: one row per (identifier, work) with the work's exact part; ``shared``:
    the identifier names several works (then the part is its share). A work named by a held
    identifier is reserved (all its rows).

    Every step is sized by the file, not by the registry: the index rows of the file's own
    identifiers (``cand``) and their works (``cw``) are picked out first, each with one scan
    of a registry table probing a hash table of the file's rows (joining the registry
    directly let the optimizer hash the million works for every file, a fixed 0.1 s).
    Identifiers are rarely co-claimed: the shares (a window over the identifier's rows) are
    computed only for those the index has more than once."""
    db.execute(
        "CREATE TABLE cand AS SELECT i.scheme, i.value, i.work_id FROM idx i "
        "SEMI JOIN (SELECT scheme, identifier FROM canon WHERE valid) c "
        "ON c.scheme = i.scheme AND c.identifier = i.value"
    )
    db.execute(
        "CREATE TABLE cw AS SELECT w.work_id, w.reserved FROM works_in w "
        "SEMI JOIN cand i ON i.work_id = w.work_id"
    )
    db.execute(
        "CREATE TABLE shared AS SELECT scheme, value FROM cand "
        "GROUP BY scheme, value HAVING count(*) > 1"
    )
    joined = (
        "SELECT c.scheme, c.identifier, c.quantity, c.lines, i.work_id, w.reserved, "
        "  h.identifier IS NOT NULL AS held, s.value IS NOT NULL AS shared "
        "FROM canon c "
        "JOIN cand i ON i.scheme = c.scheme AND i.value = c.identifier "
        "JOIN cw w ON w.work_id = i.work_id "
        "LEFT JOIN held h ON h.scheme = c.scheme AND h.identifier = c.identifier "
        "LEFT JOIN shared s ON s.scheme = c.scheme AND s.value = c.identifier "
        "WHERE c.valid"
    )
    single = (
        "SELECT scheme, identifier, lines, work_id, reserved OR held AS reserved, held, "
        "false AS shared, quantity AS part FROM joined WHERE NOT shared"
    )
    if not db.execute("SELECT count(*) FROM shared").fetchall()[0][0]:
        db.execute(f"CREATE TABLE hits AS WITH joined AS ({joined}) {single}")
    else:
        db.execute(
            f"CREATE TABLE hits AS WITH joined AS MATERIALIZED ({joined}) {single} "  # nosec B608
            "UNION ALL SELECT scheme, identifier, lines, work_id, reserved OR held, held, "
            "  true, quantity // k + CASE WHEN rk <= quantity % k THEN 1 ELSE 0 END FROM ("
            "  SELECT *, count(*) OVER (PARTITION BY scheme, identifier) AS k, "
            "    row_number() OVER (PARTITION BY scheme, identifier ORDER BY work_id) AS rk "
            "  FROM joined WHERE shared)"
        )
    db.execute("DROP TABLE shared; DROP TABLE cand; DROP TABLE cw")
    if db.execute("SELECT count(*) FROM held").fetchall()[0][0]:
        db.execute(
            "UPDATE hits SET reserved = true WHERE NOT reserved AND work_id IN "
            "(SELECT work_id FROM hits WHERE held)"
        )


def _aggregate(db: duckdb.DuckDBPyConnection, *, unit: str, lines: int) -> MatchResult:
    work_usage = db.sql(
        "SELECT work_id, sum(part)::BIGINT AS quantity, sum(lines)::BIGINT AS lines, "
        "bool_or(reserved) AS reserved FROM hits GROUP BY work_id ORDER BY work_id"
    ).to_arrow_table()
    db.execute(
        "CREATE TABLE missed AS SELECT c.*, k.reservation_id FROM canon c "
        "ANTI JOIN hits h ON h.scheme = c.scheme AND h.identifier = c.identifier "
        "LEFT JOIN held k ON k.scheme = c.scheme AND k.identifier = c.identifier"
    )
    unmatched = db.sql(
        "SELECT scheme, identifier, valid, coalesce(note, '') AS note, "
        "quantity::BIGINT AS quantity, lines, coalesce(title, '') AS title "
        "FROM missed WHERE reservation_id IS NULL ORDER BY scheme, identifier"
    ).to_arrow_table()
    reserved_unmatched = db.sql(
        "SELECT scheme, identifier, quantity::BIGINT AS quantity, lines, "
        "coalesce(title, '') AS title, reservation_id "
        "FROM missed WHERE reservation_id IS NOT NULL "
        "ORDER BY quantity DESC, scheme, identifier"
    ).to_arrow_table()
    declared = db.execute("SELECT coalesce(sum(quantity), 0) FROM canon").fetchall()[0][0]
    unmatched_quantity, unmatched_lines, held_quantity, held_lines = db.execute(
        "SELECT coalesce(sum(quantity) FILTER (WHERE reservation_id IS NULL), 0), "
        "coalesce(sum(lines) FILTER (WHERE reservation_id IS NULL), 0), "
        "coalesce(sum(quantity) FILTER (WHERE reservation_id IS NOT NULL), 0), "
        "coalesce(sum(lines) FILTER (WHERE reservation_id IS NOT NULL), 0) FROM missed"
    ).fetchall()[0]
    # An identifier's lines are matched if any of its works is licensed, else reserved: for
    # one work, as that work; a shared identifier's, once, by its works together.
    matched_quantity, reserved_quantity, matched_lines, reserved_lines = db.execute(
        "SELECT coalesce(sum(q_licensed), 0), coalesce(sum(q_reserved), 0), "
        "coalesce(sum(lines) FILTER (WHERE any_licensed), 0), "
        "coalesce(sum(lines) FILTER (WHERE NOT any_licensed), 0) FROM ("
        "  SELECT lines, CASE WHEN reserved THEN 0 ELSE part END AS q_licensed, "
        "    CASE WHEN reserved THEN part ELSE 0 END AS q_reserved, "
        "    NOT reserved AS any_licensed FROM hits WHERE NOT shared "
        "  UNION ALL SELECT any_value(lines), "
        "    coalesce(sum(part) FILTER (WHERE NOT reserved), 0), "
        "    coalesce(sum(part) FILTER (WHERE reserved), 0), bool_or(NOT reserved) "
        "  FROM hits WHERE shared GROUP BY scheme, identifier)"
    ).fetchall()[0]
    declared, matched_quantity = int(declared), int(matched_quantity)
    reserved_quantity = int(reserved_quantity) + int(held_quantity)
    reserved_lines = int(reserved_lines) + int(held_lines)
    unmatched_quantity = int(unmatched_quantity)
    if matched_quantity + reserved_quantity + unmatched_quantity != declared or (
        int(matched_lines) + int(reserved_lines) + int(unmatched_lines) != lines
    ):
        raise ArithmeticError(  # a bug, never a user error: the accounting must be exact
            f"declaration accounting does not add up: {matched_quantity} + {reserved_quantity} "
            f"+ {unmatched_quantity} != {declared}"
        )
    return MatchResult(
        unit=unit,
        lines=int(lines),
        declared_quantity=declared,
        matched_lines=int(matched_lines),
        matched_quantity=matched_quantity,
        unmatched_lines=int(unmatched_lines),
        unmatched_quantity=unmatched_quantity,
        reserved_lines=int(reserved_lines),
        reserved_quantity=reserved_quantity,
        work_usage=work_usage,
        unmatched=unmatched,
        reserved_unmatched=reserved_unmatched,
    )
