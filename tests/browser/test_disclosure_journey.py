"""Transparency in a real browser.

A rights holder opens its disclosures (which licensees declared its works, what they earned,
with charts), drills down into one work and its charts, downloads the CSV and opts in to the
cycle digest. A licensee generates the training-content summary of its model, edits the free
text, previews and publishes it; a visitor who is not logged in reads the public page.

Real data: a licence paid in full for the year from 2026-07-01, usage declared for 2026-Q3
through the declaration service, the cycle allocated and approved (four eyes)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group

from accounts.models import OrganisationKind, Role
from accounts.services import membership_add
from licensing.models import DisclosurePreference, TrainingSummary, Work
from royalties.models import Statement
from tests.factories import OrganisationFactory, UserFactory
from tests.licensing.declarations_support import ISBN_A, ISBN_B, ISBN_UNKNOWN, repertoire
from tests.royalties.cycles_support import allocate, approve, paid_licence, policy, usage

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


def _context(browser, live_server, **kwargs):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, **kwargs
    )
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def approved_cycle():
    society = OrganisationFactory(kind=OrganisationKind.SOCIETY, name="The Society")
    operator = _staff(society, "operator", "ops@society.example")
    approver = _staff(society, "approver", "approver@society.example")
    holder = _persona(OrganisationKind.RIGHTS_HOLDER, "Lumen Books", "editor@lumen.example")
    licensee = _persona(OrganisationKind.LICENSEE, "Aleph AI", "legal@aleph.example")
    policy(operator, admin_fee_bp=1000)
    works = repertoire(holder)
    licence = paid_licence(licensee, operator)  # 365,000 for the year: 92,000 in Q3
    usage(
        licensee, licence, [("isbn", ISBN_A, 60), ("isbn", ISBN_B, 30), ("isbn", ISBN_UNKNOWN, 10)]
    )
    cycle = approve(approver, allocate(operator))
    return SimpleNamespace(cycle=cycle, holder=holder, licensee=licensee, works=works)


def test_holder_reads_disclosures_and_licensee_publishes_a_summary(
    page, browser, live_server, artifacts, approved_cycle
):
    holder, works = approved_cycle.holder, approved_cycle.works
    statement = Statement.objects.get(holder=holder.organisation, cycle=approved_cycle.cycle)
    a_line = statement.work_lines.get(work=works["a"])

    # The rights holder: its works, who declared them, what they earned, with charts.
    context = _context(browser, live_server, accept_downloads=True)
    tab = context.new_page()
    _log_in(tab, live_server, "editor@lumen.example")
    tab.click("nav >> text=Disclosures")
    tab.wait_for_selector("html[data-charts-ready=true]")
    row = tab.locator(f"tr[data-work='{works['a'].pk}']")
    assert "60 tokens" in row.inner_text()
    amount = a_line.amount_minor
    assert f"{amount // 100:,}.{amount % 100:02d} EUR" in row.inner_text()
    assert tab.get_attribute("#chart-licensees", "data-points") == "1"
    assert tab.get_attribute("#chart-periods", "data-points") == "1"
    assert tab.locator("#chart-products").count() == 1
    tab.screenshot(path=str(artifacts / "disclosures.png"), full_page=True)

    with tab.expect_download() as download:
        tab.click("#disclosures-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    earned = sum(int(r["amount_minor"]) for r in rows if r["section"] == "earnings")
    assert earned == statement.earned_minor

    tab.check("#id_digest_on_cycle")
    tab.click("#digest-form button[type=submit]")
    tab.wait_for_selector(".messages >> text=digest after each approved cycle")
    assert DisclosurePreference.objects.get(organisation=holder.organisation).digest_on_cycle

    # The drill-down of work A: the licensee, model and period, and its charts.
    tab.click(f"tr[data-work='{works['a'].pk}'] >> a")
    tab.wait_for_selector("html[data-charts-ready=true]")
    assert tab.locator("#work-title").inner_text() == Work.objects.get(pk=works["a"].pk).title
    usage_table = tab.locator("#work-usage").inner_text()
    assert "Aleph AI" in usage_table and "aleph 1" in usage_table and "2026-Q3" in usage_table
    assert tab.get_attribute("#chart-work-periods", "data-points") == "1"
    assert tab.get_attribute("#chart-work-earnings", "data-points") == "1"
    assert "2026-Q3" in tab.locator("#work-earnings").inner_text()
    tab.screenshot(path=str(artifacts / "disclosure-work.png"), full_page=True)
    context.close()

    # The licensee generates its model's summary, edits its text, previews and publishes.
    _log_in(page, live_server, "legal@aleph.example")
    page.click("nav >> text=Training summaries")
    page.select_option("#id_model", label="aleph 1 (1 accepted)")
    page.click("#summary-generate button[type=submit]")
    page.wait_for_selector("#summary-edit")
    summary = TrainingSummary.objects.get()
    assert page.locator("#summary-status").inner_text() == "draft"
    assert page.locator("[data-testid=declared-tokens]").inner_text() == "100"
    assert page.locator("[data-testid=matched-lines]").inner_text() == "2"
    assert page.locator("[data-testid=unmatched-lines]").inner_text() == "1"

    page.fill("#id_contact", "not an address")
    page.click("#summary-edit button[value=save]")
    page.wait_for_selector(".field.has-error >> text=An email address or an https:// URL.")
    page.fill("#id_contact", "ai-office@aleph.example")
    page.fill("#id_other_sources", "Publicly available web pages crawled in 2026.")
    page.fill("#id_processing_narrative", "Our crawler honours robots.txt and TDMRep opt-outs.")
    page.click("#summary-edit button[value=save]")
    page.wait_for_selector(".messages >> text=Draft saved.")
    page.screenshot(path=str(artifacts / "training-summary-edit.png"), full_page=True)

    page.click("#preview-link")
    page.wait_for_selector("#draft-badge")
    assert "honours robots.txt" in page.locator("[data-testid=processing-narrative]").inner_text()
    page.go_back()

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#summary-publish button[type=submit]")
    page.wait_for_url(f"{live_server.url}/summaries/{summary.pk}/")
    assert page.locator("#draft-badge").count() == 0
    summary.refresh_from_db()
    assert summary.status == "published" and summary.published_at is not None

    # Anyone can read the published summary, without logging in.
    visitor_context = _context(browser, live_server)
    visitor = visitor_context.new_page()
    visitor.goto(f"/summaries/{summary.pk}/")
    assert "Aleph AI" in visitor.locator("[data-testid=provider]").inner_text()
    assert visitor.locator("[data-testid=contact]").inner_text() == "ai-office@aleph.example"
    assert "crawled in 2026" in visitor.locator("[data-testid=other-sources]").inner_text()
    assert visitor.locator("[data-testid=reserved-lines]").inner_text() == "0"
    visitor.screenshot(path=str(artifacts / "training-summary-public.png"), full_page=True)
    document = visitor.request.get(f"/api/v1/training-summaries/{summary.pk}/").json()
    assert document["document"]["processing"]["narrative"] == (
        "Our crawler honours robots.txt and TDMRep opt-outs."
    )
    visitor_context.close()
