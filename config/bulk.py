"""Moving tables between the database and Arrow, set-based, on either database.

PostgreSQL streams with ``COPY ... TO STDOUT`` / ``COPY ... FROM STDIN`` (CSV written and read
by Arrow); SQLite, the embedded default, uses one query or ``executemany``. Never one ORM save
per row: bulk paths go through here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection

COPY_BATCH_ROWS = 200_000


def table_read(sql: str, params: Sequence = (), *, schema: pa.Schema) -> pa.Table:
    """Run ``sql`` (with ``%s`` parameters) and return its rows as a table of ``schema``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _copy_out(cursor, sql, params, schema)
        cursor.execute(sql, list(params))
        rows = cursor.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema.names]
    columns = [  # SQLite has no booleans: 0 and 1
        [None if v is None else bool(v) for v in col] if pa.types.is_boolean(typ) else col
        for col, typ in zip(columns, schema.types, strict=True)
    ]
    return pa.table(
        {
            name: pa.array(col, type=typ)
            for name, typ, col in zip(schema.names, schema.types, columns, strict=True)
        },
        schema=schema,
    )


def _copy_out(cursor, sql: str, params: Sequence, schema: pa.Schema) -> pa.Table:
    sink = io.BytesIO()
    query = cursor.mogrify(sql, list(params)) if params else sql
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
        for block in copy:
            sink.write(block)
    if not sink.tell():
        return schema.empty_table()
    return pa_csv.read_csv(
        pa.py_buffer(sink.getbuffer()),
        read_options=pa_csv.ReadOptions(column_names=schema.names, block_size=64 << 20),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=dict(zip(schema.names, schema.types, strict=True)),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            true_values=["t", "true", "1"],  # PostgreSQL writes booleans as t and f
            false_values=["f", "false", "0"],
        ),
    )


def table_write(table_name: str, table: pa.Table) -> None:
    """Append ``table``'s rows to ``table_name`` (columns by name), in the caller's transaction."""
    if not len(table):
        return
    names = ", ".join(table.column_names)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            options = pa_csv.WriteOptions(include_header=False)
            with cursor.copy(f"COPY {table_name} ({names}) FROM STDIN (FORMAT csv)") as copy:
                for batch in table.to_batches(max_chunksize=COPY_BATCH_ROWS):
                    sink = pa.BufferOutputStream()
                    pa_csv.write_csv(pa.Table.from_batches([batch]), sink, write_options=options)
                    copy.write(memoryview(sink.getvalue()))
            return
        marks = ", ".join(["%s"] * table.num_columns)
        sql = f"INSERT INTO {table_name} ({names}) VALUES ({marks})"  # noqa: S608  # nosec B608 - callers' model tables, literal columns
        for batch in table.to_batches(max_chunksize=COPY_BATCH_ROWS):
            columns = [column.to_pylist() for column in batch.columns]
            cursor.executemany(sql, list(zip(*columns, strict=True)))
