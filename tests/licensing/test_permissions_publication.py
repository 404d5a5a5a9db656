"""Machine-readable permissions and public statistics reconcile with the database.

Every output (URL/domain look-up, reservation and licensed-repertoire lists in CSV and JSON
Lines, TDMRep, robots.txt, RSL) is compared with a direct query; a reservation made or
withdrawn shows in every reservation output on the very next request; `since` returns exactly
the changes; bad input is a 400 naming the field and the reason; the public figures equal
direct database and ledger queries.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET

import pytest
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organisation, OrganisationKind
from licensing.models import (
    Catalogue,
    ConsentRegime,
    LicenceProduct,
    Reservation,
    SocietySettings,
    Use,
    Work,
    WorkIdentifier,
)
from licensing.services.repertoire import catalogue_update
from licensing.services.reservations import (
    reservation_create,
    reservation_request,
    reservation_token,
    reservation_verify,
)
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db

LONG_AGO = timezone.now() - dt.timedelta(days=30)
USES = list(Use.values)


@pytest.fixture(autouse=True)
def _fresh_throttle_budget():
    cache.clear()
    yield
    cache.clear()


def _regime(value):
    SocietySettings.objects.update_or_create(pk=1, defaults={"consent_regime": value})


@pytest.fixture
def repertoire(rights_holder, co_holder):
    """Two holders' works on two sites, and reservations of every kind."""
    _regime(ConsentRegime.OPT_IN)
    news = catalogue_for(rights_holder, "News")
    work_in(news, rights_holder, "N1", url="https://news.example/a/1", isbn="9780439023481")
    work_in(news, rights_holder, "N2", url="https://news.example/a/2", consent="reserved")
    work_in(news, rights_holder, "N3", url="https://news.example/private/3")
    work_in(news, rights_holder, "N4", isbn="9780306406157")
    arts = catalogue_for(co_holder, "Arts", default_consent="reserved")
    work_in(arts, co_holder, "A1", url="https://arts.example/x")
    mixed = work_in(arts, co_holder, "A2", url="https://arts.example/y")
    Work.objects.filter(pk=mixed.pk).update(consent_rag="licensed")
    member = caller_of(rights_holder)
    reservation_create(caller=member, kind="domain", value="blocked.example")
    reservation_create(caller=member, kind="url_prefix", value="https://news.example/private/")
    reservation_create(caller=member, kind="identifier", scheme="isbn", value="9781861972712")
    reservation_create(caller=member, kind="domain", value="rag-only.example", uses=["rag"])
    verified = reservation_request(email="poet@example.org", kind="domain", value="poet.example")
    reservation_verify(token=reservation_token(verified))
    reservation_request(email="someone@example.org", kind="domain", value="pending.example")
    return {"news": news, "arts": arts}


def _get(path, **params):
    response = APIClient().get(path, params)
    assert response.status_code == 200, response.content
    return response


