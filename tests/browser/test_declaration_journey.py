"""A licensee declares its usage in a real browser: log in, open the licence's declarations
page, upload a CSV with matched, unmatched and reserved lines (some written messily), watch the
progress bar reach 100%, read the match report against the database, and download the
unmatched identifiers."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import OrganisationKind, Role
from accounts.services import membership_add
from licensing.demo_declarations import current_quarter
from licensing.models import DeclarationStatus, UsageDeclaration
from licensing.services.declarations import declaration_process
from licensing.tasks import declaration_process_task
from tests.factories import OrganisationFactory, UserFactory
from tests.licensing.declarations_support import active_licence
from tests.licensing.factories import catalogue_for, work_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
ISBN_A = "9780439023481"  # written below as the ISBN-10 0-439-02348-3
ISBN_B = "9780306406157"
ISBN_RESERVED = "9780140449136"
ISBN_UNKNOWN = "9781861972712"

USAGE = [
    ("scheme", "identifier", "quantity", "unit", "title"),
    ("isbn", ISBN_A, "1200", "tokens", "The Hunger Games"),
    ("isbn", "0-439-02348-3", "300", "tokens", "The Hunger Games (ISBN-10)"),
    ("doi", "https://doi.org/10.1000/JOURNAL.ABC", "500", "tokens", ""),
    ("url", "HTTPS://EXAMPLE.COM/books/1", "250", "tokens", ""),
    ("isbn", ISBN_B, "750", "tokens", "Numbers in Practice"),
    ("isbn", ISBN_RESERVED, "400", "tokens", "The Odyssey"),
    ("isbn", ISBN_UNKNOWN, "900", "tokens", "Managing in Turbulent Times"),
    ("url", "https://unknown.example/a", "60", "tokens", "Somebody's page"),
]


def _persona(kind: OrganisationKind, name: str, email: str) -> SimpleNamespace:
    organisation = OrganisationFactory(kind=kind, name=name)
    user = UserFactory(email=email)
    membership_add(organisation=organisation, user=user, role=Role.OWNER)
    return SimpleNamespace(organisation=organisation, user=user)


def test_licensee_files_a_declaration_and_reads_the_match_report(
    page, live_server, artifacts, tmp_path, monkeypatch
):
    holder = _persona(OrganisationKind.RIGHTS_HOLDER, "Lumen Books", "editor@lumen.example")
    catalogue = catalogue_for(holder, "Declared")
    work_in(catalogue, holder, "A", isbn=ISBN_A)
    work_in(catalogue, holder, "B", isbn=ISBN_B)
    work_in(catalogue, holder, "DOI", doi="10.1000/Journal.Abc")
    work_in(catalogue, holder, "URL", url="https://example.com/books/1")
    work_in(catalogue, holder, "R", isbn=ISBN_RESERVED, consent="reserved")
    licensee = _persona(OrganisationKind.LICENSEE, "Aleph AI", "legal@aleph.example")
    today = timezone.localdate()
    licence = active_licence(licensee, starts=today.replace(day=1))  # the quarter: on time
    period = current_quarter(today)

    usage = tmp_path / f"usage-{period.lower()}.csv"
    with usage.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(USAGE)

    page.goto("/login/")
    page.fill("#id_username", "legal@aleph.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")

    page.goto(f"/licences/{licence.pk}/")
    page.click("#declarations-link")
    page.wait_for_url(f"**/licences/{licence.pk}/declarations/")
    assert "No declarations yet." in page.locator("#declarations").inner_text()

    # The job is queued rather than run at once, so the page shows it submitted and polls.
    queued = []
    monkeypatch.setattr(declaration_process_task, "delay", queued.append)
    page.fill("#id_period", period)
    page.fill("#id_model_name", "aleph-large")
    page.fill("#id_model_version", "2026.4")
    page.set_input_files("#id_file", str(usage))
    page.click("button:has-text('File the declaration')")
    page.wait_for_selector("#declaration-job[data-status=submitted][hx-trigger]")
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "0"

    # Hold the page's polls while this thread runs the job: the live server shares the test
    # database connection, so the two must not use it at the same time.
    held, holding = [], [True]
    page.route(
        "**/progress/", lambda route: held.append(route) if holding[0] else route.continue_()
    )
    page.wait_for_timeout(1_200)  # a poll already on its way finishes; the next ones wait
    (declaration_id,) = queued
    declaration_process(declaration_id=declaration_id)
    holding[0] = False
    for route in held:
        route.continue_()

    page.wait_for_selector("#declaration-job[data-status=accepted]", timeout=10_000)
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "100"
    assert page.locator("#declaration-job").get_attribute("hx-trigger") is None

    declaration = UsageDeclaration.objects.get(pk=declaration_id)
    assert declaration.status == DeclarationStatus.ACCEPTED
    assert (declaration.matched_quantity, declaration.matched_lines) == (3000, 5)
    assert (declaration.unmatched_quantity, declaration.unmatched_lines) == (960, 2)
    assert (declaration.reserved_quantity, declaration.reserved_lines) == (400, 1)
    shown = {
        name: page.locator(f"[data-testid={name}]").inner_text().replace(",", "")
        for name in (
            "matched-lines",
            "matched-quantity",
            "unmatched-lines",
            "unmatched-quantity",
            "reserved-lines",
            "reserved-quantity",
            "declared-quantity",
        )
    }
    assert shown == {
        "matched-lines": str(declaration.matched_lines),
        "matched-quantity": str(declaration.matched_quantity),
        "unmatched-lines": str(declaration.unmatched_lines),
        "unmatched-quantity": str(declaration.unmatched_quantity),
        "reserved-lines": str(declaration.reserved_lines),
        "reserved-quantity": str(declaration.reserved_quantity),
        "declared-quantity": str(declaration.declared_quantity),
    }
    assert declaration.declared_quantity == 4360
    assert ISBN_UNKNOWN in page.locator("#top-unmatched").inner_text()
    page.screenshot(path=str(artifacts / "declaration-report.png"), full_page=True)

    with page.expect_download() as download:
        page.click("text=Download the unmatched identifiers (CSV)")
    rows = list(
        csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig")))
    )
    assert {(row["scheme"], row["identifier"], row["quantity"]) for row in rows} == {
        ("isbn", ISBN_UNKNOWN, "900"),
        ("url", "https://unknown.example/a", "60"),
    }

    # The history on the licence's page shows the accepted declaration with the same figures.
    page.click(f"text=Declarations of licence {licence.pk}")
    history = page.locator(f"tr[data-declaration='{declaration_id}']")
    assert "accepted" in history.inner_text()
    assert period in history.inner_text()
    assert not declaration.late
