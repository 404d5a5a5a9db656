"""Reads of holders' statements: the caller's visible statements, one statement's lines by
licence/product and by work, and the series its charts draw.

A holder sees only published statements of its cycles' current allocations (as the API);
staff see every statement. Another organisation's statement is a 404 (`get_scoped_or_404`).
"""

from __future__ import annotations

from django.db.models import Count, F, QuerySet, Sum

from accounts.scoping import Caller, get_scoped_or_404, scope
from licensing.templatetags.money import ZERO_DECIMAL
from royalties.models import Statement, StatementSourceLine, StatementWorkLine

TOP_WORKS = 10
_WORK_LINE_FIELDS = (
    "statement_id",
    "work_id",
    "quantity",
    "amount_minor",
    "work__work_ref",
    "work__title",
)


def _visible(caller: Caller) -> QuerySet[Statement]:
    statements = Statement.objects.select_related("cycle", "holder", "allocation")
    if not caller.is_staff:
        statements = statements.filter(
            published_at__isnull=False, allocation=F("cycle__current_allocation")
        )
    return scope(statements, caller)


def holder_statement_list(*, caller: Caller) -> QuerySet[Statement]:
    """The statements the caller may read, newest cycle first. Staff acting for the society
    see only current allocations here (drafts are on the cycle's pages)."""
    statements = _visible(caller)
    if caller.is_staff:
        statements = statements.filter(allocation=F("cycle__current_allocation"))
    return statements.order_by("-cycle__period_start", "holder__code", "pk")


def holder_statement_get(*, caller: Caller, pk) -> Statement:
    return get_scoped_or_404(_visible(caller), caller, pk=pk)


def statement_sources(*, statement: Statement) -> list[dict]:
    """Earnings by licence (and suspense release), largest first, with its product."""
    return list(
        StatementSourceLine.objects.filter(statement=statement)
        .values("product_code", "licence_id", "release_ref")
        .annotate(amount_minor=Sum("amount_minor"))
        .order_by("-amount_minor", "product_code", "licence_id", "release_ref")
    )


def statement_products(*, statement: Statement) -> list[dict]:
    """Earnings by product (a suspense release shows as its own row)."""
    return list(
        StatementSourceLine.objects.filter(statement=statement)
        .values("product_code")
        .annotate(amount_minor=Sum("amount_minor"))
        .order_by("-amount_minor", "product_code")
    )


def statement_work_lines(*, statement: Statement) -> QuerySet[StatementWorkLine]:
    """Earnings by work, largest first (paginate it: a holder may have a million works).

    Of the work, only what statements show (its reference and title) is loaded."""
    return (
        StatementWorkLine.objects.filter(statement=statement)
        .select_related("work")
        .only(*_WORK_LINE_FIELDS)
        .order_by("-amount_minor", "work_id")
    )


def statement_work_totals(*, statement: Statement) -> dict:
    """The statement's earnings by work in one query: their sum and how many works."""
    totals = StatementWorkLine.objects.filter(statement=statement).aggregate(
        amount=Sum("amount_minor"), works=Count("pk")
    )
    return {"total_minor": totals["amount"] or 0, "works": totals["works"]}


def statement_top_works(
    *,
    statement: Statement,
    top: int = TOP_WORKS,
    head: list[StatementWorkLine] | None = None,
    totals: dict | None = None,
) -> dict:
    """The ``top`` works and the rest (amount and number of works), for the chart and the PDF.

    ``head`` (the first ``top`` lines of ``statement_work_lines``) and ``totals`` (from
    ``statement_work_totals``), if the caller has them already, save their queries."""
    if head is None:
        head = list(statement_work_lines(statement=statement)[:top])
    if totals is None:
        totals = statement_work_totals(statement=statement)
    total, count = totals["total_minor"], totals["works"]
    shown = sum(line.amount_minor for line in head)
    return {
        "lines": head,
        "rest_minor": total - shown,
        "rest_works": max(count - len(head), 0),
        "total_minor": total,
        "works": count,
    }


def statement_chart_data(
    *,
    caller: Caller,
    statement: Statement,
    head: list[StatementWorkLine] | None = None,
    totals: dict | None = None,
) -> dict:
    """JSON for the charts: the holder's earnings over its cycles (in this currency), and this
    statement's earnings by work (top ten and the rest). Amounts in major units, for display
    only. ``head`` and ``totals``: as for ``statement_top_works``."""
    unit = 1 if statement.currency.upper() in ZERO_DECIMAL else 100
    history = (
        _visible(caller)
        .filter(
            holder_id=statement.holder_id,
            currency=statement.currency,
            allocation=F("cycle__current_allocation"),
        )
        .order_by("cycle__period_start")
        .values("cycle__period", "earned_minor", "payable_minor", "carried_forward_minor")
    )
    top = statement_top_works(statement=statement, head=head, totals=totals)
    works = [
        {
            "label": (line.work.title if line.work else "Redistribution") or f"Work {line.work_id}",
            "amount": line.amount_minor / unit,
        }
        for line in top["lines"]
    ]
    if top["rest_minor"]:
        works.append(
            {"label": f"Other works ({top['rest_works']})", "amount": top["rest_minor"] / unit}
        )
    return {
        "currency": statement.currency,
        "cycles": {
            "labels": [row["cycle__period"] for row in history],
            "earned": [row["earned_minor"] / unit for row in history],
            "payable": [row["payable_minor"] / unit for row in history],
            "carried": [row["carried_forward_minor"] / unit for row in history],
        },
        "works": {"labels": [w["label"] for w in works], "amounts": [w["amount"] for w in works]},
    }
