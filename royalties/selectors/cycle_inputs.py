"""The engine's inputs for one cycle, read set-based from the database.

Usage comes from the accepted declarations whose period lies inside the cycle's (a quarterly
cycle takes quarterly declarations, or the three monthly ones), aggregated per licence: per
work (matched or reserved) and per unmatched identifier. Everything is read with one query per
frame (``COPY ... TO`` on PostgreSQL), never row by row.
"""

from __future__ import annotations

import io
import struct
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import connection

from config.bulk import table_read, table_write
from licensing.models import (
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationUnmatched,
    DeclarationWorkUsage,
    Share,
    UsageDeclaration,
    Work,
)
from royalties.models import AllocationResidue, Statement

# Bandit B608 (`# nosec B608` on each statement): the SQL here names only our models' tables
# (`_meta.db_table`) and columns, and interpolates only ids passed through int() (joined with
# commas, or as `_named`'s bigint[] literal) and `work_ids_stage`'s constant subquery.
USAGE_SCHEMA = pa.schema(
    [
        ("licence_id", pa.int64()),
        ("work_id", pa.int64()),
        ("ref", pa.string()),
        ("quantity", pa.int64()),
        ("reserved", pa.bool_()),
    ]
)
WORKS_SCHEMA = pa.schema(
    [("work_id", pa.int64()), ("media_type", pa.string()), ("disputed", pa.bool_())]
)
SHARES_SCHEMA = pa.schema(
    [("work_id", pa.int64()), ("holder_id", pa.int64()), ("share_ppm", pa.int64())]
)
BROUGHT_FORWARD_SCHEMA = pa.schema(
    [("holder_id", pa.int64()), ("brought_forward_minor", pa.int64())]
)
RESIDUE_SCHEMA = pa.schema([("holder_id", pa.int64()), ("residue_sub", pa.int64())])


def _frame(table: pa.Table, nullable: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in nullable:
        column = table.column(name)
        values = column.fill_null(0).to_numpy()
        frame[name] = pd.arrays.IntegerArray(values, column.is_null().to_numpy(False))
    return frame


PG_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _pg_rows(sql: str, *, settings: tuple[str, ...] = ()) -> list[list[memoryview | None]]:
    """The rows of ``sql`` from ``COPY ... TO STDOUT (FORMAT binary)`` on PostgreSQL, each a
    list of its fields' raw binary values (None for NULL). Meant for a few large rows (arrays
    aggregated in the query): psycopg hands a ``COPY`` over one message per row, so millions of
    small rows cost seconds of Python iteration where a few hundred arrays cost nothing.
    ``settings``: ``SET LOCAL`` statements for the query (it runs in a transaction)."""
    from django.db import transaction

    sink = io.BytesIO()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT binary)") as copy:
            for block in copy:
                sink.write(block)
    data = sink.getbuffer()
    if bytes(data[:11]) != PG_COPY_SIGNATURE:
        raise ValueError("not a PostgreSQL binary COPY stream")
    pos = 19 + struct.unpack_from(">i", data, 15)[0]
    rows = []
    while True:
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if fields == -1:
            return rows
        row: list[memoryview | None] = []
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if length < 0:
                row.append(None)
                continue
            row.append(data[pos : pos + length])
            pos += length
        rows.append(row)


def _pg_array(value: memoryview | None, dtype: str, out: np.ndarray | None = None) -> np.ndarray:
    """A one-dimensional PostgreSQL array without NULLs (binary: int8[] as ``int64``, bool[]
    as ``bool``), as numpy; written into ``out`` (its length) when given."""
    width = {"int64": 8, "bool": 1}[dtype]
    if value is None:
        raise ValueError("NULL array")
    ndim, has_null, _ = struct.unpack_from(">iii", value, 0)
    if ndim == 0:
        return np.zeros(0, dtype=dtype)
    if ndim != 1 or has_null:
        raise ValueError("expected a one-dimensional array without NULLs")
    (n,) = struct.unpack_from(">i", value, 12)
    kind = ">i8" if width == 8 else "u1"
    layout = np.dtype([("length", ">i4"), ("value", kind)])
    items = np.frombuffer(value, dtype=layout, count=n, offset=20)
    if n and (items["length"] != width).any():
        raise ValueError("unexpected array element width")
    if out is None:
        return items["value"].astype(dtype)
    if len(out) != n:
        raise ValueError("array length differs")
    out[:] = items["value"]
    return out


