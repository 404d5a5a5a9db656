"""The staff reports in a real browser: a staff user opens the dashboard (its charts drawn),
the annual transparency report for 2026 (downloads the CSV and the PDF, checked against the
report built from the ledger) and a what-if comparison of the 2026-Q3 cycle under opt-in
(money conserved, nothing written).

The year is built through the real services: a licence paid in full, two cycles of 2026
allocated and approved by two different staff users."""

from __future__ import annotations

import csv
import io
import re
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group

from accounts.models import OrganisationKind, Role
from accounts.services import membership_add
from royalties.models import JournalEntry, Posting, Statement, SuspenseItem
from royalties.services import annual_report, whatif
from tests.factories import OrganisationFactory, UserFactory
from tests.royalties.test_annual_report import build_year

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def _persona(kind: OrganisationKind, name: str, email: str) -> SimpleNamespace:
    organisation = OrganisationFactory(kind=kind, name=name)
    user = UserFactory(email=email)
    membership_add(organisation=organisation, user=user, role=Role.OWNER)
    return SimpleNamespace(organisation=organisation, user=user)


def _staff(society, group: str, email: str) -> SimpleNamespace:
    user = UserFactory(email=email, is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    membership_add(organisation=society, user=user, role=Role.ADMIN)
    return SimpleNamespace(organisation=society, user=user)


def _log_in(page, live_server, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")


def _pdf_objects(data: bytes) -> bytes:
    parts = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            parts.append(zlib.decompress(match.group(1)))
        except zlib.error:
            continue
    return b"\n".join(parts)


def test_staff_open_the_dashboard_the_annual_report_and_a_what_if(browser, live_server, artifacts):
    society = OrganisationFactory(kind=OrganisationKind.SOCIETY, name="The Society")
    operator = _staff(society, "operator", "ops@society.example")
    approver = _staff(society, "approver", "approver@society.example")
    holder = _persona(OrganisationKind.RIGHTS_HOLDER, "Lumen Books", "editor@lumen.example")
    co_holder = _persona(OrganisationKind.RIGHTS_HOLDER, "Harbour Records", "a@harbour.example")
    licensee = _persona(OrganisationKind.LICENSEE, "Aleph AI", "legal@aleph.example")
    q3, _ = build_year(operator, approver, licensee, holder, co_holder)

    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    _log_in(page, live_server, "approver@society.example")

    # The dashboard, from the navigation: both cycles, charts drawn.
    page.click("nav >> text=Staff dashboard")
    page.wait_for_selector("html[data-charts-ready=true]")
    assert page.get_attribute("#chart-cycles", "data-points") == "2"
    assert page.locator("#cycles tr[data-period='2026-Q3']").count() == 1
    distributed = q3.current_allocation.totals["holders_minor"]
    assert page.locator(
        "#cycles tr[data-period='2026-Q3'] [data-field=distributed]"
    ).inner_text() == (f"{distributed // 100:,}.{distributed % 100:02d} EUR")
    assert page.locator("#rates tr[data-licensee]").count() == 1
    assert page.locator("#deadlines tr[data-year='2026']").count() == 1
    page.screenshot(path=str(artifacts / "staff-dashboard.png"), full_page=True)

    # The annual report for 2026: figures on the page, then the CSV and the PDF.
    page.click("nav >> text=Annual report")
    page.goto("/staff/reports/annual/?year=2026&currency=EUR")
    assert page.locator("#deadline").inner_text() == "30 Sep 2027"
    report = annual_report.annual_report_build(year=2026, currency="EUR")
    shown = page.get_attribute("#figures tr[data-key=distributed_minor] td.num", "data-minor")
    assert int(shown) == report.figures["distributed_minor"] > 0
    page.screenshot(path=str(artifacts / "annual-report.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#download-csv")
    assert download.value.suggested_filename == "transparency-report-2026-EUR.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    figures = {r[1]: int(r[3]) for r in rows if r[0] == "figure"}
    assert {k: figures[k] for k in report.figures} == report.figures
    with page.expect_download() as download:
        page.click("#download-pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert b"Annual transparency report 2026" in _pdf_objects(pdf)

    # A what-if of 2026-Q3 under opt-in: money conserved, nothing written.
    before = (
        JournalEntry.objects.count(),
        Posting.objects.count(),
        Statement.objects.count(),
        SuspenseItem.objects.count(),
    )
    page.click("nav >> text=Regime what-if")
    page.select_option("#whatif-cycle", label=f"2026-Q3 EUR ({q3.status})")
    page.select_option("#whatif-regime", value="opt_in")
    page.click("#whatif-run")
    page.wait_for_selector("#whatif-summary")
    page.wait_for_selector("html[data-charts-ready=true]")
    assert page.locator("[data-testid=scenario-regime]").inner_text() == "opt_in"
    assert page.locator("[data-testid=identity]").inner_text() == "holds"
    assert page.locator("[data-testid=in-equal]").inner_text() == "equal to the real allocation"
    expected = whatif.whatif_run(cycle=q3, scenario=whatif.Scenario(regime="opt_in"))
    assert page.locator("[data-testid=changed]").inner_text() == str(expected.changed_holders)
    assert page.locator("#gainers tr[data-holder]").count() == len(expected.gainers) > 0
    page.screenshot(path=str(artifacts / "whatif-opt-in.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#whatif-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    holders = [r for r in rows if r[0] == "holder"]
    assert sum(int(r[4]) for r in holders) == expected.result.totals["holders_minor"]
    after = (
        JournalEntry.objects.count(),
        Posting.objects.count(),
        Statement.objects.count(),
        SuspenseItem.objects.count(),
    )
    assert after == before
    context.close()
