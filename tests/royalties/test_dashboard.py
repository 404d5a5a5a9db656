"""The staff dashboard's figures equal direct queries of the cycles, statements, suspense,
declarations and payouts; the page is for staff only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db.models import Sum

from licensing.models import DeclarationStatus, UsageDeclaration
from royalties.models import CycleLicence, Statement, StatementWorkLine
from royalties.selectors import dashboard
from royalties.services.suspense import suspense_outstanding
from tests.royalties.test_annual_report import build_year

pytestmark = pytest.mark.django_db


@pytest.fixture
def cycles(operator, approver, licensee, rights_holder, co_holder):
    return build_year(operator, approver, licensee, rights_holder, co_holder)


def test_collected_and_distributed_per_cycle_equal_the_rows(cycles):
    rows = {r["period"]: r for r in dashboard.dashboard_cycles(currency="EUR")}
    assert list(rows) == ["2026-Q3", "2026-Q4"]
    for cycle in cycles:
        allocation = cycle.current_allocation
        row = rows[cycle.period]
        licences = CycleLicence.objects.filter(allocation=allocation)
        assert row["collected_minor"] == licences.aggregate(t=Sum("recognised_minor"))["t"]
        assert row["pool_minor"] == licences.aggregate(t=Sum("pool_minor"))["t"]
        earned = Statement.objects.filter(allocation=allocation).aggregate(t=Sum("earned_minor"))
        assert row["distributed_minor"] == earned["t"] == allocation.totals["holders_minor"]
        assert (
            row["fee_minor"] + row["distributed_minor"] + row["suspense_minor"]
            == (allocation.totals["in_minor"])
        )
        assert row["paid_minor"] == 0


def test_suspense_ageing_equals_the_outstanding_items(cycles):
    ageing = dashboard.dashboard_suspense_ageing(currency="EUR")
    held = suspense_outstanding(currency="EUR")
    assert sum(r["amount_minor"] for r in ageing) == held.aggregate(t=Sum("amount_minor"))["t"]
    q3, q4 = cycles
    for reason in {r["reason"] for r in ageing}:
        for age, cycle in ((1, q3), (0, q4)):
            direct = held.filter(reason=reason, cycle=cycle).aggregate(t=Sum("amount_minor"))["t"]
            found = [r for r in ageing if r["reason"] == reason and r["cycles"] == age]
            assert (found[0]["amount_minor"] if found else None) == direct


def test_match_rates_equal_the_accepted_declarations(cycles, licensee):
    rates = dashboard.dashboard_match_rates()
    assert len(rates) == 1
    row = rates[0]
    accepted = UsageDeclaration.objects.filter(
        status=DeclarationStatus.ACCEPTED, licence__licensee=licensee.organisation
    )
    sums = accepted.aggregate(
        d=Sum("declared_quantity"), m=Sum("matched_quantity"), u=Sum("unmatched_quantity")
    )
    assert (row["declared"], row["matched"], row["unmatched"]) == (sums["d"], sums["m"], sums["u"])
    assert row["declared"] == 1250 + 300 and row["unmatched"] == 150
    assert row["rate_bp"] == row["matched"] * 10_000 // row["declared"]
    assert row["rate_text"] == f"{row['rate_bp'] // 100}.{row['rate_bp'] % 100:02d} %"


def test_top_works_equal_the_statement_lines(cycles):
    works = dashboard.dashboard_top_works(currency="EUR")
    for row in works:
        direct = StatementWorkLine.objects.filter(
            work_id=row["work_id"],
            statement__allocation_id__in=[c.current_allocation_id for c in cycles],
        ).aggregate(t=Sum("amount_minor"))["t"]
        assert row["amount_minor"] == direct
    amounts = [r["amount_minor"] for r in works]
    assert amounts == sorted(amounts, reverse=True) and works[0]["title"] == "Work A"


def test_deadlines_per_financial_year(cycles):
    rows = dashboard.dashboard_deadlines(currency="EUR", today=dt.date(2027, 9, 1))
    assert len(rows) == 1
    row = rows[0]
    assert (row["year"], row["deadline"], row["days_left"]) == (2026, dt.date(2027, 9, 30), 29)
    assert row["periods"] == ["2026-Q3", "2026-Q4"]
    cycle_rows = dashboard.dashboard_cycles(currency="EUR")
    assert row["collected_minor"] == sum(r["collected_minor"] for r in cycle_rows)
    assert row["distributed_minor"] == sum(r["distributed_minor"] for r in cycle_rows)
    assert row["state"] == "due soon"  # nothing paid yet, 29 days left
    late = dashboard.dashboard_deadlines(currency="EUR", today=dt.date(2027, 10, 1))
    assert late[0]["state"] == "overdue" and late[0]["days_left"] == -1


def test_the_dashboard_is_for_staff_only(
    cycles, operator, rights_holder, licensee, outsider, client
):
    for persona in (rights_holder, licensee, outsider):
        assert persona.client().get("/staff/dashboard/").status_code == 404
    assert client.get("/staff/dashboard/").status_code == 302
    page = operator.client().get("/staff/dashboard/?currency=EUR")
    assert page.status_code == 200
    charts = json.loads(page.context["charts"] and json.dumps(page.context["charts"]))
    assert charts["cycles"]["labels"] == ["2026-Q3", "2026-Q4"]
    body = page.content.decode()
    assert 'id="chart-cycles"' in body and 'data-period="2026-Q4"' in body
    assert "Staff dashboard" in body