def _csv(path, **params) -> list[dict]:
    body = b"".join(_get(path, **params).streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _jsonl(path, **params) -> list[dict]:
    body = b"".join(_get(path, **params).streaming_content).decode()
    return [json.loads(line) for line in body.splitlines() if line]


def _lists(name, **params):
    """The same list in both formats; CSV rows turned into the JSON shape."""
    rows = _csv(f"/api/v1/permissions/{name}.csv", **params)
    lines = _jsonl(f"/api/v1/permissions/{name}.jsonl", **params)
    for row in rows:
        row["identifiers"] = row["identifiers"].split() if row["identifiers"] else []
        row["uses"] = row["uses"].split() if row["uses"] else []
    assert rows == lines
    return lines


def _effective(work: Work, use: str) -> str:
    return getattr(work, f"consent_{use}") or work.catalogue.default_consent


def _identifiers(work_id: int) -> list[str]:
    return sorted(
        f"{s}:{v}"
        for s, v in WorkIdentifier.objects.filter(work_id=work_id).values_list("scheme", "value")
    )


# --- the lists reconcile with the database ---------------------------------------------------


def test_reservation_list_equals_a_direct_query(repertoire):
    entries = _lists("reservations")
    in_force = Reservation.objects.filter(withdrawn_at__isnull=True).filter(
        Q(organisation__isnull=False) | Q(verified_at__isnull=False)
    )
    expected = {f"reservation:{r.pk}": r for r in in_force}
    works = Work.objects.select_related("catalogue__owner")
    reserved_works = {
        f"work:{w.pk}": w for w in works if any(_effective(w, u) == "reserved" for u in USES)
    }
    assert [e["id"] for e in entries] == [
        *sorted(expected, key=lambda k: int(k.split(":")[1])),
        *sorted(reserved_works, key=lambda k: int(k.split(":")[1])),
    ]
    assert len(entries) == 5 + 3  # pending.example is not verified; N2, A1, A2 are reserved
    for entry in entries:
        assert entry["status"] == "reserved"
        if entry["source"] == "reservation":
            r = expected[entry["id"]]
            assert (entry["kind"], entry["scheme"], entry["value"]) == (r.kind, r.scheme, r.value)
            assert entry["holder"] == (r.organisation.code if r.organisation else "")
            assert entry["uses"] == (sorted(r.uses) or USES)
        else:
            w = reserved_works[entry["id"]]
            assert entry["identifiers"] == _identifiers(w.pk)
            assert entry["holder"] == w.catalogue.owner.code
            assert entry["uses"] == [u for u in USES if _effective(w, u) == "reserved"]
    assert not any(e["value"] == "pending.example" for e in entries)
    assert all("@" not in json.dumps(e) for e in entries)  # no e-mail address is published


def test_repertoire_list_equals_a_direct_query(repertoire, rights_holder, co_holder):
    entries = _lists("repertoire")
    works = Work.objects.select_related("catalogue__owner").order_by("pk")
    licensed = [w for w in works if any(_effective(w, u) == "licensed" for u in USES)]
    assert [e["id"] for e in entries] == [f"work:{w.pk}" for w in licensed]
    assert {e["work_ref"] for e in entries} == {"N1", "N3", "N4", "A2"}
    for entry, work in zip(entries, licensed, strict=True):
        assert entry["status"] == "licensed"
        assert entry["title"] == work.title and entry["media_type"] == work.media_type
        assert entry["identifiers"] == _identifiers(work.pk)
        assert entry["uses"] == [u for u in USES if _effective(work, u) == "licensed"]
        assert entry["holder"] == work.catalogue.owner.code
    a2 = next(e for e in entries if e["work_ref"] == "A2")
    assert a2["uses"] == ["rag"] and a2["holder"] == co_holder.organisation.code


def test_lists_stream_in_chunks_across_many_works(rights_holder, monkeypatch):
    from licensing import selectors_permissions

    monkeypatch.setattr(selectors_permissions, "FEED_CHUNK", 3)
    catalogue = catalogue_for(rights_holder)
    for n in range(10):
        work_in(catalogue, rights_holder, f"W{n}", url=f"https://many.example/{n}")
    response = _get("/api/v1/permissions/repertoire.csv")
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    assert response["Cache-Control"] == "no-cache"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["id"] for r in rows] == [
        f"work:{pk}" for pk in Work.objects.order_by("pk").values_list("pk", flat=True)
    ]
    assert [r["identifiers"] for r in rows] == [f"url:https://many.example/{n}" for n in range(10)]


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/api/v1/permissions/reservations.csv", "text/csv"),
        ("/api/v1/permissions/repertoire.jsonl", "application/x-ndjson"),
        ("/api/v1/permissions/rsl.xml", "application/rsl+xml, application/xml"),
        ("/api/v1/permissions/robots.txt?domain=example.com", "text/plain"),
        ("/api/v1/permissions/tdmrep/example.com.json", "application/json"),
    ],
)
def test_documents_are_served_to_clients_asking_for_their_media_type(db, path, accept):
    response = APIClient().get(path, HTTP_ACCEPT=accept)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].split(";")[0] in accept


def test_csv_cells_are_defused_against_spreadsheet_formulas(rights_holder):
    catalogue = catalogue_for(rights_holder)
    work_in(catalogue, rights_holder, "=1+1", url="https://formula.example/")
    Work.objects.filter(work_ref="=1+1").update(title='=HYPERLINK("x")')
    row = _csv("/api/v1/permissions/repertoire.csv")[0]
    assert not row["title"].startswith("=") and not row["work_ref"].startswith("=")
    line = _jsonl("/api/v1/permissions/repertoire.jsonl")[0]
    assert line["title"] == '=HYPERLINK("x")'  # JSON carries the value as it is


# --- a consent change shows in every output on the very next request -------------------------


