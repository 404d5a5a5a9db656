"""Read a catalogue file (CSV UTF-8 or XLSX) into a frame of text cells.

Every cell is read as text, never as a number: an ISBN must keep its digits and a share its
exact decimals, so type inference is switched off (pyarrow for CSV, ``dtype=str`` for XLSX).
Problems with the file as a whole (not UTF-8, not CSV, not XLSX, empty) raise ``FileProblem``
with a message for the person who uploaded it; row-level problems are the validator's job.

Pure: no Django. ``source`` is a path or a binary file object.
"""

from __future__ import annotations

import codecs
import os
import zipfile
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

__all__ = [
    "FORMATS",
    "TRIMMED",
    "WHITESPACE",
    "FileProblem",
    "catalogue_file_read",
    "sniff_format",
    "utf8_check",
]

FORMATS = ("csv", "xlsx")
# pyarrow names columns f0, f1...; cells of the first this many columns are read as text.
# A catalogue file has about a dozen columns; beyond this many the file is refused.
MAX_COLUMNS = 1024
_CHUNK = 16 * 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
# Set in a frame's ``attrs`` by the reader: its cells are trimmed already.
TRIMMED = "blanket_cells_trimmed"
# Ignored around every cell: the same characters licensing.identifiers ignores.
WHITESPACE = " \t\n\r\f\v\u00a0\u200b\ufeff"


class FileProblem(Exception):
    """The file as a whole cannot be imported. ``message`` is for people, ``code`` is stable."""

    def __init__(self, message: str, *, code: str = "invalid_file") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


Source = str | os.PathLike | BinaryIO


def _open(source: Source) -> BinaryIO:
    if isinstance(source, str | os.PathLike):
        return open(source, "rb")
    source.seek(0)
    return source


def utf8_check(source: Source) -> None:
    """Raise FileProblem naming the line and byte offset of the first byte that is not UTF-8.

    Decodes in chunks (a multi-byte character split between two chunks is carried over), so
    memory stays flat whatever the file size. Recognises the usual culprits by their first
    bytes (UTF-16 from Excel's "Unicode text", a ZIP/XLSX saved with a .csv name).
    """
    stream = _open(source)
    try:
        head = stream.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileProblem(
                "The file is UTF-16, not UTF-8. Save it as 'CSV UTF-8 (comma delimited)'.",
                code="not_utf8",
            )
        if head.startswith(_ZIP_MAGIC):
            raise FileProblem(
                "The file is a ZIP or XLSX file, not CSV text. Upload it with a .xlsx name, "
                "or save it as 'CSV UTF-8'.",
                code="not_csv",
            )
        stream.seek(0)
        offset, line, carry = 0, 1, b""
        while True:
            chunk = stream.read(_CHUNK)
            data = carry + chunk
            final = not chunk
            try:
                data.decode("utf-8")
                good, carry = data, b""
            except UnicodeDecodeError as exc:
                truncated_at_end = exc.end == len(data) and exc.reason == "unexpected end of data"
                if final or not truncated_at_end:
                    bad_offset = offset + exc.start
                    bad_line = line + data.count(b"\n", 0, exc.start)
                    shown = data[exc.start : exc.start + 4].hex(" ")
                    raise FileProblem(
                        f"The file is not UTF-8: line {bad_line} (byte offset {bad_offset}) "
                        f"has the bytes {shown}, which are not UTF-8. Save the file as "
                        "'CSV UTF-8' and upload it again.",
                        code="not_utf8",
                    ) from None
                good, carry = data[: exc.start], data[exc.start :]
            offset += len(good)
            line += good.count(b"\n")
            if final:
                return
    finally:
        if isinstance(source, str | os.PathLike):
            stream.close()


def _csv_read(source: Source) -> pa.Table:
    """All cells as text, trimmed, read block by block (peak memory: the table plus a block)."""
    bad_rows: list[str] = []

    def invalid_row(row: pa_csv.InvalidRow) -> str:
        bad_rows.append(
            f"a row has {row.actual_columns} fields where the header has "
            f"{row.expected_columns}: {row.text[:120]!r}"
        )
        return "error"

    stream = _open(source)
    try:
        reader = pa_csv.open_csv(
            stream,
            read_options=pa_csv.ReadOptions(
                autogenerate_column_names=True, block_size=4 * 1024 * 1024
            ),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=invalid_row
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(MAX_COLUMNS)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        batches = [_trim_batch(batch) for batch in reader]
        return pa.Table.from_batches(batches, schema=batches[0].schema if batches else None)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise FileProblem("The file is empty.", code="empty_file") from None
        detail = bad_rows[0] if bad_rows else str(exc).removeprefix("CSV parse error: ")
        raise FileProblem(f"The file is not valid CSV: {detail}", code="not_csv") from None
    finally:
        if isinstance(source, str | os.PathLike):
            stream.close()


def _trim_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pc.utf8_trim(column, WHITESPACE) for column in batch.columns], schema=batch.schema
    )


