"""The error report of an import: every error as CSV, for people to fix their file.

Pure: a Validation in, bytes out.
"""

from __future__ import annotations

import csv
import io

from licensing.importing.validate import Validation

__all__ = ["ERROR_REPORT_COLUMNS", "csv_cell_defused", "error_report_csv"]

ERROR_REPORT_COLUMNS = ("row", "column", "value", "message")
# A cell starting with one of these is run as a formula by spreadsheets (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_defused(value: object) -> str:
    """A cell a spreadsheet would run as a formula is shown with a leading apostrophe (CSV
    injection); every CSV export of user-supplied text goes through this."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def error_report_csv(validation: Validation, *, skipped: bool) -> bytes:
    """Every error as CSV (row, column, value, message), UTF-8 with a BOM so that Excel opens
    it as UTF-8. With ``skipped`` (mode valid_only), one more line per skipped work says so."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ERROR_REPORT_COLUMNS)
    errors = validation.errors
    writer.writerows(
        zip(
            errors["row"].tolist(),
            errors["column"].tolist(),
            map(csv_cell_defused, errors["value"].tolist()),
            errors["message"].tolist(),
            strict=True,
        )
    )
    if skipped:
        for work_ref, row, error_rows in validation.skipped.itertuples(index=False):
            label = "rows" if "," in str(error_rows) else "row"
            writer.writerow(
                [
                    int(row),
                    "work_ref",
                    csv_cell_defused(str(work_ref)),
                    f"work skipped, not imported: it has errors on {label} {error_rows}",
                ]
            )
    return buffer.getvalue().encode("utf-8")
