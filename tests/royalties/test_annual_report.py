"""The annual transparency report reconciles to the ledger exactly.

The year: a licence paid in full (365,000 EUR minor units for 2026-07-01..2027-06-30) on
2026-07-01; two cycles, 2026-Q3 and 2026-Q4, allocated and approved, with text and image works,
a share below 100% and an unknown identifier (suspense); Q3 paid through the local Stripe in
November 2026, Q4 paid in October 2027, after the 2026 money's deadline (30 Sep 2027).
Every figure of the report is checked against sums of postings read here independently, and
against the cycles', statements' and payouts' own rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db.models import Sum
from django.utils import timezone

from royalties.models import (
    CycleLicence,
    Payout,
    PayoutStatus,
    Posting,
    Statement,
    StatementWorkLine,
    SuspenseItem,
)
from royalties.services import annual_report, payouts
from tests.licensing.declarations_support import ISBN_A, ISBN_B, ISBN_UNKNOWN
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs
from tests.royalties import payouts_support as ps

pytestmark = pytest.mark.django_db

ISBN_C = ps.ISBN_C
DOI_D = "10.1000/blanket.image.1"


class _Today:
    """`timezone.localdate` pinned to a day while money is booked (the ledger dates payments
    and payouts by the day they happen)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __call__(self, day: dt.date):
        self.monkeypatch.setattr(timezone, "localdate", lambda *a, **k: day)

    def undo(self):
        self.monkeypatch.undo()


def _pay(approver, cycle, capture):
    with capture(execute=True):
        return payouts.payout_run_start(caller=cs.staff_caller(approver), cycle=cycle)


def build_year(
    operator,
    approver,
    licensee,
    rights_holder,
    co_holder,
    *,
    monkeypatch=None,
    capture=None,
    stripe=None,
):
    """Two approved cycles of 2026 (and, with ``stripe``, their payouts). Returns (q3, q4)."""
    today = _Today(monkeypatch) if monkeypatch else None
    text = catalogue_for(rights_holder, "Backlist")
    images = catalogue_for(rights_holder, "Plates", media_type="image")
    work_in(text, rights_holder, "A", isbn=ISBN_A)
    work_in(text, rights_holder, "B", isbn=ISBN_B)
    work_in(
        text,
        rights_holder,
        "C",
        isbn=ISBN_C,
        shares=[
            {"holder": rights_holder.organisation.code, "share": "50"},
            {"holder": co_holder.organisation.code, "share": "30"},
        ],
    )
    work_in(images, rights_holder, "D", doi=DOI_D)
    cs.policy(operator, admin_fee_bp=1000)
    if today:
        today(dt.date(2026, 7, 1))
    licence = cs.paid_licence(licensee, operator)
    if today:
        today.undo()
    cs.usage(
        licensee,
        licence,
        [
            ("isbn", ISBN_A, 600),
            ("isbn", ISBN_B, 300),
            ("isbn", ISBN_C, 100),
            ("isbn", ISBN_UNKNOWN, 50),
            ("doi", DOI_D, 200),
        ],
        period="2026-Q3",
    )
    q3 = cs.approve(approver, cs.allocate(operator, "2026-Q3"))
    if stripe is not None:
        ps.connect(rights_holder, stripe)
        ps.connect(co_holder, stripe)
        today(dt.date(2026, 11, 20))
        _pay(approver, q3, capture)
        today.undo()
    cs.usage(
        licensee,
        licence,
        [("isbn", ISBN_A, 100), ("isbn", ISBN_UNKNOWN, 100), ("doi", DOI_D, 100)],
        period="2026-Q4",
    )
    q4 = cs.approve(approver, cs.allocate(operator, "2026-Q4"))
    if stripe is not None:
        today(dt.date(2027, 10, 15))
        _pay(approver, q4, capture)
        today.undo()
    q3.refresh_from_db()
    q4.refresh_from_db()
    return q3, q4


# --- independent ledger reads ----------------------------------------------------------------


def _moves(start, end, **filters) -> int:
    rows = Posting.objects.filter(
        currency="EUR", entry__effective_date__gte=start, entry__effective_date__lte=end, **filters
    )
    return int(rows.aggregate(t=Sum("amount_minor"))["t"] or 0)


def _balance(end, **filters) -> int:
    rows = Posting.objects.filter(currency="EUR", entry__effective_date__lte=end, **filters)
    return int(rows.aggregate(t=Sum("amount_minor"))["t"] or 0)


@pytest.fixture
def year(
    operator,
    approver,
    licensee,
    rights_holder,
    co_holder,
    monkeypatch,
    payout_stripe,
    django_capture_on_commit_callbacks,
):
    return build_year(
        operator,
        approver,
        licensee,
        rights_holder,
        co_holder,
        monkeypatch=monkeypatch,
        capture=django_capture_on_commit_callbacks,
        stripe=payout_stripe,
    )


