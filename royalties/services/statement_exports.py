"""A statement as CSV (streamed) and as PDF (WeasyPrint), for the holder's records.

The CSV has a header block (field, value) and then one table of lines: by licence/product
(`source`) and by work (`work`), amounts in integer minor units so that they add up exactly to
the header's earned amount. Every cell goes through the formula-injection guard: titles and
codes come from users.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.template.loader import render_to_string
from django.utils import timezone

from licensing.importing.report import csv_cell_defused
from licensing.templatetags.money import money_text
from royalties.models import Statement, StatementSourceLine, StatementWorkLine
from royalties.selectors.statements import statement_products, statement_top_works

LINE_COLUMNS = (
    "section",
    "product",
    "licence",
    "release",
    "work_id",
    "work_ref",
    "title",
    "quantity",
    "amount_minor",
)
CHUNK_ROWS = 2_000
PDF_TOP_WORKS = 25


def statement_filename(statement: Statement, extension: str) -> str:
    code = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in statement.holder.code)
    return f"statement-{statement.cycle.period}-{code}-{statement.pk}.{extension}"


def _header_rows(statement: Statement) -> list[tuple]:
    cycle = statement.cycle
    return [
        ("field", "value"),
        ("statement", statement.pk),
        ("holder_code", statement.holder.code),
        ("holder_name", statement.holder.name),
        ("period", cycle.period),
        ("period_start", cycle.period_start.isoformat()),
        ("period_end", cycle.period_end.isoformat()),
        ("currency", statement.currency),
        ("allocation", statement.allocation.number),
        ("published_at", statement.published_at.isoformat() if statement.published_at else ""),
        ("brought_forward_minor", statement.brought_forward_minor),
        ("gross_minor", statement.gross_minor),
        ("deductions_minor", statement.deductions_minor),
        ("earned_minor", statement.earned_minor),
        ("total_minor", statement.total_minor),
        ("carried_forward_minor", statement.carried_forward_minor),
        ("payable_minor", statement.payable_minor),
    ]


def _line_rows(statement: Statement) -> Iterator[tuple]:
    yield LINE_COLUMNS
    sources = (
        StatementSourceLine.objects.filter(statement=statement)
        .order_by("-amount_minor", "licence_id", "release_ref", "pk")
        .values_list("product_code", "licence_id", "release_ref", "amount_minor")
    )
    for product, licence_id, release, amount in sources.iterator(chunk_size=CHUNK_ROWS):
        yield ("source", product, licence_id or "", release, "", "", "", "", amount)
    works = (
        StatementWorkLine.objects.filter(statement=statement)
        .order_by("-amount_minor", "work_id", "pk")
        .values_list("work_id", "work__work_ref", "work__title", "quantity", "amount_minor")
    )
    for work_id, ref, title, quantity, amount in works.iterator(chunk_size=CHUNK_ROWS):
        yield ("work", "", "", "", work_id or "", ref or "", title or "", quantity, amount)


def statement_csv_chunks(*, statement: Statement) -> Iterator[str]:
    """The statement as CSV text, in chunks for a streaming response (UTF-8 with a BOM, so
    that spreadsheets open it as UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write("\ufeff")
    for row in _header_rows(statement):
        writer.writerow([csv_cell_defused(cell) for cell in row])
    writer.writerow([])
    for count, row in enumerate(_line_rows(statement), start=1):
        writer.writerow([csv_cell_defused(cell) for cell in row])
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def statement_pdf(*, statement: Statement) -> bytes:
    """The statement as a PDF: the summary, earnings by product and the top works."""
    from weasyprint import HTML

    currency = statement.currency
    top = statement_top_works(statement=statement, top=PDF_TOP_WORKS)
    context = {
        "statement": statement,
        "cycle": statement.cycle,
        "holder": statement.holder,
        "summary": [
            ("Brought forward", money_text(statement.brought_forward_minor, currency)),
            ("Earnings before the fee", money_text(statement.gross_minor, currency)),
            ("Administration fee", money_text(statement.deductions_minor, currency)),
            ("Earnings", money_text(statement.earned_minor, currency)),
            ("Total", money_text(statement.total_minor, currency)),
            ("Carried forward", money_text(statement.carried_forward_minor, currency)),
            ("Payable", money_text(statement.payable_minor, currency)),
        ],
        "products": [
            (row["product_code"] or "suspense release", money_text(row["amount_minor"], currency))
            for row in statement_products(statement=statement)
        ],
        "works": [
            (
                line.work.work_ref if line.work else "",
                (line.work.title if line.work else "Pro-rata redistribution"),
                line.quantity,
                money_text(line.amount_minor, currency),
            )
            for line in top["lines"]
        ],
        "rest": money_text(top["rest_minor"], currency) if top["rest_works"] else "",
        "rest_works": top["rest_works"],
        "works_count": top["works"],
        "generated_at": timezone.now(),
    }
    html = render_to_string("royalties/statements/pdf.html", context)
    return HTML(string=html).write_pdf()
