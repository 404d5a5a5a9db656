"""The public transparency pages in a real browser, logged out: the statistics page with its
chart (every figure checked against the database), then the robots.txt generator for a
member's site, before and after the member reserves the whole domain."""

import pytest

from accounts.models import OrganisationKind, Role
from accounts.scoping import caller_for_user
from accounts.services import membership_add
from licensing.models import Work
from licensing.services.repertoire import catalogue_create, work_create
from licensing.services.reservations import reservation_create
from tests.factories import OrganisationFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _member():
    organisation = OrganisationFactory(kind=OrganisationKind.RIGHTS_HOLDER, name="Lumen Books")
    user = UserFactory(email="editor@lumen.example")
    membership_add(organisation=organisation, user=user, role=Role.OWNER)
    caller = caller_for_user(user, organisation)
    catalogue = catalogue_create(caller=caller, name="Site", media_type="text")
    for ref, consent in (("P1", ""), ("P2", "reserved"), ("P3", ""), ("P4", "")):
        work_create(
            caller=caller,
            catalogue=catalogue,
            work_ref=ref,
            title=f"Page {ref}",
            identifiers=[{"scheme": "url", "value": f"https://lumen.example/{ref.lower()}"}],
            consent=consent,
        )
    return caller


def test_public_statistics_and_the_robots_snippet(page, live_server, artifacts):
    member = _member()
    OrganisationFactory(kind=OrganisationKind.LICENSEE, name="Aleph AI Ltd")

    page.goto("/transparency/")
    page.wait_for_selector("html[data-charts-ready=true]")
    assert page.locator("[data-testid=works]").inner_text() == str(Work.objects.count()) == "4"
    assert page.locator("[data-testid=works-reserved]").inner_text() == "1"
    assert page.locator("[data-testid=reserved-share]").inner_text() == "25.00%"
    assert page.locator("[data-testid=rights-holders]").inner_text() == "1"
    assert page.locator("[data-testid=licensees]").inner_text() == "1"
    assert page.get_attribute("#chart-works", "data-points") == "2"
    stats = page.request.get("/api/v1/public/stats/")
    assert stats.status == 200 and stats.json()["works_reserved"] == 1
    page.screenshot(path=str(artifacts / "transparency.png"), full_page=True)
    assert (artifacts / "transparency.png").stat().st_size > 10_000

    page.click("text=robots.txt and TDMRep for your site")
    page.wait_for_url("**/permissions/robots/")
    page.fill("#id_domain", "Lumen.example")
    page.click("button:has-text('Generate')")
    page.wait_for_selector("#robots-snippet")
    snippet = page.locator("#robots-snippet").inner_text()
    assert "User-agent: GPTBot" in snippet and "User-agent: ClaudeBot" in snippet
    assert "Disallow: /p2$" in snippet
    assert "License: " in snippet and "/licence.rsl.xml" in snippet
    assert '"location": "/p1"' in page.locator("#tdmrep-rules").inner_text()

    # The member reserves the whole site; the very next request says so everywhere.
    reservation_create(caller=member, kind="domain", value="lumen.example")
    page.reload()
    page.wait_for_selector("#robots-snippet")
    training = page.locator("#robots-snippet").inner_text().split("# AI search")[0]
    assert "Disallow: /\n" in training + "\n" and "/p2$" not in training
    assert '"location": "/*"' in page.locator("#tdmrep-rules").inner_text()
    plain = page.request.get("/api/v1/permissions/robots.txt?domain=lumen.example")
    assert plain.status == 200 and "Disallow: /\n" in plain.text()
    page.screenshot(path=str(artifacts / "robots-snippet.png"), full_page=True)
    assert (artifacts / "robots-snippet.png").stat().st_size > 10_000

    page.goto("/transparency/")
    assert page.locator("[data-testid=reservations]").inner_text() == "1"
