"""A rights holder enrols a catalogue in a real browser: log in, create the catalogue, upload a
file with a bad ISBN, read the row error, upload the fixed file, watch the progress bar reach
100%, find the works in the table and reserve one of them with its consent toggle."""

from pathlib import Path

import pytest

from accounts.models import OrganisationKind, Role
from accounts.services import membership_add
from licensing.models import CatalogueImport, JobStatus, Work
from licensing.services.imports import catalogue_import_run
from licensing.tasks import catalogue_import_run_task
from tests.factories import OrganisationFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
HEADER = "work_ref,title,media_type,isbn,doi,holder,share,role,consent"


def _catalogue_csv(path, code: str, *, second_isbn: str):
    rows = [
        HEADER,
        f"BK-1,The Hunger Games,text,9780439023481,,{code},100,author,",
        f"BK-2,Numbers in Practice,text,{second_isbn},10.1000/182,{code},60,author,licensed",
        f"BK-2,Numbers in Practice,text,{second_isbn},10.1000/182,{code},40,publisher,licensed",
        f"BK-3,Managing in Turbulent Times,text,9781861972712,,{code},100,author,",
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_a_catalogue_fix_a_row_error_and_toggle_consent(
    page, live_server, artifacts, tmp_path, monkeypatch
):
    organisation = OrganisationFactory(kind=OrganisationKind.RIGHTS_HOLDER, name="Lumen Books")
    user = UserFactory(email="editor@lumen.example")
    membership_add(organisation=organisation, user=user, role=Role.OWNER)
    code = organisation.code

    page.goto("/login/")
    page.fill("#id_username", "editor@lumen.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")

    page.click("nav >> text=Catalogues")
    page.fill("#id_name", "Backlist")
    page.select_option("#id_media_type", "text")
    page.select_option("#id_default_consent", "licensed")
    page.click("button:has-text('Create catalogue')")
    page.wait_for_url("**/imports/")
    assert "Catalogue “Backlist” created" in page.locator(".messages").inner_text()

    # 1. A file with an invalid ISBN (bad check digit) on line 3: nothing is written.
    bad = _catalogue_csv(tmp_path / "backlist.csv", code, second_isbn="9780439023482")
    page.set_input_files("#id_file", str(bad))
    page.check("input[name=mode][value=all_or_nothing]")
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("#import-job[data-status=failed]")
    errors = page.locator("#import-errors tbody tr")
    first = errors.first.locator("td")
    assert first.nth(0).inner_text() == "3"
    assert first.nth(1).inner_text() == "isbn"
    assert "check digit" in first.nth(2).inner_text().lower()
    assert "Nothing was imported" in page.locator("[data-testid=import-message]").inner_text()
    with page.expect_download() as download:
        page.click("text=Download all errors (CSV)")
    report = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert report.startswith("row,column,value,message") and "9780439023482" in report
    assert not Work.objects.exists()

    # 2. The fixed file. The job is queued rather than run at once, so the page shows it
    # pending and polls; then it runs, and the bar fills to 100% without a reload.
    queued = []
    monkeypatch.setattr(catalogue_import_run_task, "delay", queued.append)
    fixed = _catalogue_csv(tmp_path / "backlist-fixed.csv", code, second_isbn="9780306406157")
    page.click("text=Upload another file")
    page.set_input_files("#id_file", str(fixed))
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("#import-job[data-status=pending][hx-trigger]")
    assert page.get_attribute("[role=progressbar]", "aria-valuenow") == "0"

    # Hold the page's polls while this thread runs the job: the live server shares the test
    # database connection, so the two must not use it at the same time.
    held, holding = [], [True]
    page.route(
        "**/progress/", lambda route: held.append(route) if holding[0] else route.continue_()
    )
    page.wait_for_timeout(1_200)  # a poll already on its way finishes; the next ones wait
    (job_id,) = queued
    catalogue_import_run(import_id=job_id)
    holding[0] = False
    for route in held:
        route.continue_()

    page.wait_for_selector("#import-job[data-status=succeeded]", timeout=10_000)
    bar = page.locator("[role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert page.locator("#import-job").get_attribute("hx-trigger") is None  # polling stopped
    assert page.locator("[data-testid=works-created]").inner_text() == "3"
    assert page.locator("[data-testid=error-count]").inner_text() == "0"
    assert CatalogueImport.objects.get(pk=job_id).status == JobStatus.SUCCEEDED
    page.screenshot(path=str(artifacts / "import-progress.png"), full_page=True)

    # 3. The works table, and a consent toggle that swaps its row in place.
    page.click("text=See the works")
    rows = page.locator("#works tbody tr")
    assert rows.count() == 3
    assert page.locator("[data-testid=matching]").inner_text().startswith("3 works")
    second = page.locator("tr[data-work-ref='BK-2']")
    assert "RH-" in second.locator("td.shares").inner_text()
    assert "60%" in second.inner_text() and "40%" in second.inner_text()

    first_row = page.locator("tr[data-work-ref='BK-1']")
    toggle = first_row.locator("td[data-use=training] button.toggle")
    assert toggle.get_attribute("aria-checked") == "true"
    toggle.click()
    page.wait_for_selector("tr[data-work-ref='BK-1'] td[data-use=training][data-consent=reserved]")
    assert first_row.locator("td[data-use=training] .toggle-text").inner_text() == "Reserved"
    assert first_row.locator("td[data-use=training] button").get_attribute("aria-checked") == (
        "false"
    )
    work = Work.objects.get(work_ref="BK-1")
    assert work.consent_training == "reserved" and work.consent_rag == ""
    assert Work.objects.get(work_ref="BK-2").consent_training == "licensed"
    page.screenshot(path=str(artifacts / "works.png"), full_page=True)
    assert (artifacts / "works.png").stat().st_size > 10_000
