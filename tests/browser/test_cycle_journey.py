"""A payout cycle in a real browser: an operator opens the 2026-Q3 cycle, allocates it and
watches the progress bar reach 100% with the totals identity; a second staff user (an
approver) reviews and approves it; the rights holder opens the published statement, sees its
charts and downloads the CSV and the PDF, whose contents are checked against the database.

The licence money is real: a licence paid in full (offline) for 2026, and usage declared for
the quarter through the declaration service, so the engine allocates from the ledger."""

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
from royalties.models import Cycle, CycleStatus, Statement
from royalties.services.cycles import cycle_allocate_run
from royalties.tasks import cycle_allocate_task
from tests.factories import OrganisationFactory, UserFactory
from tests.licensing.declarations_support import ISBN_A, ISBN_B, ISBN_UNKNOWN, repertoire
from tests.royalties.cycles_support import paid_licence, policy, usage

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


def test_operator_allocates_approver_approves_holder_downloads_the_statement(
    page, browser, live_server, artifacts, monkeypatch
):
    society = OrganisationFactory(kind=OrganisationKind.SOCIETY, name="The Society")
    operator = _staff(society, "operator", "ops@society.example")
    approver = _staff(society, "approver", "approver@society.example")
    holder = _persona(OrganisationKind.RIGHTS_HOLDER, "Lumen Books", "editor@lumen.example")
    licensee = _persona(OrganisationKind.LICENSEE, "Aleph AI", "legal@aleph.example")
    policy(operator, admin_fee_bp=1000)
    repertoire(holder)
    licence = paid_licence(licensee, operator)  # 365,000 for 2026: 92,000 in Q3
    usage(
        licensee, licence, [("isbn", ISBN_A, 60), ("isbn", ISBN_B, 30), ("isbn", ISBN_UNKNOWN, 10)]
    )

    # The operator opens the cycle and allocates it, and the page follows the job.
    _log_in(page, live_server, "ops@society.example")
    page.click("nav >> text=Payout cycles")
    page.fill("#id_period", "2026-Q3")
    page.click("button:has-text('Open the cycle')")
    page.wait_for_selector("#cycle-job[data-status=draft]")
    cycle = Cycle.objects.get(period="2026-Q3")

    queued = []
    monkeypatch.setattr(cycle_allocate_task, "delay", queued.append)
    page.click("#allocate")
    page.wait_for_selector("#cycle-job[data-status=allocating][hx-trigger]")
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "0"
    assert "Queued" in page.locator("[data-testid=cycle-stage]").inner_text()
    page.screenshot(path=str(artifacts / "cycle-allocating.png"), full_page=True)

    # Hold the page's polls while this thread runs the job (the live server shares the test
    # database connection).
    held, holding = [], [True]
    page.route(
        "**/progress/", lambda route: held.append(route) if holding[0] else route.continue_()
    )
    page.wait_for_timeout(1_200)
    assert queued == [cycle.pk]
    cycle_allocate_run(cycle_id=cycle.pk)
    holding[0] = False
    for route in held:
        route.continue_()

    page.wait_for_selector("#cycle-job[data-status=allocated]", timeout=10_000)
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
    assert page.locator("#cycle-job").get_attribute("hx-trigger") is None
    cycle.refresh_from_db()
    totals = cycle.current_allocation.totals
    assert (
        totals["in_minor"]
        == totals["fee_minor"] + totals["holders_minor"] + totals["suspense_minor"]
    )
    assert page.get_attribute("#identity", "data-holds") == "true"
    assert (
        "pool = fee + holders + suspense"
        in page.locator("[data-testid=identity-check]").inner_text()
    )
    shown_holders = page.locator("[data-testid=identity-holders]").inner_text()
    assert (
        shown_holders
        == f"{totals['holders_minor'] // 100:,}.{totals['holders_minor'] % 100:02d} EUR"
    )
    assert page.locator("#approve").count() == 0  # an operator does not approve
    page.screenshot(path=str(artifacts / "cycle-allocated.png"), full_page=True)

    page.click("#review-link")
    page.wait_for_selector("#products")
    assert "ai-training" in page.locator("#products").inner_text()
    assert "Unmatched usage" in page.locator("#suspense").inner_text()
    page.screenshot(path=str(artifacts / "cycle-review.png"), full_page=True)

    # A second staff user, an approver, reviews and approves it.
    approver_context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}
    )
    approver_context.set_default_timeout(15_000)
    second = approver_context.new_page()
    _log_in(second, live_server, "approver@society.example")
    second.goto(f"/cycles/{cycle.pk}/review/")
    assert second.get_attribute("#identity", "data-holds") == "true"
    second.click("#approve")
    second.wait_for_selector("#cycle-job[data-status=approved]")
    assert "statements are published" in second.locator(".messages").inner_text()
    second.screenshot(path=str(artifacts / "cycle-approved.png"), full_page=True)
    approver_context.close()
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.APPROVED
    assert (cycle.allocated_by, cycle.approved_by) == (operator.user, approver.user)

    # The rights holder opens its statement and downloads it.
    statement = Statement.objects.get(holder=holder.organisation, cycle=cycle)
    holder_context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, accept_downloads=True
    )
    holder_context.set_default_timeout(15_000)
    third = holder_context.new_page()
    _log_in(third, live_server, "editor@lumen.example")
    third.click("nav >> text=Statements")
    third.click(f"tr[data-statement='{statement.pk}'] >> text=2026-Q3")
    third.wait_for_selector("html[data-charts-ready=true]")
    assert third.locator("[data-testid=holder-code]").inner_text() == holder.organisation.code
    payable = statement.payable_minor
    assert third.locator("[data-testid=payable]").inner_text() == (
        f"{payable // 100:,}.{payable % 100:02d} EUR"
    )
    assert third.get_attribute("#chart-works", "data-points") == "2"
    third.screenshot(path=str(artifacts / "statement.png"), full_page=True)

    with third.expect_download() as download:
        third.click("#download-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    header_block, lines_block = text.split("\n\n", 1)
    header = dict(list(csv.reader(io.StringIO(header_block)))[1:])
    lines = list(csv.DictReader(io.StringIO(lines_block)))
    assert header["holder_code"] == holder.organisation.code
    assert int(header["payable_minor"]) == statement.payable_minor
    works = [row for row in lines if row["section"] == "work"]
    assert sum(int(row["amount_minor"]) for row in works) == statement.earned_minor
    assert len(works) == 2

    with third.expect_download() as download:
        third.click("#download-pdf")
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert holder.organisation.code.encode() in _pdf_objects(pdf)
    holder_context.close()