def _pg_array_length(value: memoryview | None) -> int:
    if value is None:
        raise ValueError("NULL array")
    ndim = struct.unpack_from(">i", value, 0)[0]
    return 0 if ndim == 0 else struct.unpack_from(">i", value, 12)[0]


def _utf8_both() -> bool:
    """Whether the server and this client both speak UTF-8 (text byte lengths agree)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('server_encoding') = 'UTF8' "
            "AND current_setting('client_encoding') = 'UTF8'"
        )
        return bool(cursor.fetchone()[0])


def _pg_int8(value: memoryview | None) -> int | None:
    return None if value is None else struct.unpack(">q", value)[0]


# The allocation's reads scan millions of rows in one pass: JIT compilation only costs time
# there, and the per-declaration arrays want more than the default work_mem.
_READ_SETTINGS = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")
# Up to this many works, the works and shares reads name them; past it they read the whole
# tables (one pass, no id list to send) and keep the works named.
_WORKS_NAMED = 50_000


def declarations_for_cycle(
    *, licence_ids: list[int], period_start: date, period_end: date
) -> dict[int, list[int]]:
    """Licence id -> ids of its accepted declarations inside the period (nil ones included)."""
    rows = UsageDeclaration.objects.filter(
        licence_id__in=licence_ids,
        status=DeclarationStatus.ACCEPTED,
        period_start__gte=period_start,
        period_end__lte=period_end,
    ).values_list("licence_id", "pk")
    found: dict[int, list[int]] = {}
    for licence_id, pk in rows:
        found.setdefault(licence_id, []).append(pk)
    return found


RAW_USAGE_SCHEMA = pa.schema(
    [
        ("declaration_id", pa.int64()),
        ("work_id", pa.int64()),
        ("ref", pa.string()),
        ("quantity", pa.int64()),
        ("reserved", pa.bool_()),
    ]
)


def usage_frame(*, declarations: dict[int, int]) -> pd.DataFrame:
    """(licence, work | identifier, reserved, quantity) rows of the given declarations
    (declaration id -> licence id): matched and reserved works, unmatched identifiers, and
    identifiers held by a registered reservation (no work: their money is held as `reserved`,
    by identifier). The stored rows are read as they are (one per declaration and work) and
    labelled with their licence here; the engine sums them per licence. Summing and joining
    in PostgreSQL took 18 s for 8.4M rows, reading them 3 s (bench/cycle.py). On PostgreSQL
    the work rows come as one row of binary arrays per declaration: a ``COPY`` of 8.2M
    rows costs seconds of per-row iteration in the client."""
    if not declarations:
        return _frame(USAGE_SCHEMA.empty_table(), nullable=("work_id",))
    ids = ",".join(str(int(pk)) for pk in sorted(declarations))
    usage = DeclarationWorkUsage._meta.db_table
    unmatched = DeclarationUnmatched._meta.db_table
    reserved = DeclarationReservedIdentifier._meta.db_table
    by_identifier = (
        f"SELECT declaration_id, NULL, scheme || ':' || identifier, quantity, FALSE "  # noqa: S608  # nosec B608
        f"FROM {unmatched} WHERE declaration_id IN ({ids}) "
        "UNION ALL "
        f"SELECT declaration_id, NULL, scheme || ':' || identifier, quantity, TRUE "
        f"FROM {reserved} WHERE declaration_id IN ({ids})"
    )
    # The same rows for PostgreSQL, per (declaration, reserved): the refs' byte lengths and
    # the refs concatenated (Arrow's string layout: no per-row parsing), and the quantities,
    # all in the order of the rows' ids.
    ref_sql = "scheme || ':' || identifier"
    by_identifier_arrays = " UNION ALL ".join(
        f"SELECT declaration_id, {flag}, array_agg(octet_length({ref_sql})::bigint ORDER BY id), "  # noqa: S608  # nosec B608
        f"string_agg({ref_sql}, '' ORDER BY id), array_agg(quantity ORDER BY id) "
        f"FROM {table} WHERE declaration_id IN ({ids}) GROUP BY declaration_id"
        for flag, table in (("FALSE", unmatched), ("TRUE", reserved))
    )
    if connection.vendor == "postgresql" and _utf8_both():
        # The work rows as one row of arrays per declaration (binary, parsed by numpy);
        # the identifier rows likewise, per (declaration, reserved).
        rows = _pg_rows(
            f"SELECT declaration_id, array_agg(work_id), array_agg(quantity), "  # noqa: S608  # nosec B608
            f"array_agg(reserved) FROM {usage} WHERE declaration_id IN ({ids}) "
            "GROUP BY declaration_id",
            settings=_READ_SETTINGS,
        )
        ident = _pg_rows(by_identifier_arrays, settings=_READ_SETTINGS)
        counts = [_pg_array_length(row[1]) for row in rows]
        declaration = [_pg_int8(row[0]) for row in rows]
        ident_counts = [_pg_array_length(row[4]) for row in ident]
        matched, n = sum(counts), sum(ident_counts)
        # Each column is filled in place, declaration by declaration (no per-declaration
        # copies to concatenate), the identifier rows after the work rows.
        work_id = np.zeros(matched + n, dtype="int64")
        quantity = np.empty(matched + n, dtype="int64")
        reserved = np.empty(matched + n, dtype="bool")
        start = 0
        for row, count in zip(rows, counts, strict=True):
            end = start + count
            _pg_array(row[1], "int64", work_id[start:end])
            _pg_array(row[2], "int64", quantity[start:end])
            _pg_array(row[3], "bool", reserved[start:end])
            start = end
        del rows
        ident_declaration = [_pg_int8(row[0]) for row in ident]
        refs = []
        for row, count in zip(ident, ident_counts, strict=True):
            end = start + count
            _pg_array(row[4], "int64", quantity[start:end])
            reserved[start:end] = bytes(row[1]) == b"\x01"
            offsets = np.zeros(count + 1, dtype="int64")
            np.cumsum(_pg_array(row[2], "int64"), out=offsets[1:])
            text = bytes(row[3] or b"")
            if offsets[-1] != len(text):
                raise ValueError("identifier lengths do not match their text")
            refs.append(
                pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text))
            )
            start = end
        del ident
        # Built column by column (no Arrow -> pandas pass over the whole table); the matched
        # rows' `ref` is '' (Arrow offsets only, no string data).
        ref = pa.chunked_array(
            [
                pa.LargeStringArray.from_buffers(
                    matched, pa.py_buffer(np.zeros(matched + 1, dtype="int64")), pa.py_buffer(b"")
                ),
                *refs,
            ]
        )
        licence_of = pd.Series(declarations, dtype="int64")
        licence_id = np.concatenate(
            [
                np.repeat(licence_of.reindex(declaration).to_numpy(), counts),
                np.repeat(licence_of.reindex(ident_declaration).to_numpy(), ident_counts),
            ]
        )
        return pd.DataFrame(
            {
                "licence_id": licence_id,
                "work_id": pd.arrays.IntegerArray(
                    work_id, np.concatenate([np.zeros(matched, bool), np.ones(n, bool)])
                ),
                "ref": pd.Series(ref.to_pandas(), dtype="str"),
                "quantity": quantity,
                "reserved": reserved,
            },
            copy=False,
        )
    sql = (
        f"SELECT declaration_id, work_id, '', quantity, reserved FROM {usage} "  # noqa: S608  # nosec B608
        f"WHERE declaration_id IN ({ids}) UNION ALL {by_identifier}"
    )
    frame = _frame(table_read(sql, schema=RAW_USAGE_SCHEMA), nullable=("work_id",))
    licence_of = pd.Series(declarations, dtype="int64")
    frame.insert(0, "licence_id", licence_of.reindex(frame.pop("declaration_id")).to_numpy())
    return frame


def usage_summed_frame(
    *, declaration_ids: list[int], licence_ids: list[int]
) -> pd.DataFrame | None:
    """The usage of the given declarations summed per work (and reserved) and per identifier
    (and reserved), rows of positive quantity only, dealt out in turn over ``licence_ids``
    (licences of ONE product): what a partition needs of donor licences, which only lend
    their summed usage to their product's proxy pool (the engine sums a proxy pool's donor
    rows per product, work, route and ref, so which of the product's donors holds a row never
    changes a result). It is bounded by the works and
    identifiers used, not by the number of declared lines. None when there are fewer summed
    rows than licences (each donor must keep some usage of its own): read them as they are."""
    if not declaration_ids or not licence_ids:
        return None
    ids = ",".join(str(int(pk)) for pk in sorted(set(declaration_ids)))
    matched = table_read(
        f"SELECT work_id, reserved, SUM(quantity) FROM {DeclarationWorkUsage._meta.db_table} "  # noqa: S608  # nosec B608
        f"WHERE declaration_id IN ({ids}) GROUP BY work_id, reserved "
        "HAVING SUM(quantity) > 0 ORDER BY work_id, reserved",
        schema=pa.schema(
            [("work_id", pa.int64()), ("reserved", pa.bool_()), ("quantity", pa.int64())]
        ),
    )
    by_identifier = " UNION ALL ".join(
        f"SELECT scheme || ':' || identifier AS ref, {flag} AS reserved, quantity "  # noqa: S608  # nosec B608
        f"FROM {table} WHERE declaration_id IN ({ids})"
        for flag, table in (
            ("FALSE", DeclarationUnmatched._meta.db_table),
            ("TRUE", DeclarationReservedIdentifier._meta.db_table),
        )
    )
    unmatched = table_read(
        f"SELECT ref, reserved, SUM(quantity) FROM ({by_identifier}) AS u "  # noqa: S608  # nosec B608
        "GROUP BY ref, reserved HAVING SUM(quantity) > 0 ORDER BY ref, reserved",
        schema=pa.schema(
            [("ref", pa.string()), ("reserved", pa.bool_()), ("quantity", pa.int64())]
        ),
    )
    m, n = len(matched), len(unmatched)
    lenders = np.asarray(sorted(int(i) for i in licence_ids), dtype="int64")
    if m + n < len(lenders):
        return None
    return pd.DataFrame(
        {
            "licence_id": lenders[np.arange(m + n) % len(lenders)],
            "work_id": pd.arrays.IntegerArray(
                np.concatenate(
                    [matched["work_id"].to_numpy().astype("int64"), np.zeros(n, "int64")]
                ),
                np.concatenate([np.zeros(m, bool), np.ones(n, bool)]),
            ),
            "ref": pd.Series([""] * m + unmatched["ref"].to_pylist(), dtype="str"),
            "quantity": np.concatenate(
                [
                    matched["quantity"].to_numpy().astype("int64"),
                    unmatched["quantity"].to_numpy().astype("int64"),
                ]
            ),
            "reserved": np.concatenate(
                [
                    matched["reserved"].to_numpy(zero_copy_only=False).astype(bool),
                    unmatched["reserved"].to_numpy(zero_copy_only=False).astype(bool),
                ]
            ),
        }
    )


def work_ids_stage(work_ids) -> str:
    """Put the works the cycle needs in a temporary table (one per database session) and
    return the subquery that names them: the works and shares reads join on it instead of
    reading the usage rows again (the path for databases other than PostgreSQL)."""
    ids = pa.table({"work_id": pa.array(np.unique(np.asarray(work_ids, dtype="int64")))})
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS cycle_work_ids (work_id bigint)")
        cursor.execute("DELETE FROM cycle_work_ids")
    table_write("cycle_work_ids", ids)
    if connection.vendor == "postgresql":  # its size, for the join's plan
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE cycle_work_ids")
    return "SELECT work_id FROM cycle_work_ids"


def _named(work_ids: np.ndarray) -> tuple[str, np.ndarray | None]:
    """For the PostgreSQL reads: the condition naming ``work_ids`` (few of them: a literal
    array; many, but well under half the works: a semi-join on `work_ids_stage`'s temporary
    table, so that a partition of the allocation reads only the works its usage names, not
    the whole catalogue) or none (most of the works), and a mask over work ids to keep the
    named ones of a whole table (or None)."""
    ids = np.asarray(work_ids, dtype="int64")
    if len(ids) and ids.min() < 0:
        raise ValueError("negative work id")
    if len(ids) <= _WORKS_NAMED:
        listed = ",".join(str(int(i)) for i in np.unique(ids))
        return f"= ANY('{{{listed}}}'::bigint[])", None
    top = int(ids.max())
    mask = None
    if top < 64 * len(ids) + (1 << 24):  # dense ids: a mask, no sort
        mask = np.zeros(top + 1, dtype=bool)
        mask[ids] = True
        distinct = np.flatnonzero(mask)
    else:  # sparse ids: the distinct ones
        distinct = np.unique(ids)
    if len(distinct) <= _WORKS_NAMED:
        return _named(distinct)
    if 2 * len(distinct) < works_count():
        return f"IN ({work_ids_stage(distinct)})", None
    return "", distinct if mask is None else mask


def _kept(ids: np.ndarray, named: np.ndarray | None) -> np.ndarray:
    """Which of ``ids`` are named: by a boolean mask over ids, by sorted distinct ids, or
    (None) all of them."""
    if named is None:
        return np.ones(len(ids), dtype=bool)
    if named.dtype != bool:
        return np.isin(ids, named, assume_unique=False)
    inside = ids < len(named)
    keep = np.zeros(len(ids), dtype=bool)
    keep[inside] = named[ids[inside]]
    return keep


def works_frame(*, work_ids) -> pd.DataFrame:
    """The works with the given ids (repeats allowed): media type and dispute. None: every
    work (one pass over the table, no ids sent)."""
    table = Work._meta.db_table
    if connection.vendor != "postgresql":
        where = "" if work_ids is None else f"WHERE w.id IN ({work_ids_stage(work_ids)})"
        sql = f"SELECT w.id, w.media_type, w.status = 'disputed' FROM {table} w {where}"  # noqa: S608  # nosec B608
        return _frame(table_read(sql, schema=WORKS_SCHEMA))
    condition, mask = ("", None) if work_ids is None else _named(work_ids)
    rows = _pg_rows(
        f"SELECT media_type, status = 'disputed', array_agg(id) FROM {table} "  # noqa: S608  # nosec B608
        f"{'WHERE id ' + condition if condition else ''} GROUP BY 1, 2",
        settings=_READ_SETTINGS,
    )
    ids = [_pg_array(row[2], "int64") for row in rows]
    media = np.asarray([bytes(row[0]).decode() for row in rows], dtype=object)
    disputed = np.asarray([bytes(row[1]) == b"\x01" for row in rows], dtype=bool)
    counts = [len(i) for i in ids]
    frame = pd.DataFrame(
        {
            "work_id": np.concatenate([np.zeros(0, "int64"), *ids]),
            "media_type": pd.Series(np.repeat(media, counts), dtype="str"),
            "disputed": np.repeat(disputed, counts),
        }
    )
    keep = _kept(frame["work_id"].to_numpy(), mask)
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def shares_frame(*, work_ids) -> pd.DataFrame:
    """Every share of the works with the given ids; one row per (work, holder) (roles
    summed). None: the shares of every work."""
    table = Share._meta.db_table
    if connection.vendor != "postgresql":
        where = "" if work_ids is None else f"WHERE s.work_id IN ({work_ids_stage(work_ids)})"
        sql = (
            f"SELECT s.work_id, s.holder_id, SUM(s.share_ppm) FROM {table} s {where} "  # noqa: S608  # nosec B608
            "GROUP BY s.work_id, s.holder_id"
        )
        return _frame(table_read(sql, schema=SHARES_SCHEMA))
    condition, mask = ("", None) if work_ids is None else _named(work_ids)
    # Arrays of about a million shares each; a holder with two roles on a work has two rows,
    # summed below (cheaper than grouping every share in the database).
    rows = _pg_rows(
        f"SELECT array_agg(work_id), array_agg(holder_id), array_agg(share_ppm) "  # noqa: S608  # nosec B608
        f"FROM {table} {'WHERE work_id ' + condition if condition else ''} "
        "GROUP BY work_id / 1048576",
        settings=_READ_SETTINGS,
    )

    def column(index: int) -> np.ndarray:
        return np.concatenate(
            [np.zeros(0, "int64"), *(_pg_array(row[index], "int64") for row in rows)]
        )

    frame = pd.DataFrame({"work_id": column(0), "holder_id": column(1), "share_ppm": column(2)})
    keep = _kept(frame["work_id"].to_numpy(), mask)
    if not keep.all():
        frame = frame[keep].reset_index(drop=True)
    if frame.duplicated(["work_id", "holder_id"]).any():
        frame = frame.groupby(["work_id", "holder_id"], as_index=False, sort=False)[
            "share_ppm"
        ].sum()
    return frame


class Catalogue:
    """The works and shares of the whole catalogue, read once (`catalogue_load`), handing
    out those of any set of work ids without another read: what each chunk of a cycle's
    allocation needs (`works_frame` and `shares_frame` of its usage's works, exactly, as
    frames of their own). It costs the catalogue, read in one pass, not the usage lines."""

    def __init__(self, works: pd.DataFrame, shares: pd.DataFrame) -> None:
        self._works = works.sort_values("work_id", kind="stable", ignore_index=True)
        self._shares = shares.sort_values("work_id", kind="stable", ignore_index=True)
        self._work_ids = self._works["work_id"].to_numpy("int64")
        self._share_work_ids = self._shares["work_id"].to_numpy("int64")

    def __len__(self) -> int:
        return len(self._works)

    def works(self, work_ids) -> pd.DataFrame:
        """The works with the given ids (repeats allowed), as `works_frame` reads them."""
        return self._take(self._works, self._work_ids, work_ids)

    def shares(self, work_ids) -> pd.DataFrame:
        """The shares of the works with the given ids, as `shares_frame` reads them."""
        return self._take(self._shares, self._share_work_ids, work_ids)

    @staticmethod
    def _take(frame: pd.DataFrame, ids: np.ndarray, work_ids) -> pd.DataFrame:
        wanted = np.asarray(work_ids, dtype="int64")
        if not len(wanted) or not len(ids):
            return frame.iloc[:0].reset_index(drop=True)
        top = int(ids[-1])  # sorted
        if top < 64 * len(ids) + (1 << 24):  # dense ids: a mask over them
            mask = np.zeros(top + 1, dtype=bool)
            mask[wanted[(wanted >= 0) & (wanted <= top)]] = True
            keep = mask[ids]
        else:
            keep = np.isin(ids, wanted)
        return frame[keep].reset_index(drop=True)


def catalogue_load() -> Catalogue:
    """Every work and every share (one read each): see `Catalogue`."""
    return Catalogue(works_frame(work_ids=None), shares_frame(work_ids=None))


def brought_forward_frame(*, previous_allocation_id: int | None) -> pd.DataFrame:
    """Each holder's carried-forward balance from the previous booked cycle's statements."""
    if previous_allocation_id is None:
        return _frame(BROUGHT_FORWARD_SCHEMA.empty_table())
    sql = (
        f"SELECT holder_id, carried_forward_minor FROM {Statement._meta.db_table} "  # noqa: S608  # nosec B608
        f"WHERE allocation_id = {int(previous_allocation_id)} AND carried_forward_minor > 0"
    )
    return _frame(table_read(sql, schema=BROUGHT_FORWARD_SCHEMA))


def residues_frame(*, previous_allocation_id: int | None) -> pd.DataFrame:
    """Each holder's rounding residue (sub-units) left by the previous booked allocation."""
    if previous_allocation_id is None:
        return _frame(RESIDUE_SCHEMA.empty_table())
    sql = (
        f"SELECT holder_id, residue_sub FROM {AllocationResidue._meta.db_table} "  # noqa: S608  # nosec B608
        f"WHERE allocation_id = {int(previous_allocation_id)} AND residue_sub <> 0"
    )
    return _frame(table_read(sql, schema=RESIDUE_SCHEMA))


