"""The society's annual transparency report (CRM Directive 2014/26/EU art. 22 and Annex; UK
CMO Regulations 2016 reg. 21), computed from the ledger on the fly: nothing is stored.

Every money figure is a sum of ledger postings in the report's currency, read by account and
by the entry that made them (entries are dated by ``effective_date``; the year is
``[start, end]``), so the report reconciles to the ledger exactly:

- collected        credits to ``deferred_revenue`` by licence payments, less debits by refunds
                   (per product: the payment's licence's product)
- recognised       debits to ``deferred_revenue`` by cycle entries (revenue released to the
                   cycles of the year), of which ``processing_fees`` credited back (deducted)
- admin fees       credits to ``admin_fee_income:<product>``
- to / from suspense   credits / debits to ``suspense:<reason>`` by cycle entries
- distributed      credits to ``holder:<code>`` by the cycles' ``allocate`` entries (by media
                   type and product from the statements' lines, which add up to it exactly)
- made payable     credits to ``holder_payable:<code>`` by the cycles' ``payable`` entries
- paid             debits to ``holder_payable:<code>`` by payout ``sent`` entries, less the
                   reversals (debits to ``cash``); holders paid: those with a positive net
- held at year end balances of ``deferred_revenue``, ``distribution_pool``, ``suspense:*``,
                   ``holder:*``, ``holder_payable:*`` and ``retained_funds`` on the last day

Distribution deadline (CRM art. 13(1)): money is distributed and paid within nine months of
the end of the financial year in which it was collected. Licence fees are paid up front and
deferred; a cycle distributes the revenue recognised in its period, so the money of a cycle
counts as collected in the financial year that holds the cycle's last day. A payout sent
after that year's deadline is paid late; suspense still held past it is reported with its
reason (identification and matching are the directive's objective reasons for delay).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import BigIntegerField, Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.utils import timezone

from licensing.importing.report import csv_cell_defused
from licensing.models import LicenceProduct, Payment, Refund
from licensing.templatetags.money import money_text
from royalties.models import (
    Cycle,
    Payout,
    Posting,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
    SuspenseReason,
)
from royalties.services.recognition import BOOKED_STATUSES

DEADLINE_MONTHS = 9
NON_DISTRIBUTABLE_YEARS = 3


# --- financial years and deadlines ------------------------------------------------------------


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return min(date(year, month, day.day), following - timedelta(days=1))


def financial_year_bounds(year: int, start_month: int = 1) -> tuple[date, date]:
    """The financial year called ``year``: it starts on the first of ``start_month`` of
    ``year`` (a calendar year by default) and lasts twelve months."""
    if not 1 <= start_month <= 12:
        raise ValueError("start_month is 1..12")
    start = date(year, start_month, 1)
    return start, _add_months(start, 12) - timedelta(days=1)


def financial_year_of(day: date, start_month: int = 1) -> int:
    return day.year if day.month >= start_month else day.year - 1


def distribution_deadline(year: int, start_month: int = 1) -> date:
    """Last day to distribute and pay money collected in financial year ``year``."""
    _, end = financial_year_bounds(year, start_month)
    return _add_months(end + timedelta(days=1), DEADLINE_MONTHS) - timedelta(days=1)


def cycle_deadline(cycle: Cycle, start_month: int = 1) -> date:
    return distribution_deadline(financial_year_of(cycle.period_end, start_month), start_month)


# --- ledger reads ------------------------------------------------------------------------------


def _postings(currency: str, start: date | None, end: date):
    rows = Posting.objects.filter(currency=currency, entry__effective_date__lte=end)
    if start is not None:
        rows = rows.filter(entry__effective_date__gte=start)
    return rows


def _sum(rows) -> int:
    return int(rows.aggregate(t=Sum("amount_minor"))["t"] or 0)


def _code(name: str, currency: str) -> str:
    return f"{name}:{currency}"


def _by_account(rows, prefix: str, currency: str) -> dict[str, int]:
    """Sums by the middle part of ``<prefix>:<middle>:<currency>`` account codes."""
    found: dict[str, int] = defaultdict(int)
    grouped = (
        rows.filter(account__code__startswith=f"{prefix}:", account__code__endswith=f":{currency}")
        .values("account__code")
        .annotate(t=Sum("amount_minor"))
    )
    for row in grouped:
        middle = row["account__code"][len(prefix) + 1 : -(len(currency) + 1)]
        found[middle] += int(row["t"])
    return dict(found)


# --- the report ---------------------------------------------------------------------------------


@dataclass
class AnnualReport:
    year: int
    currency: str
    start: date
    end: date
    deadline: date
    generated_at: object
    collected: list[dict] = field(default_factory=list)
    recognised: list[dict] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    admin_fees: list[dict] = field(default_factory=list)
    suspense_in: list[dict] = field(default_factory=list)
    distributed_by_media: list[dict] = field(default_factory=list)
    distributed_by_product: list[dict] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)
    suspense_held: list[dict] = field(default_factory=list)
    suspense_ageing: list[dict] = field(default_factory=list)
    late: list[dict] = field(default_factory=list)
    cycles: list[dict] = field(default_factory=list)
    holders_paid: int = 0
    payouts_sent: int = 0

    @property
    def figure_rows(self) -> list[tuple[str, str, int]]:
        return [(k, FIGURE_LABELS.get(k, k), v) for k, v in self.figures.items()]

    @property
    def held_total_minor(self) -> int:
        return sum(row["amount_minor"] for row in self.held)

    @property
    def suspense_held_total_minor(self) -> int:
        return sum(row["amount_minor"] for row in self.suspense_held)


FIGURE_LABELS = {
    "collected_gross_minor": "Licence payments received",
    "refunded_minor": "Refunded to licensees",
    "collected_minor": "Collected (net of refunds)",
    "processing_fees_charged_minor": "Payment processing fees charged on collection",
    "recognised_minor": "Revenue recognised for distribution (cycles of the year)",
    "processing_fees_deducted_minor": "Deduction: payment processing fees",
    "admin_fees_minor": "Deduction: administration fees",
    "released_from_suspense_minor": "Released from suspense into the cycles",
    "to_suspense_minor": "Held in suspense by the cycles",
    "retained_minor": "Retained from suspense after the hold (stated purpose)",
    "distributed_minor": "Distributed (allocated to rights holders)",
    "made_payable_minor": "Made payable in payout runs",
    "paid_gross_minor": "Paid to rights holders (transfers sent)",
    "reversed_minor": "Transfers reversed or returned",
    "paid_minor": "Paid to rights holders (net)",
    "failed_minor": "Payouts failed (back to the holders' balances)",
    "transfer_fees_minor": "Payout transfer fees (borne by the society)",
    "paid_late_minor": "Paid after the distribution deadline",
    "held_past_deadline_minor": "Suspense held past its distribution deadline at year end",
}


def annual_report_build(
    *, year: int, currency: str = "EUR", start_month: int = 1, today: date | None = None
) -> AnnualReport:
    """The report for financial year ``year`` in ``currency``, from the ledger."""
    currency = currency.upper()
    start, end = financial_year_bounds(year, start_month)
    report = AnnualReport(
        year=year,
        currency=currency,
        start=start,
        end=end,
        deadline=distribution_deadline(year, start_month),
        generated_at=timezone.now(),
    )
    year_rows = _postings(currency, start, end)
    figures = report.figures

    # Collected: licence payments (and refunds) booked to deferred revenue.
    deferred = _code("deferred_revenue", currency)
    payments = year_rows.filter(account__code=deferred, entry__source_type="payment")
    refunds = year_rows.filter(account__code=deferred, entry__source_type="refund")
    gross_by_product = _by_product(payments, Payment, "licence__product__code")
    refund_by_product = _by_product(refunds, Refund, "payment__licence__product__code")
    figures["collected_gross_minor"] = -_sum(payments)
    figures["refunded_minor"] = _sum(refunds)
    figures["collected_minor"] = figures["collected_gross_minor"] - figures["refunded_minor"]
    figures["processing_fees_charged_minor"] = _sum(
        year_rows.filter(
            account__code=_code("processing_fees", currency), entry__source_type="payment"
        )
    )
    media = dict(LicenceProduct.objects.values_list("code", "media_types"))
    for product in sorted(set(gross_by_product) | set(refund_by_product)):
        received = -gross_by_product.get(product, 0)
        refunded = refund_by_product.get(product, 0)
        report.collected.append(
            {
                "product": product,
                "media_types": ", ".join(media.get(product) or []) or "all",
                "received_minor": received,
                "refunded_minor": refunded,
                "collected_minor": received - refunded,
            }
        )

    # The cycles of the year: recognition, deductions, suspense, distribution.
    cycle_rows = year_rows.filter(entry__source_type="cycle")
    figures["recognised_minor"] = _sum(cycle_rows.filter(account__code=deferred))
    figures["processing_fees_deducted_minor"] = -_sum(
        cycle_rows.filter(account__code=_code("processing_fees", currency))
    )
    fees = _by_account(cycle_rows, "admin_fee_income", currency)
    report.admin_fees = [{"product": p, "amount_minor": -a} for p, a in sorted(fees.items()) if a]
    figures["admin_fees_minor"] = -sum(fees.values())
    suspense_in = _by_account(
        cycle_rows.filter(entry__idempotency_key__endswith=":suspense"), "suspense", currency
    )
    suspense_out = _by_account(
        cycle_rows.filter(
            Q(entry__idempotency_key__endswith=":release")
            | Q(entry__idempotency_key__endswith=":retain")
        ),
        "suspense",
        currency,
    )
    labels = dict(SuspenseReason.choices)
    report.suspense_in = [
        {
            "reason": r,
            "label": labels.get(r, r),
            "in_minor": -suspense_in.get(r, 0),
            "out_minor": suspense_out.get(r, 0),
        }
        for r in sorted(set(suspense_in) | set(suspense_out))
    ]
    figures["to_suspense_minor"] = -sum(suspense_in.values())
    figures["retained_minor"] = -_sum(
        cycle_rows.filter(account__code=_code("retained_funds", currency))
    )
    figures["released_from_suspense_minor"] = sum(suspense_out.values()) - figures["retained_minor"]
    figures["distributed_minor"] = -_sum(
        cycle_rows.filter(
            entry__idempotency_key__endswith=":allocate",
            account__code__startswith="holder:",
            account__code__endswith=f":{currency}",
        )
    )
    figures["made_payable_minor"] = -_sum(
        cycle_rows.filter(
            entry__idempotency_key__endswith=":payable",
            account__code__startswith="holder_payable:",
            account__code__endswith=f":{currency}",
        )
    )
    cycles = _cycles_of(currency, start, end)
    report.cycles = [
        {
            "period": c.period,
            "status": c.get_status_display(),
            "deadline": cycle_deadline(c, start_month),
        }
        for c in cycles
    ]
    allocations = [c.current_allocation_id for c in cycles]
    report.distributed_by_media = [
        {"media_type": row["work__media_type"] or "pro-rata redistribution", **row}
        for row in StatementWorkLine.objects.filter(statement__allocation_id__in=allocations)
        .values("work__media_type")
        .annotate(amount_minor=Sum("amount_minor"), works=Count("work_id", distinct=True))
        .order_by("-amount_minor", "work__media_type")
    ]
    report.distributed_by_product = [
        {"product": row["product_code"] or "suspense release", "amount_minor": row["amount_minor"]}
        for row in StatementSourceLine.objects.filter(statement__allocation_id__in=allocations)
        .values("product_code")
        .annotate(amount_minor=Sum("amount_minor"))
        .order_by("-amount_minor", "product_code")
    ]
    report.recognised = [
        {
            "period": c.period,
            "product": row["product_code"],
            "recognised_minor": row["recognised_minor"],
            "processing_fee_minor": row["processing_fee_minor"],
            "pool_minor": row["pool_minor"],
            "fee_minor": row["fee_minor"],
            "holders_minor": row["holders_minor"],
            "suspense_minor": row["suspense_minor"],
        }
        for c in cycles
        for row in c.current_allocation.licences.values("product_code")
        .annotate(
            recognised_minor=Sum("recognised_minor"),
            processing_fee_minor=Sum("processing_fee_minor"),
            pool_minor=Sum("pool_minor"),
            fee_minor=Sum("fee_minor"),
            holders_minor=Sum("holders_minor"),
            suspense_minor=Sum("suspense_minor"),
        )
        .order_by("product_code")
    ]

    # Payouts: sent, reversed, failed, fees; late against each cycle's deadline.
    _payouts(report, year_rows, currency, start_month)

    # Held at year end: balances on the last day.
    balances = _postings(currency, None, end)
    held = [
        ("deferred_revenue", "Collected, not yet recognised (deferred revenue)"),
        ("distribution_pool", "Distribution pool (clears within each cycle)"),
        ("holder", "Allocated, owed to holders and carried forward (below threshold)"),
        ("holder_payable", "Payable to holders, not yet paid"),
        ("retained_funds", "Retained after the suspense hold"),
    ]
    for name, label in held:
        if name in ("holder", "holder_payable"):
            amount = -_sum(
                balances.filter(
                    account__code__startswith=f"{name}:", account__code__endswith=f":{currency}"
                )
            )
        else:
            amount = -_sum(balances.filter(account__code=_code(name, currency)))
        report.held.append({"account": name, "label": label, "amount_minor": amount})
    suspense_balance = _by_account(balances, "suspense", currency)
    report.suspense_held = [
        {"reason": r, "label": labels.get(r, r), "amount_minor": -a}
        for r, a in sorted(suspense_balance.items())
        if a
    ]
    report.held.append(
        {
            "account": "suspense",
            "label": "Held in suspense (all reasons)",
            "amount_minor": report.suspense_held_total_minor,
        }
    )
    report.suspense_ageing = suspense_ageing_at(currency=currency, end=end, start_month=start_month)
    figures["held_past_deadline_minor"] = sum(
        row["amount_minor"] for row in report.suspense_ageing if row["past_deadline"]
    )
    return report


def _by_product(rows, model, path: str) -> dict[str, int]:
    """Posting sums grouped by the product of the payment or refund the entry books."""
    by_source: dict[str, int] = defaultdict(int)
    for source_id, total in rows.values_list("entry__source_id").annotate(t=Sum("amount_minor")):
        by_source[source_id] += int(total)
    ids = [int(s) for s in by_source if s.isdigit()]
    product_of = {
        str(pk): code for pk, code in model.objects.filter(pk__in=ids).values_list("pk", path)
    }
    found: dict[str, int] = defaultdict(int)
    for source_id, total in by_source.items():
        found[product_of.get(source_id, "unknown")] += total
    return dict(found)


def _cycles_of(currency: str, start: date, end: date) -> list[Cycle]:
    """Booked cycles whose entries fall in the year (they are dated by the period's end)."""
    return list(
        Cycle.objects.filter(
            currency=currency,
            status__in=BOOKED_STATUSES,
            period_end__gte=start,
            period_end__lte=end,
            current_allocation__isnull=False,
        )
        .select_related("current_allocation")
        .order_by("period_start")
    )


def _payouts(report: AnnualReport, year_rows, currency: str, start_month: int) -> None:
    figures = report.figures
    payout_rows = year_rows.filter(entry__source_type="payout")
    payable = payout_rows.filter(
        account__code__startswith="holder_payable:", account__code__endswith=f":{currency}"
    )
    sent = payable.filter(entry__idempotency_key__endswith=":sent")
    failed = payable.filter(entry__idempotency_key__endswith=":failed")
    cash = _code("cash:stripe", currency)
    reversed_rows = payout_rows.filter(
        account__code=cash, entry__idempotency_key__contains=":reversal:"
    )
    figures["paid_gross_minor"] = _sum(sent)
    figures["reversed_minor"] = _sum(reversed_rows)
    figures["paid_minor"] = figures["paid_gross_minor"] - figures["reversed_minor"]
    figures["failed_minor"] = _sum(failed)
    figures["transfer_fees_minor"] = _sum(
        payout_rows.filter(
            account__code=_code("processing_fees", currency),
            entry__idempotency_key__endswith=":fee",
        )
    )
    # Holders paid: net of reversals (reversals credit the holder's own account back).
    net: dict[str, int] = defaultdict(int)
    for code, total in (
        sent.values("account__code")
        .annotate(t=Sum("amount_minor"))
        .values_list("account__code", "t")
    ):
        net[code.split(":")[1]] += int(total)
    reversed_to = payout_rows.filter(
        entry__idempotency_key__contains=":reversal:",
        account__code__startswith="holder:",
        account__code__endswith=f":{currency}",
    )
    for code, total in (
        reversed_to.values("account__code")
        .annotate(t=Sum("amount_minor"))
        .values_list("account__code", "t")
    ):
        net[code.split(":")[1]] += int(total)
    report.holders_paid = sum(1 for amount in net.values() if amount > 0)
    report.payouts_sent = sent.values("entry_id").distinct().count()

    # Late: sent after the deadline of the cycle whose money it is (grouped in the database by
    # cycle and day; a handful of rows).
    payout_cycle = Subquery(
        Payout.objects.filter(pk=Cast(OuterRef("entry__source_id"), BigIntegerField())).values(
            "cycle_id"
        )[:1]
    )
    by_cycle_day = (
        sent.annotate(payout_cycle=payout_cycle)
        .values("payout_cycle", "entry__effective_date")
        .annotate(t=Sum("amount_minor"), n=Count("id"))
    )
    cycles = {
        c.pk: c for c in Cycle.objects.filter(pk__in={r["payout_cycle"] for r in by_cycle_day})
    }
    late: dict[int, dict] = {}
    for row in by_cycle_day:
        cycle = cycles[row["payout_cycle"]]
        deadline = cycle_deadline(cycle, start_month)
        day = row["entry__effective_date"]
        if day <= deadline:
            continue
        slot = late.setdefault(
            cycle.pk,
            {
                "period": cycle.period,
                "deadline": deadline,
                "payouts": 0,
                "amount_minor": 0,
                "latest": day,
                "period_start": cycle.period_start,
            },
        )
        slot["payouts"] += row["n"]
        slot["amount_minor"] += int(row["t"])
        slot["latest"] = max(slot["latest"], day)
    for pk, slot in late.items():
        slot["holders"] = (
            sent.annotate(payout_cycle=payout_cycle)
            .filter(payout_cycle=pk, entry__effective_date__gt=slot["deadline"])
            .values("account_id")
            .distinct()
            .count()
        )
        slot["days_late"] = (slot["latest"] - slot["deadline"]).days
    report.late = sorted(late.values(), key=lambda r: r["period_start"])
    figures["paid_late_minor"] = sum(row["amount_minor"] for row in report.late)


def suspense_ageing_at(*, currency: str, end: date, start_month: int = 1) -> list[dict]:
    """Suspense held on ``end`` (booked by then, not released by then), by reason and by age:
    the number of booked cycles of the currency since the one the money arose in."""
    booked = list(
        Cycle.objects.filter(
            currency=currency, status__in=BOOKED_STATUSES, period_end__lte=end
        ).order_by("period_start")
    )
    position = {c.pk: i for i, c in enumerate(booked)}
    by_pk = {c.pk: c for c in booked}
    latest = len(booked) - 1
    released_by_end = Q(release__cycle__isnull=False, release__cycle__period_end__lte=end)
    grouped = (
        SuspenseItem.objects.filter(
            currency=currency,
            cycle_id__in=list(position),
            allocation_id=F("cycle__current_allocation"),
        )
        .exclude(released_by_end)
        .values("reason", "cycle_id")
        .annotate(amount_minor=Sum("amount_minor"), items=Count("id"))
    )
    labels = dict(SuspenseReason.choices)
    rows = []
    for row in grouped:
        cycle = by_pk[row["cycle_id"]]
        deadline = cycle_deadline(cycle, start_month)
        rows.append(
            {
                "reason": row["reason"],
                "label": labels.get(row["reason"], row["reason"]),
                "period": cycle.period,
                "cycles": latest - position[cycle.pk],
                "deadline": deadline,
                "past_deadline": deadline < end,
                "amount_minor": int(row["amount_minor"]),
                "items": row["items"],
            }
        )
    rows.sort(key=lambda r: (r["reason"], -r["cycles"]))
    return rows


# --- exports --------------------------------------------------------------------------------


def _cell(value):
    return (
        value if isinstance(value, int) and not isinstance(value, bool) else csv_cell_defused(value)
    )


def annual_report_rows(report: AnnualReport) -> Iterator[tuple]:
    """The report as (section, key, label, amount_minor, detail...) rows; amounts in integer
    minor units, so each section adds up exactly."""
    yield ("section", "key", "label", "amount_minor", "detail_1", "detail_2")
    yield ("report", "financial_year", f"{report.start} to {report.end}", "", report.currency, "")
    yield (
        "report",
        "distribution_deadline",
        "Deadline for money collected in the year",
        "",
        report.deadline.isoformat(),
        "",
    )
    for key, amount in report.figures.items():
        yield ("figure", key, FIGURE_LABELS.get(key, key), amount, "", "")
    yield ("figure", "holders_paid", "Rights holders paid in the year", report.holders_paid, "", "")
    yield ("figure", "payouts_sent", "Payouts sent in the year", report.payouts_sent, "", "")
    for row in report.collected:
        yield (
            "collected_by_product",
            row["product"],
            row["media_types"],
            row["collected_minor"],
            row["received_minor"],
            row["refunded_minor"],
        )
    for row in report.recognised:
        yield (
            "recognised_by_cycle_product",
            f"{row['period']}:{row['product']}",
            "recognised / processing fee",
            row["recognised_minor"],
            row["processing_fee_minor"],
            row["pool_minor"],
        )
    for row in report.admin_fees:
        yield ("admin_fees_by_product", row["product"], "", row["amount_minor"], "", "")
    for row in report.distributed_by_media:
        yield (
            "distributed_by_media_type",
            row["media_type"],
            "",
            row["amount_minor"],
            row["works"],
            "",
        )
    for row in report.distributed_by_product:
        yield ("distributed_by_product", row["product"], "", row["amount_minor"], "", "")
    for row in report.suspense_in:
        yield (
            "suspense_movements",
            row["reason"],
            row["label"],
            row["in_minor"],
            row["out_minor"],
            "",
        )
    for row in report.held:
        yield ("held_at_year_end", row["account"], row["label"], row["amount_minor"], "", "")
    for row in report.suspense_held:
        yield ("suspense_held_by_reason", row["reason"], row["label"], row["amount_minor"], "", "")
    for row in report.suspense_ageing:
        yield (
            "suspense_held_by_age",
            f"{row['reason']}:{row['period']}",
            row["label"],
            row["amount_minor"],
            row["cycles"],
            row["deadline"].isoformat(),
        )
    for row in report.late:
        yield (
            "paid_late",
            row["period"],
            f"deadline {row['deadline']}",
            row["amount_minor"],
            row["payouts"],
            row["holders"],
        )


def annual_report_csv(report: AnnualReport) -> str:
    """UTF-8 CSV with a BOM; user text (product codes) defused against formula injection."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\n")
    for row in annual_report_rows(report):
        writer.writerow([_cell(cell) for cell in row])
    return buffer.getvalue()


def annual_report_filename(report: AnnualReport, extension: str) -> str:
    return f"transparency-report-{report.year}-{report.currency}.{extension}"


def annual_report_pdf(report: AnnualReport) -> bytes:
    """The report as a PDF (WeasyPrint, like the statements)."""
    from weasyprint import HTML

    html = render_to_string(
        "royalties/reports/annual_pdf.html",
        {"report": report, "labels": FIGURE_LABELS, "money": _money_rows(report)},
    )
    return HTML(string=html).write_pdf()


def _money_rows(report: AnnualReport) -> list[tuple[str, str]]:
    return [
        (FIGURE_LABELS.get(key, key), money_text(amount, report.currency))
        for key, amount in report.figures.items()
    ]