def _lookup(**params) -> list[dict]:
    return _get("/api/v1/permissions/lookup", **params).json()["results"]


def _tdmrep(domain) -> list[dict]:
    return _get(f"/api/v1/permissions/tdmrep/{domain}.json").json()


def _robots(domain) -> str:
    response = _get("/api/v1/permissions/robots.txt", domain=domain)
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def _training_group(robots: str) -> list[str]:
    group = robots.split("# AI training crawlers")[1].split("\n\n")[0]
    return [line for line in group.splitlines() if line.startswith("Disallow")]


def test_a_reservation_shows_in_every_output_at_once_and_goes_when_withdrawn(rights_holder):
    _regime(ConsentRegime.OPT_IN)
    catalogue = catalogue_for(rights_holder)
    work_in(catalogue, rights_holder, "F1", url="https://fresh.example/story")
    client = rights_holder.client()
    before = timezone.now()

    # Licensed, nothing reserved yet.
    assert _lookup(domain="fresh.example")[0]["status"] == "licensable"
    assert _lookup(url="https://fresh.example/story")[0]["status"] == "licensable"
    assert _tdmrep("fresh.example")[0]["location"] == "/story"
    assert _training_group(_robots("fresh.example")) == ["Disallow:"]

    made = client.post(
        "/api/v1/reservations/", {"kind": "domain", "value": "fresh.example"}, format="json"
    )
    assert made.status_code == 201, made.content
    rid = f"reservation:{made.json()['id']}"

    domain = _lookup(domain="fresh.example")[0]
    assert domain["status"] == "reserved" and domain["holder"] == rights_holder.organisation.code
    assert "the domain fresh.example" in domain["reason"]
    assert _lookup(url="https://fresh.example/story")[0]["status"] == "reserved"
    assert rid in {e["id"] for e in _lists("reservations")}
    assert {e["id"]: e["status"] for e in _lists("reservations", since=before.isoformat())} == {
        rid: "reserved"
    }
    assert _tdmrep("fresh.example") == [{"location": "/*", "tdm-reservation": 1}]
    assert _training_group(_robots("fresh.example")) == ["Disallow: /"]
    registry = APIClient().post(
        "/api/v1/registry/check",
        {"items": [{"scheme": "url", "identifier": "https://fresh.example/story"}]},
        format="json",
    )
    assert registry.json()["results"][0]["status"] == "reserved"

    withdrawn = client.delete(f"/api/v1/reservations/{made.json()['id']}/")
    assert withdrawn.status_code == 200, withdrawn.content

    assert _lookup(domain="fresh.example")[0]["status"] == "licensable"
    assert rid not in {e["id"] for e in _lists("reservations")}
    # It took effect after `before`, so a mirror synced then never had it: no tombstone.
    assert _lists("reservations", since=before.isoformat()) == []
    assert _tdmrep("fresh.example")[0]["location"] == "/story"
    assert _training_group(_robots("fresh.example")) == ["Disallow:"]


def test_a_work_reserved_by_its_holder_shows_in_every_output_at_once(rights_holder):
    _regime(ConsentRegime.OPT_IN)
    catalogue = catalogue_for(rights_holder)
    work = work_in(catalogue, rights_holder, "S1", url="https://site.example/poem")
    Work.objects.filter(pk=work.pk).update(created_at=LONG_AGO, updated_at=LONG_AGO)
    before = timezone.now()
    client = rights_holder.client()

    response = client.post(
        f"/api/v1/works/{work.pk}/consent/", {"consent": "reserved"}, format="json"
    )
    assert response.status_code == 200, response.content

    wid = f"work:{work.pk}"
    assert _lookup(url="https://site.example/poem")[0]["status"] == "reserved"
    assert {e["id"]: e["status"] for e in _lists("reservations")} == {wid: "reserved"}
    assert _lists("repertoire") == []
    changes = _lists("repertoire", since=before.isoformat())
    assert [(e["id"], e["status"]) for e in changes] == [(wid, "withdrawn")]
    assert _tdmrep("site.example") == [{"location": "/poem", "tdm-reservation": 1}]
    assert _training_group(_robots("site.example")) == ["Disallow: /poem$"]


# --- incremental lists -----------------------------------------------------------------------


