"""Reads for the disclosure to rights holders: for each of a holder's works, which licensees
declared it, in which periods, how much, and what it earned.

- Usage comes from the per-work aggregates of ACCEPTED declarations (declaration -> licence ->
  licensee). A superseded declaration was replaced by its correction and is left out. Usage of
  a reserved work is shown too, flagged: the holder learns that it was used and not paid.
- Earnings per work come from the holder's published statements (``StatementWorkLine`` of the
  current allocation of approved cycles): the holder's own earnings after the administration
  fee. Earnings are NOT available per licensee: statement lines by work carry no licence,
  and the statement lines by source (``StatementSourceLine``) are written per licence product
  (their ``licence`` is empty). The pages therefore show earnings per work and cycle, earnings
  by product, and usage (not money) by licensee, and say so.

A holder sees only works it holds a share in (``Share``); any other work is a 404. Society
staff read one holder's disclosures by naming it (``holder=<code>``), or, naming none, every
work with every holder's earnings (``holder`` is then ``None``).
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import F, Q, QuerySet, Sum
from django.http import Http404

from accounts.models import Organisation
from accounts.scoping import Caller
from licensing.models import DeclarationStatus, DeclarationWorkUsage, Share, Work
from licensing.templatetags.money import ZERO_DECIMAL
from royalties.models import Statement, StatementSourceLine, StatementWorkLine


def disclosure_holder(*, caller: Caller, holder_code: str = "") -> Organisation | None:
    """The holder whose disclosures the caller reads: its own organisation. Staff name one by
    registry code, or none (``None``: every holder)."""
    if caller.is_staff:
        if not holder_code:
            return None
        holder = Organisation.objects.filter(code=holder_code).first()
        if holder is None:
            raise Http404
        return holder
    if caller.organisation is None:
        raise Http404
    return caller.organisation


def _holder_work_ids(holder: Organisation | None):
    shares = Share.objects.all() if holder is None else Share.objects.filter(holder=holder)
    return shares.values("work_id")


def disclosure_work_list(*, holder: Organisation | None, q: str = "") -> QuerySet[Work]:
    """The works the holder holds a share in, with the holder's share (ppm), by title."""
    if holder is None:
        works = Work.objects.annotate(holder_share_ppm=Sum("shares__share_ppm"))
    else:
        works = Work.objects.filter(pk__in=_holder_work_ids(holder)).annotate(
            holder_share_ppm=Sum("shares__share_ppm", filter=Q(shares__holder=holder)),
        )
    if term := q.strip():
        works = works.filter(Q(title__icontains=term) | Q(work_ref__icontains=term))
    return works.order_by("title", "pk")


