"""The repertoire pages: each renders for its persona, another organisation gets 404 on every
object page and POST, staff pages refuse everyone else, and the works table's filters and bulk
consent touch exactly the works they say."""

from __future__ import annotations

import csv
import io

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Role
from accounts.services import membership_add
from licensing.models import (
    Catalogue,
    CatalogueImport,
    Conflict,
    ConflictStatus,
    ConsentRegime,
    JobStatus,
    Reservation,
    SocietySettings,
    Work,
    WorkStatus,
)
from licensing.services.reservations import reservation_create
from licensing.services.society import society_settings_get
from tests.factories import UserFactory
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db

ISBN_A = "9780439023481"  # ISBN-10 0-439-02348-3
ISBN_B = "9780306406157"
ISBN_C = "9781861972712"


@pytest.fixture(autouse=True)
def _media_and_throttles(settings, tmp_path):
    """Uploads go to a temporary folder; the registry's rate budget (kept in the cache) is
    left as it was found, so these page tests never throttle the API tests."""
    from django.core.cache import cache

    settings.MEDIA_ROOT = tmp_path / "media"
    cache.clear()
    yield
    cache.clear()


def _job(catalogue, **fields) -> CatalogueImport:
    fields.setdefault("original_name", "backlist.csv")
    fields.setdefault("file_sha256", "0" * 64)
    return CatalogueImport.objects.create(catalogue=catalogue, file="imports/x.csv", **fields)


@pytest.fixture
def repertoire(rights_holder, co_holder):
    """A catalogue with three works, one of them disputed with the co-holder's claim."""
    catalogue = catalogue_for(rights_holder)
    a = work_in(catalogue, rights_holder, "A-1", isbn=ISBN_A)
    b = work_in(catalogue, rights_holder, "B-2", isbn=ISBN_B)
    c = work_in(catalogue, rights_holder, "C-3", isbn=ISBN_C, consent="reserved")
    rival = work_in(catalogue_for(co_holder, "Rival"), co_holder, "R-1", isbn=ISBN_A)
    job = _job(
        catalogue,
        status=JobStatus.FAILED,
        percent=100,
        rows_total=3,
        rows_done=3,
        error_count=1,
        errors=[{"row": 3, "column": "isbn", "message": "invalid check digit"}],
    )
    reservation = reservation_create(
        caller=caller_of(rights_holder), kind="domain", value="press.example"
    )
    return {
        "catalogue": catalogue,
        "works": {"A-1": a, "B-2": b, "C-3": c},
        "rival": rival,
        "conflict": Conflict.objects.get(),
        "job": job,
        "reservation": reservation,
    }


# --- every page renders for its persona ------------------------------------------------------