def test_every_figure_of_the_report_reconciles_to_the_ledger(year, rights_holder, co_holder):
    q3, q4 = year
    start, end = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    report = annual_report.annual_report_build(year=2026, currency="EUR")
    f = report.figures
    assert (report.start, report.end, report.deadline) == (start, end, dt.date(2027, 9, 30))
    assert [c["period"] for c in report.cycles] == ["2026-Q3", "2026-Q4"]

    # Collected: the payment, credited to deferred revenue.
    collected = -_moves(
        start, end, account__code="deferred_revenue:EUR", entry__source_type="payment"
    )
    assert f["collected_gross_minor"] == collected == 365_000
    assert f["refunded_minor"] == 0 and f["collected_minor"] == 365_000
    assert [(r["product"], r["collected_minor"]) for r in report.collected] == [
        ("ai-training", 365_000)
    ]

    # Recognition and deductions, by the cycle entries.
    cycle_entry = {"entry__source_type": "cycle"}
    recognised = _moves(start, end, account__code="deferred_revenue:EUR", **cycle_entry)
    allocations = [q3.current_allocation_id, q4.current_allocation_id]
    licences = CycleLicence.objects.filter(allocation_id__in=allocations)
    assert f["recognised_minor"] == recognised == licences.aggregate(t=Sum("recognised_minor"))["t"]
    assert recognised == 92_000 + 92_000  # 1,000 a day, 92 days each quarter
    assert f["processing_fees_deducted_minor"] == -_moves(
        start, end, account__code="processing_fees:EUR", **cycle_entry
    )
    fee_income = -_moves(start, end, account__code__startswith="admin_fee_income:", **cycle_entry)
    assert f["admin_fees_minor"] == fee_income == licences.aggregate(t=Sum("fee_minor"))["t"]
    assert sum(r["amount_minor"] for r in report.admin_fees) == fee_income
    assert sum(r["recognised_minor"] for r in report.recognised) == recognised

    # Suspense in, and what is held at year end by reason and by age.
    to_suspense = -_moves(
        start,
        end,
        account__code__startswith="suspense:",
        entry__idempotency_key__endswith=":suspense",
    )
    items = SuspenseItem.objects.filter(allocation_id__in=allocations)
    assert f["to_suspense_minor"] == to_suspense == items.aggregate(t=Sum("amount_minor"))["t"]
    assert sum(r["in_minor"] for r in report.suspense_in) == to_suspense
    for row in report.suspense_held:
        ledger = -_balance(end, account__code=f"suspense:{row['reason']}:EUR")
        aged = sum(
            a["amount_minor"] for a in report.suspense_ageing if a["reason"] == row["reason"]
        )
        assert row["amount_minor"] == ledger == aged, row
    assert {r["reason"] for r in report.suspense_held} >= {"unmatched", "unassigned_share"}
    assert {
        a["period"]: a["cycles"] for a in report.suspense_ageing if a["reason"] == "unmatched"
    } == {
        "2026-Q3": 1,
        "2026-Q4": 0,
    }

    # Distributed: credits to the holders' accounts; by media type and product add up to it.
    distributed = -_moves(
        start,
        end,
        account__code__startswith="holder:",
        entry__idempotency_key__endswith=":allocate",
    )
    earned = Statement.objects.filter(allocation_id__in=allocations).aggregate(
        t=Sum("earned_minor")
    )
    assert f["distributed_minor"] == distributed == earned["t"]
    assert sum(r["amount_minor"] for r in report.distributed_by_media) == distributed
    assert sum(r["amount_minor"] for r in report.distributed_by_product) == distributed
    by_media = {r["media_type"]: r["amount_minor"] for r in report.distributed_by_media}
    assert set(by_media) == {"text", "image"}
    assert (
        by_media["image"]
        == StatementWorkLine.objects.filter(
            statement__allocation_id__in=allocations, work__media_type="image"
        ).aggregate(t=Sum("amount_minor"))["t"]
    )
    assert f["made_payable_minor"] == -_moves(
        start,
        end,
        account__code__startswith="holder_payable:",
        entry__idempotency_key__endswith=":payable",
    )

    # Paid in 2026: Q3's payouts (Q4's went out in October 2027).
    paid = _moves(
        start,
        end,
        account__code__startswith="holder_payable:",
        entry__idempotency_key__endswith=":sent",
    )
    q3_payouts = Payout.objects.filter(cycle=q3, status=PayoutStatus.PAID)
    assert (
        f["paid_minor"]
        == f["paid_gross_minor"]
        == paid
        == -_moves(start, end, account__code="cash:stripe:EUR", entry__source_type="payout")
        - f["transfer_fees_minor"]
    )
    assert paid == q3_payouts.aggregate(t=Sum("amount_minor"))["t"] > 0
    assert report.holders_paid == q3_payouts.values("holder").distinct().count() == 2
    assert f["paid_late_minor"] == 0 and report.late == []

    # Held at year end: the balances on 31 December, account by account.
    held = {r["account"]: r["amount_minor"] for r in report.held}
    assert held["deferred_revenue"] == -_balance(end, account__code="deferred_revenue:EUR")
    assert held["deferred_revenue"] == 365_000 - recognised
    assert held["distribution_pool"] == 0 == _balance(end, account__code="distribution_pool:EUR")
    assert held["holder"] == -_balance(end, account__code__startswith="holder:")
    assert held["holder_payable"] == -_balance(end, account__code__startswith="holder_payable:")
    # Q4 was payable at year end and not paid until 2027.
    q4_payable = Statement.objects.filter(allocation_id=q4.current_allocation_id).aggregate(
        t=Sum("payable_minor")
    )["t"]
    assert held["holder_payable"] == q4_payable
    assert held["suspense"] == -_balance(end, account__code__startswith="suspense:")
    # Conservation over the year: what came in is recognised, deducted, distributed or held.
    assert recognised == (
        f["processing_fees_deducted_minor"]
        + fee_income
        + to_suspense
        + distributed
        - f["released_from_suspense_minor"]
    )