def disclosure_work_get(*, holder: Organisation | None, work_id) -> Work:
    """One of the holder's works; any other work (or a bad id) is a 404."""
    try:
        return disclosure_work_list(holder=holder).select_related("catalogue").get(pk=work_id)
    except (Work.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def _accepted_usage(work_ids) -> QuerySet[DeclarationWorkUsage]:
    return DeclarationWorkUsage.objects.filter(
        work_id__in=work_ids, declaration__status=DeclarationStatus.ACCEPTED
    )


def holder_published_statements(*, holder: Organisation | None) -> QuerySet[Statement]:
    """The holder's published statements of the cycles' current allocations."""
    statements = Statement.objects.filter(
        published_at__isnull=False, allocation=F("cycle__current_allocation")
    )
    return statements if holder is None else statements.filter(holder=holder)


def _earning_lines(holder: Organisation | None, work_ids) -> QuerySet[StatementWorkLine]:
    return StatementWorkLine.objects.filter(
        statement_id__in=holder_published_statements(holder=holder).values("pk"),
        work_id__in=work_ids,
    )


def disclosure_work_totals(*, holder: Organisation | None, work_ids: list[int]) -> dict[int, dict]:
    """For a page of works: usage by unit (quantity, lines, licensees, declarations) and
    earnings by currency. Two grouped queries, whatever the number of works."""
    totals: dict[int, dict] = {pk: {"usage": [], "earnings": [], "licensees": 0} for pk in work_ids}
    usage = (
        _accepted_usage(work_ids)
        .values("work_id", "declaration__unit")
        .annotate(quantity=Sum("quantity"), lines=Sum("lines"))
        .order_by("work_id", "declaration__unit")
    )
    for row in usage:
        totals[row["work_id"]]["usage"].append(
            {"unit": row["declaration__unit"], "quantity": row["quantity"], "lines": row["lines"]}
        )
    licensees = (
        _accepted_usage(work_ids)
        .values("work_id", "declaration__licence__licensee_id")
        .distinct()
        .order_by()
    )
    for row in licensees:
        totals[row["work_id"]]["licensees"] += 1
    earnings = (
        _earning_lines(holder, work_ids)
        .values("work_id", "statement__currency")
        .annotate(amount_minor=Sum("amount_minor"))
        .order_by("work_id", "statement__currency")
    )
    for row in earnings:
        totals[row["work_id"]]["earnings"].append(
            {"currency": row["statement__currency"], "amount_minor": row["amount_minor"]}
        )
    return totals


def disclosure_work_usage(*, work: Work) -> list[dict]:
    """Who declared the work: one row per accepted declaration (licensee, model, period,
    quantity, unit, lines, reserved), oldest period first."""
    rows = (
        _accepted_usage([work.pk])
        .values(
            "declaration_id",
            "quantity",
            "lines",
            "reserved",
            licensee_code=F("declaration__licence__licensee__code"),
            licensee_name=F("declaration__licence__licensee__name"),
            model_name=F("declaration__model_name"),
            model_version=F("declaration__model_version"),
            period=F("declaration__period"),
            period_start=F("declaration__period_start"),
            period_end=F("declaration__period_end"),
            unit=F("declaration__unit"),
        )
        .order_by(
            "declaration__period_start", "declaration__licence__licensee__name", "declaration_id"
        )
    )
    return [
        {
            **row,
            "declaration": row.pop("declaration_id"),
        }
        for row in rows
    ]


def disclosure_work_earnings(*, holder: Organisation | None, work: Work) -> list[dict]:
    """What the work earned the holder, per published statement (cycle), oldest first."""
    return list(
        _earning_lines(holder, [work.pk])
        .values(
            "statement_id",
            period=F("statement__cycle__period"),
            period_start=F("statement__cycle__period_start"),
            currency=F("statement__currency"),
            published_at=F("statement__published_at"),
        )
        .annotate(quantity=Sum("quantity"), amount_minor=Sum("amount_minor"))
        .order_by("statement__cycle__period_start", "statement_id")
    )


def _major(amount_minor: int, currency: str) -> float:
    """For charts only (display): never used in arithmetic."""
    return amount_minor / (1 if currency.upper() in ZERO_DECIMAL else 100)


def disclosure_earnings_by_product(*, holder: Organisation | None) -> list[dict]:
    """The holder's earnings by licence product over all its works and published statements,
    from the statement lines by source (a suspense release is its own row). The allocation
    writes these lines per product, not per licence, so no earnings by licensee exist."""
    rows = (
        StatementSourceLine.objects.filter(
            statement_id__in=holder_published_statements(holder=holder).values("pk")
        )
        .values("product_code", currency=F("statement__currency"))
        .annotate(amount_minor=Sum("amount_minor"))
        .order_by("-amount_minor", "product_code")
    )
    return [{**row, "product_code": row["product_code"] or "Suspense releases"} for row in rows]


def disclosure_usage_by_licensee(*, holder: Organisation | None) -> list[dict]:
    """Declared quantity of the holder's works by licensee and unit (accepted declarations)."""
    return list(
        _accepted_usage(_holder_work_ids(holder))
        .values(
            licensee_name=F("declaration__licence__licensee__name"),
            unit=F("declaration__unit"),
        )
        .annotate(quantity=Sum("quantity"))
        .order_by("-quantity", "licensee_name", "unit")
    )


def disclosure_usage_by_period(*, holder: Organisation | None) -> list[dict]:
    """Declared quantity of the holder's works per period and unit (accepted declarations)."""
    return list(
        _accepted_usage(_holder_work_ids(holder))
        .values(
            period=F("declaration__period"),
            start=F("declaration__period_start"),
            unit=F("declaration__unit"),
        )
        .annotate(quantity=Sum("quantity"))
        .order_by("declaration__period_start", "declaration__period", "declaration__unit")
    )


def disclosure_overview_charts(*, holder: Organisation | None) -> dict:
    """JSON for the disclosures page's charts (major units, display only)."""
    by_product = disclosure_earnings_by_product(holder=holder)
    by_licensee = disclosure_usage_by_licensee(holder=holder)
    periods = disclosure_usage_by_period(holder=holder)
    return {
        "products": {
            "labels": [f"{r['product_code']} ({r['currency']})" for r in by_product],
            "amounts": [_major(r["amount_minor"], r["currency"]) for r in by_product],
        },
        "licensees": {
            "labels": [f"{r['licensee_name']} ({r['unit'] or 'units'})" for r in by_licensee],
            "quantities": [r["quantity"] for r in by_licensee],
        },
        "periods": _series(periods, key="unit"),
    }


def _series(rows: list[dict], *, key: str) -> dict:
    """Rows of (period, ``key``, quantity) as Chart.js labels and one dataset per ``key``."""
    labels: list[str] = []
    for row in rows:
        if row["period"] not in labels:
            labels.append(row["period"])
    values: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        values[row[key] or "unspecified"][row["period"]] = (
            values[row[key] or "unspecified"].get(row["period"], 0) + row["quantity"]
        )
    return {
        "labels": labels,
        "datasets": [
            {"label": name, "data": [series.get(label, 0) for label in labels]}
            for name, series in values.items()
        ],
    }


def disclosure_work_charts(*, usage: list[dict], earnings: list[dict]) -> dict:
    """JSON for a work's charts: quantity per period by licensee, earnings per cycle."""
    by_licensee = [
        {
            "period": row["period"],
            "who": f"{row['licensee_name']} ({row['unit'] or 'units'})",
            "quantity": row["quantity"],
        }
        for row in usage
    ]
    return {
        "periods": _series(by_licensee, key="who"),
        "earnings": {
            "labels": [f"{row['period']} ({row['currency']})" for row in earnings],
            "amounts": [_major(row["amount_minor"], row["currency"]) for row in earnings],
        },
    }