def _age_everything():
    Work.objects.update(created_at=LONG_AGO, updated_at=LONG_AGO)
    Catalogue.objects.update(created_at=LONG_AGO, updated_at=LONG_AGO)
    Reservation.objects.update(created_at=LONG_AGO)
    Reservation.objects.filter(verified_at__isnull=False).update(verified_at=LONG_AGO)


def test_since_returns_exactly_the_changes(repertoire, rights_holder):
    _age_everything()
    assert _lists("reservations", since=timezone.now().isoformat()) == []
    assert _lists("repertoire", since=timezone.now().isoformat()) == []
    since = timezone.now()
    member = caller_of(rights_holder)
    news = repertoire["news"]

    n1 = Work.objects.get(work_ref="N1")
    n2 = Work.objects.get(work_ref="N2")
    Work.objects.filter(pk=n1.pk).update(consent_training="reserved", updated_at=timezone.now())
    Work.objects.filter(pk=n2.pk).update(
        consent_training="", consent_fine_tuning="", consent_rag="", updated_at=timezone.now()
    )
    old = Reservation.objects.get(value="blocked.example")
    Reservation.objects.filter(pk=old.pk).update(withdrawn_at=timezone.now())
    new = reservation_create(caller=member, kind="domain", value="new.example")
    brief = reservation_create(caller=member, kind="domain", value="brief.example")
    Reservation.objects.filter(pk=brief.pk).update(withdrawn_at=timezone.now())
    fresh = work_in(news, rights_holder, "N9", url="https://news.example/9")

    reservations = {e["id"]: e["status"] for e in _lists("reservations", since=since.isoformat())}
    assert reservations == {
        f"reservation:{old.pk}": "withdrawn",
        f"reservation:{new.pk}": "reserved",
        f"work:{n1.pk}": "reserved",
        f"work:{n2.pk}": "withdrawn",  # licensed for every use now
    }
    repertoire_changes = {
        e["id"]: (e["status"], e["uses"]) for e in _lists("repertoire", since=since.isoformat())
    }
    assert repertoire_changes == {
        f"work:{n1.pk}": ("licensed", ["fine_tuning", "rag"]),
        f"work:{n2.pk}": ("licensed", USES),
        f"work:{fresh.pk}": ("licensed", USES),
    }
    # A later `since` sees none of it.
    assert _lists("reservations", since=timezone.now().isoformat()) == []


def test_a_catalogue_default_change_lists_the_works_that_inherit_it(repertoire, co_holder):
    _age_everything()
    since = timezone.now()
    arts = repertoire["arts"]
    catalogue_update(caller=caller_of(co_holder), catalogue=arts, default_consent="licensed")

    changes = {e["id"]: (e["status"], e["uses"]) for e in _lists("repertoire", since=since)}
    a1, a2 = Work.objects.get(work_ref="A1"), Work.objects.get(work_ref="A2")
    assert changes == {f"work:{a1.pk}": ("licensed", USES), f"work:{a2.pk}": ("licensed", USES)}
    gone = {e["id"]: e["status"] for e in _lists("reservations", since=since.isoformat())}
    assert gone == {f"work:{a1.pk}": "withdrawn", f"work:{a2.pk}": "withdrawn"}


def test_the_snapshot_header_is_the_next_since(repertoire):
    response = _get("/api/v1/permissions/reservations.jsonl")
    snapshot = response["X-Blanket-Snapshot"]
    b"".join(response.streaming_content)
    assert dt.datetime.fromisoformat(snapshot.replace("Z", "+00:00")) <= timezone.now()
    assert _lists("reservations", since=snapshot) == []