# An XLSX is a zip: a few hundred kilobytes can inflate to gigabytes (a zip bomb). Real
# workbooks deflate XML about 5-20:1; these bounds leave a wide margin and still refuse a bomb
# before a byte of it is inflated.
XLSX_MAX_INFLATED_BYTES = 1 << 30
XLSX_MAX_RATIO = 200


def _xlsx_inflation_check(stream: BinaryIO) -> None:
    """Refuse a workbook whose parts would inflate past the bounds, from the zip's directory
    (sizes the archive declares; zipfile also stops a part that inflates past its declared
    size)."""
    try:
        members = zipfile.ZipFile(stream).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a readable zip: openpyxl says so in its own words below
    inflated = sum(m.file_size for m in members)
    packed = max(sum(m.compress_size for m in members), 1)
    if inflated > XLSX_MAX_INFLATED_BYTES or (
        inflated > (16 << 20) and inflated / packed > XLSX_MAX_RATIO
    ):
        raise FileProblem(
            f"The XLSX workbook would inflate to {inflated:,} bytes from {packed:,} "
            f"({inflated // packed:,}:1), far beyond any real catalogue; it is refused unread. "
            "Save the sheet as 'CSV UTF-8' and upload that instead.",
            code="xlsx_too_large",
        )


def _xlsx_read(source: Source) -> pd.DataFrame:
    stream = _open(source)
    try:
        if stream.read(4) != _ZIP_MAGIC:
            raise FileProblem(
                "The file is not an XLSX workbook. Save it as 'Excel Workbook (.xlsx)' or as "
                "'CSV UTF-8' with a .csv name.",
                code="not_xlsx",
            )
        stream.seek(0)
        _xlsx_inflation_check(stream)
        stream.seek(0)
        try:
            # Cells as text: openpyxl gives ints for whole numbers and floats for the rest,
            # which dtype=str turns into their shortest exact spelling ("33.3333").
            frame = pd.read_excel(
                stream, sheet_name=0, header=None, dtype=str, na_filter=False, engine="openpyxl"
            )
        except ImportError:
            raise FileProblem(
                "XLSX files cannot be read on this server (openpyxl is not installed); "
                "upload the catalogue as CSV UTF-8.",
                code="xlsx_unsupported",
            ) from None
        except Exception as exc:  # openpyxl and zipfile raise many types for broken files
            raise FileProblem(f"The XLSX workbook cannot be read: {exc}", code="not_xlsx") from None
    finally:
        if isinstance(source, str | os.PathLike):
            stream.close()
    if frame.shape[1] > MAX_COLUMNS:
        raise FileProblem(f"The file has more than {MAX_COLUMNS} columns.", code="too_many")
    return frame.astype("str")


def catalogue_file_read(source: Source, *, file_format: str) -> tuple[list[str], pd.DataFrame]:
    """Read the file: ``(header, rows)``.

    ``header`` is the first row's cells as written; ``rows`` holds every later row (text
    trimmed of surrounding whitespace, "" for a blank cell), one column per header cell in
    the same order, columns named by
    position (0, 1, ...), and a RangeIndex, so the spreadsheet row number of ``rows`` index
    ``i`` is ``i + 2``. Raises FileProblem for a file that cannot be read at all.
    """
    if file_format not in FORMATS:
        raise FileProblem(
            f"Files of type {file_format!r} cannot be imported: upload CSV or XLSX.",
            code="unsupported_format",
        )
    if file_format == "csv":
        utf8_check(source)
        table = _csv_read(source)
        if table.num_columns >= MAX_COLUMNS:
            raise FileProblem(f"The file has more than {MAX_COLUMNS} columns.", code="too_many")
        if table.num_rows == 0:
            raise FileProblem("The file is empty.", code="empty_file")
        header = [str(v) for v in table.slice(0, 1).to_pylist()[0].values()]
        body = table.slice(1)
        body = body.rename_columns([str(i) for i in range(body.num_columns)])
        rows = body.to_pandas(types_mapper=pd.ArrowDtype)
        rows.columns = range(body.num_columns)
    else:
        frame = _xlsx_read(source)
        if frame.empty:
            raise FileProblem("The file is empty.", code="empty_file")
        header = [str(v) for v in frame.iloc[0].tolist()]
        body = pa.table(
            {
                str(i): pc.utf8_trim(pa.array(frame.iloc[1:, i], pa.string()), WHITESPACE)
                for i in range(frame.shape[1])
            }
        )
        rows = body.to_pandas(types_mapper=pd.ArrowDtype)
        rows.columns = range(frame.shape[1])
    rows.index = pd.RangeIndex(len(rows))
    rows.attrs[TRIMMED] = True  # the validator need not trim (copy) the columns again
    return header, rows


def sniff_format(name: str) -> str | None:
    """The format from a file name's extension (``csv``/``xlsx``), or None."""
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    return extension if extension in FORMATS else None