def test_each_repertoire_page_renders_for_the_rights_holder(repertoire, rights_holder):
    client = rights_holder.client()
    c, job = repertoire["catalogue"].pk, repertoire["job"].pk
    for url in (
        "/catalogues/",
        f"/catalogues/{c}/",
        f"/catalogues/{c}/imports/",
        f"/imports/{job}/",
        f"/imports/{job}/progress/",
        "/conflicts/",
        "/reservations/",
        "/registry/",
        "/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(f"/catalogues/{c}/").content.decode()
    assert all(ref in page for ref in ("A-1", "B-2", "C-3")) and "R-1" not in page


def test_public_pages_render_without_logging_in(client):
    for url in ("/registry/", "/reservations/request/", "/reservations/verify/nonsense/"):
        assert client.get(url).status_code == 200, url


def test_staff_pages_render_for_staff(repertoire, operator):
    client = operator.client()
    for url in ("/conflicts/queue/", "/society/", "/conflicts/", "/catalogues/"):
        assert client.get(url).status_code == 200, url
    queue = client.get("/conflicts/queue/").content.decode()
    assert f"isbn:{ISBN_A}" in queue and "Reject the claim of" in queue


def test_licensee_sees_catalogues_page_without_the_create_form(licensee):
    response = licensee.client().get("/catalogues/")
    assert response.status_code == 200
    assert "Create catalogue" not in response.content.decode()


def test_member_pages_send_anonymous_visitors_to_log_in(repertoire, client):
    c, job = repertoire["catalogue"].pk, repertoire["job"].pk
    for url in (
        "/catalogues/",
        f"/catalogues/{c}/",
        f"/catalogues/{c}/imports/",
        f"/imports/{job}/",
        f"/imports/{job}/errors.csv",
        "/conflicts/",
        "/reservations/",
        "/conflicts/queue/",
        "/society/",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_navigation_shows_each_persona_its_pages(rights_holder, operator, client):
    nav = rights_holder.client().get("/").content.decode().split("</nav>")[0]
    for label in ("Catalogues", "Conflicts", "Reservations", "Registry"):
        assert f">{label}</a>" in nav
    assert "Conflicts queue" not in nav and "Society settings" not in nav
    staff_nav = operator.client().get("/").content.decode().split("</nav>")[0]
    assert "Conflicts queue" in staff_nav and "Society settings" in staff_nav
    public_nav = client.get("/registry/").content.decode().split("</nav>")[0]
    assert ">Registry</a>" in public_nav and "Catalogues" not in public_nav


def test_dashboard_card_counts_catalogues_and_works(repertoire, rights_holder):
    page = rights_holder.client().get("/").content.decode()
    assert 'data-testid="work-count">1 / 3<' in page
    assert "1 disputed" in page


# --- another organisation gets 404 everywhere ------------------------------------------------


def _object_calls(o):
    c, job = o["catalogue"].pk, o["job"].pk
    work, conflict, res = o["works"]["A-1"].pk, o["conflict"].pk, o["reservation"].pk
    upload = ContentFile(b"work_ref,title,isbn\nX,X,9780306406157\n", name="x.csv")
    return [
        ("get", f"/catalogues/{c}/", None),
        ("get", f"/catalogues/{c}/?identifier=isbn:{ISBN_A}", None),
        ("post", f"/catalogues/{c}/settings/", {"name": "Mine", "default_consent": "reserved"}),
        ("post", f"/catalogues/{c}/consent/", {"action": "reserve_filtered"}),
        ("post", f"/catalogues/{c}/consent/", {"action": "reserve_selected", "work": [work]}),
        ("get", f"/catalogues/{c}/imports/", None),
        ("post", f"/catalogues/{c}/imports/", {"file": upload, "mode": "all_or_nothing"}),
        ("get", f"/imports/{job}/", None),
        ("get", f"/imports/{job}/progress/", None),
        ("get", f"/imports/{job}/errors.csv", None),
        ("post", f"/works/{work}/consent/", {"use": "training", "consent": "reserved"}),
        ("post", f"/conflicts/{conflict}/resolve/", {f"conflict-{conflict}-resolution": "x"}),
        ("post", f"/reservations/{res}/withdraw/", None),
    ]


def test_outsider_gets_404_on_every_object_page_and_post_and_changes_nothing(repertoire, outsider):
    client = outsider.client()
    for method, url, body in _object_calls(repertoire):
        response = getattr(client, method)(url, body or {})
        assert response.status_code == 404, (method, url, response.status_code)
    catalogue = Catalogue.objects.get(pk=repertoire["catalogue"].pk)
    assert catalogue.name == "Backlist" and catalogue.default_consent == "licensed"
    assert not Work.objects.filter(consent_training="reserved").exclude(work_ref="C-3").exists()
    assert CatalogueImport.objects.count() == 1
    assert Conflict.objects.get().status == ConflictStatus.OPEN
    assert Reservation.objects.get().withdrawn_at is None


def test_outsider_sees_empty_lists(repertoire, outsider):
    client = outsider.client()
    for url in ("/catalogues/", "/conflicts/", "/reservations/"):
        page = client.get(url).content.decode()
        assert "Backlist" not in page and ISBN_A not in page and "press.example" not in page


def test_co_holder_sees_the_shared_conflict_but_not_the_other_catalogue(repertoire, co_holder):
    client = co_holder.client()
    page = client.get("/conflicts/").content.decode()
    assert f"isbn:{ISBN_A}" in page and "A-1" in page
    assert client.get(f"/catalogues/{repertoire['catalogue'].pk}/").status_code == 404


# --- staff-only pages ------------------------------------------------------------------------


def test_staff_only_pages_refuse_everyone_else(repertoire, rights_holder, licensee):
    conflict = repertoire["conflict"]
    for persona in (rights_holder, licensee):
        client = persona.client()
        assert client.get("/conflicts/queue/").status_code == 403
        assert client.get("/society/").status_code == 403
        assert client.post("/society/", {"consent_regime": "opt_out"}).status_code == 403
    assert society_settings_get().consent_regime == ConsentRegime.OPT_IN
    # A claimant may see the conflict but not resolve it.
    response = rights_holder.client().post(
        f"/conflicts/{conflict.pk}/resolve/",
        {
            f"conflict-{conflict.pk}-resolution": "mine",
            f"conflict-{conflict.pk}-reject": [repertoire["rival"].pk],
        },
    )
    assert response.status_code == 403
    assert Conflict.objects.get().status == ConflictStatus.OPEN


# --- catalogues ------------------------------------------------------------------------------


def test_catalogue_is_created_from_the_page_and_a_duplicate_name_is_refused(rights_holder):
    client = rights_holder.client()
    body = {"name": "Poetry", "media_type": "text", "default_consent": "reserved"}
    response = client.post("/catalogues/", body)
    catalogue = Catalogue.objects.get(name="Poetry")
    assert response.status_code == 302
    assert response["Location"] == reverse("catalogue_imports", args=[catalogue.pk])
    assert catalogue.owner == rights_holder.organisation and catalogue.default_consent == "reserved"
    again = client.post("/catalogues/", body)
    assert again.status_code == 200 and "Already used." in again.content.decode()
    assert Catalogue.objects.filter(name="Poetry").count() == 1
    listing = client.get("/catalogues/").content.decode()
    assert "Poetry" in listing and "Reserved" in listing


def test_default_consent_is_changed_from_the_works_page(repertoire, rights_holder):
    catalogue = repertoire["catalogue"]
    response = rights_holder.client().post(
        f"/catalogues/{catalogue.pk}/settings/", {"name": "Backlist", "default_consent": "reserved"}
    )
    assert response.status_code == 302
    catalogue.refresh_from_db()
    assert catalogue.default_consent == "reserved"
    # Works without their own consent follow the default.
    page = rights_holder.client().get(f"/catalogues/{catalogue.pk}/?consent=reserved").content
    assert b'data-testid="matching"><strong>3</strong>' in page


# --- works table: filters --------------------------------------------------------------------


def _refs(response) -> set[str]:
    return {
        work.work_ref
        for work in response.context["page"].object_list
        if isinstance(work, Work)  # a list after rendering
    }


def test_identifier_filter_finds_works_by_normalised_identifier(repertoire, rights_holder):
    client = rights_holder.client()
    url = f"/catalogues/{repertoire['catalogue'].pk}/"
    assert _refs(client.get(url, {"identifier": "isbn:0-439-02348-3"})) == {"A-1"}
    assert _refs(client.get(url, {"identifier": "ISBN:978-0-306-40615-7"})) == {"B-2"}
    bad = client.get(url, {"identifier": "isbn:9780439023482"})
    assert bad.status_code == 200 and _refs(bad) == set()
    assert "Not a valid identifier" in bad.content.decode()


def test_search_consent_and_disputed_filters(repertoire, rights_holder):
    client = rights_holder.client()
    url = f"/catalogues/{repertoire['catalogue'].pk}/"
    assert _refs(client.get(url, {"q": "b-2"})) == {"B-2"}
    assert _refs(client.get(url, {"q": "Work"})) == {"A-1", "B-2", "C-3"}
    assert _refs(client.get(url, {"consent": "reserved", "use": "training"})) == {"C-3"}
    assert _refs(client.get(url, {"consent": "licensed", "use": "rag"})) == {"A-1", "B-2"}
    assert _refs(client.get(url, {"disputed": "yes"})) == {"A-1"}
    assert _refs(client.get(url, {"disputed": "no"})) == {"B-2", "C-3"}


def test_works_table_pages_by_50_and_counts_in_the_database(rights_holder):
    catalogue = catalogue_for(rights_holder)
    Work.objects.bulk_create(
        Work(catalogue=catalogue, work_ref=f"W{i:04d}", title=f"Work {i}", media_type="text")
        for i in range(120)
    )
    client = rights_holder.client()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/catalogues/{catalogue.pk}/", {"page": 3, "q": "Work"})
    assert response.context["matching"] == 120
    assert len(response.context["page"].object_list) == 20
    sql = [q["sql"] for q in queries.captured_queries if '"licensing_work"' in q["sql"]]
    assert any("COUNT(" in s for s in sql)
    assert all("LIMIT" in s for s in sql if "COUNT(" not in s and "SUM(" not in s)
    page = response.content.decode()
    assert "Page 3 of 3" in page and "?page=2&amp;q=Work" in page
    assert "<strong>120</strong> works match this filter" in page


# --- works table: consent toggles and bulk consent ------------------------------------------


def test_consent_toggle_with_htmx_swaps_the_row(repertoire, rights_holder):
    work = repertoire["works"]["B-2"]
    response = rights_holder.client().post(
        f"/works/{work.pk}/consent/",
        {"use": "training", "consent": "reserved"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="work-{work.pk}"')
    assert 'data-use="training" data-consent="reserved"' in row
    assert 'data-use="rag" data-consent="licensed"' in row
    work.refresh_from_db()
    assert (work.consent_training, work.consent_fine_tuning, work.consent_rag) == (
        "reserved",
        "",
        "",
    )


def test_consent_toggle_without_javascript_redirects_back(repertoire, rights_holder):
    work = repertoire["works"]["C-3"]
    response = rights_holder.client().post(
        f"/works/{work.pk}/consent/",
        {"use": "rag", "consent": "licensed", "next_query": "q=C"},
    )
    assert response.status_code == 302 and response["Location"].endswith("?q=C")
    work.refresh_from_db()
    assert work.consent_rag == "licensed" and work.consent_training == "reserved"


def test_a_viewer_sees_no_toggles_and_cannot_change_consent(repertoire, rights_holder):
    viewer = UserFactory()
    membership_add(organisation=rights_holder.organisation, user=viewer, role=Role.VIEWER)
    from tests.conftest import Persona

    client = Persona(viewer, rights_holder.organisation, Role.VIEWER).client()
    page = client.get(f"/catalogues/{repertoire['catalogue'].pk}/").content.decode()
    assert 'class="toggle' not in page and 'id="bulk"' not in page
    work = repertoire["works"]["A-1"]
    response = client.post(
        f"/works/{work.pk}/consent/",
        {"use": "training", "consent": "reserved"},
        HTTP_HX_REQUEST="true",
    )
    assert "read-only" in response.content.decode()
    work.refresh_from_db()
    assert work.consent_training == ""


def test_bulk_consent_changes_exactly_the_selected_works(repertoire, rights_holder):
    works, c = repertoire["works"], repertoire["catalogue"].pk
    selected = [works["A-1"].pk, works["B-2"].pk, repertoire["rival"].pk]  # rival: not ours
    client = rights_holder.client()
    response = client.post(
        f"/catalogues/{c}/consent/",
        {"action": "reserve_selected", "work": selected, "uses": ["training", "rag"]},
    )
    assert response.status_code == 302
    consents = {
        w.work_ref: (w.consent_training, w.consent_fine_tuning, w.consent_rag)
        for w in Work.objects.all()
    }
    assert consents == {
        "A-1": ("reserved", "", "reserved"),
        "B-2": ("reserved", "", "reserved"),
        "C-3": ("reserved", "reserved", "reserved"),
        "R-1": ("", "", ""),
    }
    follow = client.get(response["Location"])
    assert "2 works now reserved." in follow.content.decode()


def test_bulk_consent_without_a_selection_changes_nothing(repertoire, rights_holder):
    c = repertoire["catalogue"].pk
    response = rights_holder.client().post(
        f"/catalogues/{c}/consent/", {"action": "reserve_selected"}
    )
    assert response.status_code == 302
    assert Work.objects.filter(consent_training="reserved").count() == 1


def test_bulk_consent_applies_to_all_works_matching_the_filter(repertoire, rights_holder):
    c = repertoire["catalogue"].pk
    other = catalogue_for(rights_holder, "Other")
    work_in(other, rights_holder, "O-1", isbn=ISBN_B)
    response = rights_holder.client().post(
        f"/catalogues/{c}/consent/?disputed=no&page=1", {"action": "license_filtered"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/catalogues/{c}/?disputed=no"
    consents = {w.work_ref: w.consent_training for w in Work.objects.all()}
    # B-2 and C-3 are the undisputed works of this catalogue; A-1 (disputed), the other
    # catalogue's O-1 and the co-holder's R-1 are untouched.
    assert consents == {"A-1": "", "B-2": "licensed", "C-3": "licensed", "O-1": "", "R-1": ""}


def test_bulk_consent_refuses_an_invalid_filter(repertoire, rights_holder):
    c = repertoire["catalogue"].pk
    rights_holder.client().post(
        f"/catalogues/{c}/consent/?identifier=isbn:123", {"action": "reserve_filtered"}
    )
    assert Work.objects.filter(consent_training="reserved").count() == 1


# --- imports ---------------------------------------------------------------------------------


def test_job_page_polls_while_the_job_runs_and_stops_when_it_is_finished(repertoire, rights_holder):
    job = _job(repertoire["catalogue"], status=JobStatus.RUNNING, stage="validating", percent=40)
    job.rows_total, job.rows_done = 1000, 400
    job.save()
    client = rights_holder.client()
    partial = client.get(f"/imports/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in partial and f"/imports/{job.pk}/progress/" in partial
    assert 'role="progressbar"' in partial and 'aria-valuenow="40"' in partial
    assert "400 of 1000 rows" in partial and "Validating" in partial
    CatalogueImport.objects.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, percent=100, rows_done=1000, works_created=900
    )
    done = client.get(f"/imports/{job.pk}/").content.decode()
    assert "hx-trigger" not in done and 'aria-valuenow="100"' in done
    assert 'data-testid="works-created">900<' in done


def test_job_page_lists_the_first_errors_and_links_the_report(repertoire, rights_holder):
    job = repertoire["job"]
    page = rights_holder.client().get(f"/imports/{job.pk}/").content.decode()
    assert "invalid check digit" in page and '<td class="num">3</td>' in page
    assert f"/imports/{job.pk}/errors.csv" in page


def test_error_report_is_served_as_an_attachment(repertoire, rights_holder):
    job = repertoire["job"]
    client = rights_holder.client()
    # Without a report file: the first errors, as CSV.
    response = client.get(f"/imports/{job.pk}/errors.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-errors.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [["row", "column", "message"], ["3", "isbn", "invalid check digit"]]
    # With the job's report file: that file.
    job.error_report.save("errors.csv", ContentFile(b"row,column,message\n3,isbn,full report\n"))
    response = client.get(f"/imports/{job.pk}/errors.csv")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert b"full report" in b"".join(response.streaming_content)
    # A job without errors has no report.
    clean = _job(repertoire["catalogue"], status=JobStatus.SUCCEEDED, percent=100)
    assert client.get(f"/imports/{clean.pk}/errors.csv").status_code == 404


HEADER = "work_ref,title,media_type,isbn,doi,holder,share,role,consent\n"


def _upload(client, catalogue, text: str, *, mode="all_or_nothing", name="backlist.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(name, text.encode(), content_type="text/csv")
    return client.post(f"/catalogues/{catalogue.pk}/imports/", {"file": upload, "mode": mode})


def test_upload_with_a_row_error_writes_nothing_and_shows_the_error(
    rights_holder, django_capture_on_commit_callbacks
):
    catalogue = catalogue_for(rights_holder, "Upload")
    client = rights_holder.client()
    me = rights_holder.organisation.code
    text = HEADER + (
        f"P-1,Good,text,{ISBN_A},,{me},100,author,\nP-2,Bad,text,9780439023482,,{me},100,author,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, catalogue, text)
    job = CatalogueImport.objects.get(catalogue=catalogue)
    assert response.status_code == 302 and response["Location"] == f"/imports/{job.pk}/"
    assert job.status == JobStatus.FAILED and not catalogue.works.exists()
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert "hx-trigger" not in page and 'id="import-errors"' in page
    assert '<td class="num">3</td><td><code>isbn</code></td>' in page
    report = client.get(f"/imports/{job.pk}/errors.csv")
    assert report.status_code == 200 and "attachment" in report["Content-Disposition"]
    assert "9780439023482" in b"".join(report.streaming_content).decode("utf-8-sig")


def test_upload_of_valid_rows_only_writes_the_valid_works(
    rights_holder, django_capture_on_commit_callbacks
):
    catalogue = catalogue_for(rights_holder, "Upload")
    client = rights_holder.client()
    me = rights_holder.organisation.code
    text = HEADER + (
        f"P-1,Good,text,{ISBN_A},,{me},100,author,reserved\n"
        f"P-2,Bad,text,9780439023482,,{me},100,author,\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, catalogue, text, mode="valid_only")
    job = CatalogueImport.objects.get(catalogue=catalogue)
    assert (job.status, job.works_created, job.works_skipped) == (JobStatus.SUCCEEDED, 1, 1)
    page = client.get(f"/imports/{job.pk}/").content.decode()
    assert 'aria-valuenow="100"' in page and 'data-testid="works-skipped">1<' in page
    works = client.get(f"/catalogues/{catalogue.pk}/").content.decode()
    assert 'data-work-ref="P-1"' in works and 'data-work-ref="P-2"' not in works


def test_upload_of_a_file_that_is_not_csv_is_refused_on_the_form(rights_holder):
    catalogue = catalogue_for(rights_holder, "Upload")
    response = _upload(rights_holder.client(), catalogue, "hello", name="notes.txt")
    assert response.status_code == 400
    assert "Upload a .csv (UTF-8) or .xlsx file." in response.content.decode()
    assert not CatalogueImport.objects.exists()


def test_import_page_lists_past_imports(repertoire, rights_holder):
    page = rights_holder.client().get(f"/catalogues/{repertoire['catalogue'].pk}/imports/")
    html = page.content.decode()
    assert f'data-import="{repertoire["job"].pk}"' in html and "backlist.csv" in html
    assert 'enctype="multipart/form-data"' in html and "valid_only" in html


# --- conflicts -------------------------------------------------------------------------------


def test_staff_resolve_a_conflict_by_rejecting_a_claim(repertoire, operator):
    conflict, rival = repertoire["conflict"], repertoire["rival"]
    prefix = f"conflict-{conflict.pk}"
    response = operator.client().post(
        f"/conflicts/{conflict.pk}/resolve/",
        {f"{prefix}-resolution": "Publisher's contract wins", f"{prefix}-reject": [rival.pk]},
    )
    assert response.status_code == 302 and response["Location"] == "/conflicts/queue/"
    conflict.refresh_from_db()
    assert conflict.status == ConflictStatus.RESOLVED
    assert conflict.resolution == "Publisher's contract wins"
    assert Work.objects.get(work_ref="A-1").status == WorkStatus.ACTIVE
    assert not rival.identifiers.exists()


def test_service_errors_show_on_the_resolve_form(repertoire, operator):
    conflict = repertoire["conflict"]
    prefix = f"conflict-{conflict.pk}"
    client = operator.client()
    still = client.post(f"/conflicts/{conflict.pk}/resolve/", {f"{prefix}-resolution": "ok"})
    assert still.status_code == 400
    assert "still add up to 200.0000%" in still.content.decode()
    empty = client.post(f"/conflicts/{conflict.pk}/resolve/", {f"{prefix}-resolution": ""})
    assert empty.status_code == 400 and "This field is required." in empty.content.decode()
    assert Conflict.objects.get().status == ConflictStatus.OPEN


# --- reservations ----------------------------------------------------------------------------


def test_member_adds_and_withdraws_a_reservation(rights_holder):
    client = rights_holder.client()
    response = client.post(
        "/reservations/",
        {"kind": "identifier", "scheme": "isbn", "value": "0-439-02348-3", "uses": ["training"]},
    )
    assert response.status_code == 302
    reservation = Reservation.objects.get()
    assert (reservation.value, reservation.uses) == (ISBN_A, ["training"])
    assert reservation.organisation == rights_holder.organisation
    bad = client.post("/reservations/", {"kind": "domain", "value": "not a domain"})
    assert bad.status_code == 400 and "Not a domain name." in bad.content.decode()
    no_scheme = client.post("/reservations/", {"kind": "identifier", "value": ISBN_A})
    assert "Say which kind of identifier" in no_scheme.content.decode()
    assert f"isbn:{ISBN_A}" in client.get("/reservations/").content.decode()
    client.post(f"/reservations/{reservation.pk}/withdraw/")
    reservation.refresh_from_db()
    assert reservation.withdrawn_at is not None


def test_a_non_member_reserves_by_email_and_confirms_by_the_link(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/reservations/request/",
            {"email": "Poet@Example.test", "kind": "url_prefix", "value": "https://poet.example/"},
        )
    assert response.status_code == 200 and "Check your email" in response.content.decode()
    reservation = Reservation.objects.get()
    assert reservation.email == "poet@example.test" and reservation.verified_at is None
    link = next(w for w in mail.outbox[-1].body.split() if "/reservations/verify/" in w)
    path = link.split("://", 1)[1].split("/", 1)[1]
    ask = client.get(f"/{path}")
    assert ask.status_code == 200 and "Confirm reservation" in ask.content.decode()
    reservation.refresh_from_db()
    assert reservation.verified_at is None  # a GET (a mail scanner) confirms nothing
    done = client.post(f"/{path}")
    assert done.status_code == 200 and "Reservation confirmed" in done.content.decode()
    reservation.refresh_from_db()
    assert reservation.verified_at is not None
    assert client.post("/reservations/verify/forged-token/").status_code == 400


# --- registry --------------------------------------------------------------------------------


def test_registry_page_checks_pasted_identifiers(repertoire, client):
    response = client.post(
        "/registry/",
        {
            "identifiers": f"isbn:0-439-02348-3\nISBN:{ISBN_C}\n\nisbn:9780439023482\n"
            "doi:10.1000/182\n",
            "use": "training",
        },
    )
    assert response.status_code == 200
    statuses = [r.status for r in response.context["results"]]
    assert statuses == ["licensed", "reserved", "invalid", "unknown"]
    page = response.content.decode()
    assert "opt-in</strong>" in page and "/api/v1/registry/reservations.csv" in page


def test_registry_page_follows_the_consent_regime(client):
    SocietySettings.objects.update_or_create(
        pk=1, defaults={"consent_regime": ConsentRegime.OPT_OUT}
    )
    response = client.post("/registry/", {"identifiers": "doi:10.1000/182", "use": "training"})
    assert [r.status for r in response.context["results"]] == ["licensed"]
    assert "opt-out</strong>" in response.content.decode()


def test_registry_page_refuses_lines_without_a_scheme_and_more_than_10000(client):
    response = client.post("/registry/", {"identifiers": f"{ISBN_A}\nisbn:{ISBN_B}", "use": "rag"})
    assert response.status_code == 400 and "line 1 has no scheme" in response.content.decode()
    many = "\n".join([f"isbn:{ISBN_A}"] * 10_001)
    response = client.post("/registry/", {"identifiers": many, "use": "training"})
    assert response.status_code == 400 and "At most 10,000" in response.content.decode()


def test_public_forms_are_rate_limited_like_the_registry_api(client, monkeypatch):
    from licensing.api.views import RegistryThrottle

    monkeypatch.setattr(RegistryThrottle, "THROTTLE_RATES", {"registry": "2/minute"})
    body = {"identifiers": f"isbn:{ISBN_A}", "use": "training"}
    assert [client.post("/registry/", body).status_code for _ in range(3)] == [200, 200, 429]
    request = {"email": "a@example.test", "kind": "domain", "value": "example.com"}
    assert client.post("/reservations/request/", request).status_code == 429
    assert not Reservation.objects.exists()


# --- society settings ------------------------------------------------------------------------


def test_staff_switch_the_consent_regime(operator):
    client = operator.client()
    response = client.post("/society/", {"consent_regime": "opt_out"})
    assert response.status_code == 302
    assert society_settings_get().consent_regime == ConsentRegime.OPT_OUT
    assert "Opt-out" in client.get("/society/").content.decode()