@pytest.mark.parametrize(
    ("since", "same_as"),
    [
        # UTC offsets past 15:59 (ISO 8601 allows 23:59): PostgreSQL refused them with "time
        # zone displacement out of range" while the list streamed, after its 200 (found by
        # the API fuzz on PostgreSQL).
        ("2000-01-01T10:00:00+22:54", "1999-12-31T11:06:00Z"),
        ("2000-01-01T10:00:00-21:01", "2000-01-02T07:01:00Z"),
        # Before year 1 or after 9999 in UTC: no Python datetime (SQLite's adapter too).
        ("0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_since_with_any_utc_offset_is_the_same_moment_in_utc(repertoire, since, same_as):
    Work.objects.filter(work_ref="N4").update(consent_training="reserved")
    for name in ("reservations", "repertoire"):
        assert _lists(name, since=since) == _lists(name, since=same_as)
    if since.startswith("0001"):
        assert _lists("repertoire", since=since)  # every work changed since then


# --- look-ups --------------------------------------------------------------------------------


def test_url_lookup_answers_with_status_reason_and_holder(repertoire, rights_holder, co_holder):
    urls = [
        "https://NEWS.example/a/1",  # licensed work (normalised host)
        "https://news.example/a/2",  # reserved by its holder
        "https://news.example/private/3",  # licensed work under a reserved prefix
        "https://sub.blocked.example/page",  # a parent domain is reserved
        "https://poet.example/",  # reserved by a verified non-member
        "https://arts.example/x",  # inherits its catalogue's reserved default
        "https://nowhere.example/",  # unknown under opt-in
        "https://pending.example/",  # an unverified request does not count
        "https://rag-only.example/",  # reserved for RAG only
    ]
    results = APIClient().post("/api/v1/permissions/lookup", {"urls": urls}, format="json")
    assert results.status_code == 200, results.content
    body = results.json()
    got = [(r["status"], r["holder"]) for r in body["results"]]
    rh, co = rights_holder.organisation.code, co_holder.organisation.code
    assert got == [
        ("licensable", rh),
        ("reserved", rh),
        ("reserved", rh),
        ("reserved", rh),
        ("reserved", None),
        ("reserved", co),
        ("unknown", None),
        ("unknown", None),
        ("unknown", None),
    ]
    assert body["results"][0]["normalised"] == "https://news.example/a/1"
    assert "URL prefix https://news.example/private/" in body["results"][2]["reason"]
    assert "verified by email" in body["results"][4]["reason"]
    assert all(r["type"] == "url" and r["reason"] for r in body["results"])

    rag = APIClient().post(
        "/api/v1/permissions/lookup", {"urls": [urls[-1], urls[5]], "use": "rag"}, format="json"
    )
    assert [r["status"] for r in rag.json()["results"]] == ["reserved", "reserved"]

    _regime(ConsentRegime.OPT_OUT)
    assert _lookup(url="https://nowhere.example/")[0]["status"] == "licensable"


def test_domain_lookup_counts_the_works_on_the_domain(repertoire, rights_holder):
    results = {
        r["normalised"]: r
        for r in _lookup(domain=["news.example", "blocked.example", "nowhere.example"])
    }
    news = results["news.example"]
    assert news["status"] == "licensable" and news["holder"] == rights_holder.organisation.code
    on_news = WorkIdentifier.objects.filter(scheme="url", value__startswith="https://news.example/")
    assert on_news.count() == 3
    assert (news["works_licensed"], news["works_reserved"], news["url_prefixes_reserved"]) == (
        1,  # N3 is licensed but under the reserved prefix: the reservation wins
        1,
        1,
    )
    assert results["blocked.example"]["status"] == "reserved"
    assert results["nowhere.example"]["status"] == "unknown"
    www = _lookup(domain="https://WWW.Blocked.example/any")[0]
    assert www["normalised"] == "www.blocked.example" and www["status"] == "reserved"


# --- documents -------------------------------------------------------------------------------


def test_tdmrep_lists_reserved_paths_first_and_licensed_ones_with_the_policy(repertoire):
    rules = _tdmrep("news.example")
    policy = "http://127.0.0.1:8000/licence.rsl.xml"
    assert rules == [
        {"location": "/a/2", "tdm-reservation": 1},
        {"location": "/private/*", "tdm-reservation": 1},
        {"location": "/a/1", "tdm-reservation": 1, "tdm-policy": policy},
    ]
    assert _tdmrep("blocked.example") == [{"location": "/*", "tdm-reservation": 1}]
    assert _tdmrep("nowhere.example") == []
    _regime(ConsentRegime.OPT_OUT)
    assert _tdmrep("nowhere.example") == [
        {"location": "/*", "tdm-reservation": 1, "tdm-policy": policy}
    ]


def test_robots_snippet_has_the_ai_agents_the_reservations_and_the_licence(repertoire):
    robots = _robots("news.example")
    for agent in ("GPTBot", "ClaudeBot", "Google-Extended", "CCBot", "PerplexityBot"):
        assert f"User-agent: {agent}\n" in robots
    assert _training_group(robots) == ["Disallow: /a/2$", "Disallow: /private/"]
    assert "License: http://127.0.0.1:8000/licence.rsl.xml" in robots
    rag_only = _robots("rag-only.example")
    assert _training_group(rag_only) == ["Disallow:"]
    retrieval = rag_only.split("# AI search")[1].split("\n\n")[0]
    assert "Disallow: /" in retrieval.splitlines()


def test_rsl_document_describes_the_active_products():
    LicenceProduct.objects.create(
        code="ai-training",
        name="AI training",
        uses=["training", "fine_tuning"],
        currency="EUR",
        minimum_fee_minor=500_000,
        territory="GB,IE",
    )
    LicenceProduct.objects.create(code="retired", name="Retired", uses=["rag"], active=False)
    body = _get("/api/v1/permissions/rsl.xml").content
    assert _get("/licence.rsl.xml").content == body
    ns = {"rsl": "https://rslstandard.org/rsl"}
    root = ET.fromstring(body)
    assert root.tag == "{https://rslstandard.org/rsl}rsl"
    content = root.find("rsl:content", ns)
    assert content.get("url") == "/" and content.get("server").endswith("/api/v1/")
    licences = content.findall("rsl:license", ns)
    assert len(licences) == LicenceProduct.objects.filter(active=True).count() == 1
    licence = licences[0]
    assert licence.find("rsl:permits[@type='usage']", ns).text == "ai-train"
    assert licence.find("rsl:prohibits[@type='usage']", ns).text == "ai-input"
    assert licence.find("rsl:permits[@type='geo']", ns).text == "GB,IE"
    payment = licence.find("rsl:payment", ns)
    assert payment.find("rsl:standard", ns).text.endswith("/licences/products/")
    amount = payment.find("rsl:amount", ns)
    assert (amount.get("currency"), amount.text) == ("EUR", "5000.00")


@pytest.mark.parametrize("name", ["A---B", "Ends with a dash -", "-- -- --", "<x> & --->"])
def test_rsl_document_stays_well_formed_whatever_the_product_is_called(name):
    LicenceProduct.objects.create(code="p", name=name, uses=["training"], currency="EUR")
    body = _get("/api/v1/permissions/rsl.xml").content
    root = ET.fromstring(body)  # a `--` or a final `-` in a comment would not parse
    content = root.find("{https://rslstandard.org/rsl}content")
    assert len(content.findall("{https://rslstandard.org/rsl}license")) == 1


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/permissions/reservations.csv", {"since": "last tuesday"}, "since"),
        ("/api/v1/permissions/repertoire.jsonl", {"since": "2026-13-45"}, "since"),
        ("/api/v1/permissions/lookup", {"url": "not a url"}, "urls"),
        ("/api/v1/permissions/lookup", {"domain": "no_such domain"}, "domains"),
        ("/api/v1/permissions/lookup", {"url": "https://x.example/", "use": "eating"}, "use"),
        ("/api/v1/permissions/lookup", {}, "urls"),
        ("/api/v1/permissions/robots.txt", {}, "domain"),
        ("/api/v1/permissions/robots.txt", {"domain": "localhost"}, "domain"),
        ("/api/v1/permissions/tdmrep/not_a_domain.json", {}, "domain"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_the_reason(db, path, params, field):
    response = APIClient().get(path, params, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400, response.content
    error = json.loads(response.content)["error"]
    assert error["code"] == "invalid" and error["message"]
    assert field in error["details"]


def test_bad_items_are_listed_by_index_and_nothing_is_looked_up(db):
    response = APIClient().post(
        "/api/v1/permissions/lookup",
        {"urls": ["https://ok.example/", "ftp://files.example/", 7], "domains": ["ok.example"]},
        format="json",
    )
    assert response.status_code == 400
    details = response.json()["error"]["details"]
    assert set(details["urls"]) == {"1", "2"} and "domains" not in details
    too_many = APIClient().post(
        "/api/v1/permissions/lookup", {"domains": ["a.example"] * 1001}, format="json"
    )
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "too_many"
    not_a_list = APIClient().post("/api/v1/permissions/lookup", {"urls": "x"}, format="json")
    assert not_a_list.json()["error"]["details"] == {"urls": ["A list."]}


def test_the_robots_page_shows_the_snippet_and_explains_bad_input(repertoire, client):
    page = client.get("/permissions/robots/", {"domain": "news.example"})
    assert page.status_code == 200
    assert b"Disallow: /private/" in page.content and b"User-agent: GPTBot" in page.content
    bad = client.get("/permissions/robots/", {"domain": "not a domain"})
    assert bad.status_code == 400 and b"not a domain name" in bad.content


# --- public statistics -----------------------------------------------------------------------


@pytest.fixture
def money(licensee, operator, rights_holder, co_holder):
    """Licence payments and a refund in the ledger; payouts paid, reversed, failed, sent."""
    from licensing.services.licences import refund_record
    from royalties.models import (
        Allocation,
        Cycle,
        DistributionPolicy,
        Payout,
        PayoutRun,
        PayoutStatus,
        Statement,
    )
    from tests.royalties import cycles_support as cs

    first = cs.paid_licence(licensee, operator, amount=365_000)
    cs.paid_licence(licensee, operator, amount=120_000, code="ai-rag", uses=("rag",))
    refund_record(payment=first.payments.get(), stripe_refund_id="re_1", amount_minor=15_000)
    cs.policy(operator)
    policy = DistributionPolicy.objects.get()
    made = []
    for n, (holder, amount, status, reversed_) in enumerate(
        [
            (rights_holder, 70_000, PayoutStatus.PAID, 0),
            (co_holder, 2_000, PayoutStatus.PAID, 500),
            (rights_holder, 9_000, PayoutStatus.REVERSED, 9_000),
            (co_holder, 4_000, PayoutStatus.FAILED, 0),
            (rights_holder, 3_000, PayoutStatus.SENT, 0),
        ]
    ):
        cycle = Cycle.objects.create(
            period=f"2026-M{n}",
            period_start=dt.date(2026, 1, 1),
            period_end=dt.date(2026, 3, 31),
            policy=policy,
        )
        allocation = Allocation.objects.create(cycle=cycle, number=1, policy=policy, checksum="x")
        statement = Statement.objects.create(
            allocation=allocation, cycle=cycle, holder=holder.organisation, currency="EUR"
        )
        run = PayoutRun.objects.create(cycle=cycle, started_by=operator.user)
        made.append(
            Payout.objects.create(
                run=run,
                cycle=cycle,
                statement=statement,
                holder=holder.organisation,
                amount_minor=amount,
                currency="EUR",
                status=status,
                transfer_id=f"tr_{n}",
                amount_reversed_minor=reversed_,
            )
        )
    return made


def test_every_public_figure_equals_a_direct_query(repertoire, money):
    from licensing.models import Licence
    from royalties.models import Payout, Posting

    body = _get("/api/v1/public/stats/").json()
    works = Work.objects.select_related("catalogue")
    reserved = sum(1 for w in works if _effective(w, "training") == "reserved")
    assert body["works"] == Work.objects.count() == 6
    assert body["works_reserved"] == reserved == 3
    assert body["works_licensed"] == Work.objects.count() - reserved
    assert body["reserved_share_bp"] == reserved * 10_000 // Work.objects.count() == 5000
    assert body["reserved_share_percent"] == "50.00"
    assert body["reservations"] == 5
    assert body["catalogues"] == Catalogue.objects.count()
    assert body["rights_holders"] == Organisation.objects.filter(kind="rights_holder").count()
    assert body["licensees"] == Organisation.objects.filter(kind=OrganisationKind.LICENSEE).count()
    assert body["licensees_licensed"] == (
        Licence.objects.filter(status="active").values("licensee").distinct().count()
    )
    ledger = -Posting.objects.filter(
        account__code="deferred_revenue:EUR", entry__source_type__in=["payment", "refund"]
    ).aggregate(t=Sum("amount_minor"))["t"]
    paid = sum(
        p.amount_minor - p.amount_reversed_minor
        for p in Payout.objects.filter(status__in=["paid", "reversed"])
    )
    assert body["money"] == [{"currency": "EUR", "collected_minor": ledger, "paid_out_minor": paid}]
    assert ledger == 365_000 + 120_000 - 15_000  # to the minor unit
    assert paid == 70_000 + 1_500


def test_the_transparency_page_is_public_and_shows_the_same_figures(repertoire, money, client):
    page = client.get("/transparency/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-cache"
    html = page.content.decode()
    assert 'data-testid="works">6<' in html
    assert 'data-testid="reserved-share">50.00%<' in html
    assert "4,700.00 EUR" in html and "715.00 EUR" in html
    assert "vendor/chartjs/chart.umd.min.js" in html
    assert 'id="transparency-charts"' in html