def declarations_with_usage(*, declaration_ids: list[int]) -> set[int]:
    """The declarations with at least one usage row of positive quantity (matched, unmatched
    or reserved): one index probe per declaration, never a scan of the rows."""
    if not declaration_ids:
        return set()
    ids = ",".join(str(int(pk)) for pk in sorted(set(declaration_ids)))
    probes = " OR ".join(
        f"EXISTS (SELECT 1 FROM {table} u WHERE u.declaration_id = d.id AND u.quantity > 0)"  # noqa: S608  # nosec B608
        for table in (
            DeclarationWorkUsage._meta.db_table,
            DeclarationUnmatched._meta.db_table,
            DeclarationReservedIdentifier._meta.db_table,
        )
    )
    sql = (
        f"SELECT d.id FROM {UsageDeclaration._meta.db_table} d "  # noqa: S608  # nosec B608
        f"WHERE d.id IN ({ids}) AND ({probes})"
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        return {int(row[0]) for row in cursor.fetchall()}


def declaration_rows(*, declaration_ids: list[int]) -> dict[int, int]:
    """About how many usage rows each declaration stored (works matched, unmatched and
    reserved lines): what a partition of the allocation costs to load."""
    return {
        pk: a + b for pk, (a, b) in declaration_row_parts(declaration_ids=declaration_ids).items()
    }


def declaration_row_parts(*, declaration_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Each declaration's stored usage rows as (works matched, unmatched and reserved
    lines): summed over donors, the first part is bounded by the number of works."""
    rows = UsageDeclaration.objects.filter(pk__in=declaration_ids).values_list(
        "pk", "works_matched", "unmatched_lines", "reserved_lines"
    )
    return {pk: (int(a), int(b) + int(c)) for pk, a, b, c in rows}


def works_count() -> int:
    """How many works there are (an index-only count: tens of milliseconds for a million)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Work._meta.db_table}")  # noqa: S608  # nosec B608
        return int(cursor.fetchone()[0])