def test_money_paid_after_the_deadline_is_reported_late(year):
    _, q4 = year
    report = annual_report.annual_report_build(year=2027, currency="EUR")
    start, end = dt.date(2027, 1, 1), dt.date(2027, 12, 31)
    sent = _moves(
        start,
        end,
        account__code__startswith="holder_payable:",
        entry__idempotency_key__endswith=":sent",
    )
    q4_paid = Payout.objects.filter(cycle=q4).aggregate(t=Sum("amount_minor"))["t"]
    assert report.figures["paid_minor"] == sent == q4_paid > 0
    assert report.figures["paid_late_minor"] == q4_paid
    assert [(r["period"], r["deadline"], r["days_late"]) for r in report.late] == [
        ("2026-Q4", dt.date(2027, 9, 30), 15)
    ]
    assert report.cycles == []  # no cycle of 2027 yet
    # The 2026 suspense is still held at the end of 2027, past its deadline.
    assert (
        report.figures["held_past_deadline_minor"]
        == -_balance(end, account__code__startswith="suspense:")
        > 0
    )


def test_the_csv_and_the_pdf_carry_the_same_figures(year):
    report = annual_report.annual_report_build(year=2026, currency="EUR")
    text = annual_report.annual_report_csv(report)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    figures = {r[1]: int(r[3]) for r in rows if r[0] == "figure"}
    assert {k: figures[k] for k in report.figures} == report.figures
    assert figures["holders_paid"] == report.holders_paid
    media = sum(int(r[3]) for r in rows if r[0] == "distributed_by_media_type")
    assert media == report.figures["distributed_minor"]
    pdf = annual_report.annual_report_pdf(report)
    assert pdf.startswith(b"%PDF")


def test_product_codes_are_defused_in_the_csv(operator, licensee):
    from licensing.models import LicenceProduct

    LicenceProduct.objects.create(code="x", name="x")
    report = annual_report.AnnualReport(
        year=2026,
        currency="EUR",
        start=dt.date(2026, 1, 1),
        end=dt.date(2026, 12, 31),
        deadline=dt.date(2027, 9, 30),
        generated_at=timezone.now(),
    )
    report.collected = [
        {
            "product": "=HYPERLINK(1)",
            "media_types": "all",
            "received_minor": -5,
            "refunded_minor": 0,
            "collected_minor": -5,
        }
    ]
    text = annual_report.annual_report_csv(report)
    assert "'=HYPERLINK(1)" in text and ",-5," in text


def test_financial_years_and_deadlines():
    assert annual_report.financial_year_bounds(2026) == (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    assert annual_report.financial_year_bounds(2026, 7) == (
        dt.date(2026, 7, 1),
        dt.date(2027, 6, 30),
    )
    assert annual_report.distribution_deadline(2026) == dt.date(2027, 9, 30)
    assert annual_report.distribution_deadline(2026, 7) == dt.date(2028, 3, 31)
    assert annual_report.financial_year_of(dt.date(2027, 3, 31), 7) == 2026


def test_the_report_pages_are_for_staff_only(
    year, operator, rights_holder, licensee, outsider, client
):
    for persona in (rights_holder, licensee, outsider):
        c = persona.client()
        for url in (
            "/staff/reports/annual/?year=2026",
            "/staff/reports/annual/report.csv?year=2026",
            "/staff/reports/annual/report.pdf?year=2026",
        ):
            assert c.get(url).status_code == 404, (persona, url)
    assert client.get("/staff/reports/annual/").status_code == 302  # to the log-in page
    staff = operator.client()
    page = staff.get("/staff/reports/annual/?year=2026&currency=EUR")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-key="distributed_minor"' in body and "30 Sep 2027" in body
    csv_response = staff.get("/staff/reports/annual/report.csv?year=2026")
    assert csv_response["Content-Disposition"].endswith('transparency-report-2026-EUR.csv"')
    pdf = staff.get("/staff/reports/annual/report.pdf?year=2026")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
