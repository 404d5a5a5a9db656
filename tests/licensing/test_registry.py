"""Registry check results under both consent regimes."""

import pytest
from rest_framework.test import APIClient

from licensing.models import ConsentRegime, Reservation, SocietySettings
from licensing.services.reservations import reservation_create
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db

LICENSED_ISBN = "9780439023481"
RESERVED_ISBN = "9780306406157"
UNKNOWN_ISBN = "9781861972712"


@pytest.fixture
def repertoire(rights_holder):
    catalogue = catalogue_for(rights_holder)
    work_in(catalogue, rights_holder, "L", isbn=LICENSED_ISBN)
    work_in(catalogue, rights_holder, "R", isbn=RESERVED_ISBN, consent="reserved")
    reservation_create(caller=caller_of(rights_holder), kind="domain", value="press.example")
    reservation_create(
        caller=caller_of(rights_holder), kind="url_prefix", value="https://blog.example/private/"
    )
    return catalogue


def _check(items, use="training"):
    response = APIClient().post(
        "/api/v1/registry/check", {"items": items, "use": use}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def _regime(value):
    SocietySettings.objects.update_or_create(pk=1, defaults={"consent_regime": value})


ITEMS = [
    {"scheme": "isbn", "identifier": "0-439-02348-3"},  # ISBN-10 of LICENSED_ISBN
    {"scheme": "isbn", "identifier": RESERVED_ISBN},
    {"scheme": "isbn", "identifier": UNKNOWN_ISBN},
    {"scheme": "url", "identifier": "https://www.PRESS.example/books/1"},
    {"scheme": "url", "identifier": "https://blog.example/private/post"},
    {"scheme": "url", "identifier": "https://blog.example/public/post"},
    {"scheme": "isbn", "identifier": "9.78043902348e+12"},
    {"scheme": "ean", "identifier": "123"},
]


def test_under_opt_in_only_enrolled_licensed_works_are_licensed(repertoire):
    _regime(ConsentRegime.OPT_IN)
    body = _check(ITEMS)
    assert body["consent_regime"] == "opt_in"
    assert [r["status"] for r in body["results"]] == [
        "licensed",
        "reserved",
        "unknown",
        "reserved",
        "reserved",
        "unknown",
        "invalid",
        "invalid",
    ]
    first = body["results"][0]
    assert first["normalised"] == LICENSED_ISBN and first["registered"] is True
    assert "spreadsheet" in body["results"][6]["reason"]


def test_under_opt_out_everything_not_reserved_is_licensed(repertoire):
    _regime(ConsentRegime.OPT_OUT)
    statuses = [r["status"] for r in _check(ITEMS)["results"]]
    assert statuses == [
        "licensed",
        "reserved",
        "licensed",
        "reserved",
        "reserved",
        "licensed",
        "invalid",
        "invalid",
    ]
    assert _check(ITEMS)["results"][2]["registered"] is False


def test_reservations_for_other_uses_do_not_reserve_training(rights_holder, repertoire):
    reservation_create(
        caller=caller_of(rights_holder),
        kind="identifier",
        scheme="isbn",
        value=UNKNOWN_ISBN,
        uses=["rag"],
    )
    _regime(ConsentRegime.OPT_OUT)
    assert (
        _check([{"scheme": "isbn", "identifier": UNKNOWN_ISBN}])["results"][0]["status"]
        == "licensed"
    )
    assert (
        _check([{"scheme": "isbn", "identifier": UNKNOWN_ISBN}], use="rag")["results"][0]["status"]
        == "reserved"
    )


def test_unverified_non_member_reservations_do_not_count_until_confirmed(
    repertoire, mailoutbox, django_capture_on_commit_callbacks
):
    _regime(ConsentRegime.OPT_OUT)
    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            "/api/v1/registry/reservations/request",
            {
                "kind": "identifier",
                "scheme": "isbn",
                "value": UNKNOWN_ISBN,
                "email": "author@example.test",
            },
            format="json",
        )
    assert response.status_code == 202
    item = [{"scheme": "isbn", "identifier": UNKNOWN_ISBN}]
    assert _check(item)["results"][0]["status"] == "licensed"
    from licensing.services.reservations import reservation_verify

    token = mailoutbox[0].body.split("/reservations/verify/")[1].split("/")[0]
    reservation_verify(token=token)
    assert _check(item)["results"][0]["status"] == "reserved"
    assert Reservation.objects.get(email="author@example.test").verified_at is not None


def test_the_check_refuses_more_than_10000_items_and_malformed_bodies(db):
    client = APIClient()
    too_many = [{"scheme": "isbn", "identifier": LICENSED_ISBN}] * 10_001
    response = client.post("/api/v1/registry/check", {"items": too_many}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many"
    for body in (
        {},
        {"items": []},
        {"items": "x"},
        {"items": [1, 2]},
        {"items": [{"scheme": "isbn", "identifier": "1"}], "use": "eating"},
    ):
        response = client.post("/api/v1/registry/check", body, format="json")
        assert response.status_code == 400, body


def test_reservation_feed_lists_reservations_and_reserved_works(repertoire, client):
    response = client.get("/api/v1/registry/reservations.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    lines = text.strip().splitlines()
    assert lines[0] == "kind,scheme,value,uses,source,since"
    assert any(line.startswith("domain,,press.example,all,reservation") for line in lines)
    assert any(f"identifier,isbn,{RESERVED_ISBN},training,work" in line for line in lines)
    assert not any(LICENSED_ISBN in line for line in lines)


def test_only_staff_switch_the_consent_regime(rights_holder, operator, client):
    assert client.get("/api/v1/society/settings/").json()["consent_regime"] == "opt_in"
    refused = rights_holder.client().patch(
        "/api/v1/society/settings/", {"consent_regime": "opt_out"}, format="json"
    )
    assert refused.status_code == 403
    done = operator.client().patch(
        "/api/v1/society/settings/", {"consent_regime": "opt_out"}, format="json"
    )
    assert done.status_code == 200 and done.json()["consent_regime"] == "opt_out"
    from accounts.models import AuditEvent

    assert AuditEvent.objects.get(action="society.consent_regime").details == {
        "from": "opt_in",
        "to": "opt_out",
    }


def test_small_checks_normalise_value_by_value_with_the_same_results(repertoire, monkeypatch):
    """Under VECTORISE_FROM identifiers of a scheme, values are normalised one by one (and plain
    ISBN-13s by a short cut); the answers are those of the vectorised path."""
    from licensing.services import registry

    items = [
        *ITEMS,
        {"scheme": "ISBN ", "identifier": f" {LICENSED_ISBN} "},
        {"scheme": "isbn", "identifier": "9780439023480"},  # wrong check digit
        {"scheme": "isbn", "identifier": "9770439023482"},  # 977: not an ISBN
        {"scheme": "isbn", "identifier": "978-0-306-40615-7"},
        {"scheme": "isbn", "identifier": "97804390234８1"},  # a full-width digit
        {"scheme": "isbn", "identifier": ""},
        {"identifier": UNKNOWN_ISBN},
        {"scheme": "doi", "identifier": "https://doi.org/10.1000/ABC"},
    ]
    for regime in (ConsentRegime.OPT_IN, ConsentRegime.OPT_OUT):
        _regime(regime)
        small = [r.as_dict() for r in registry.registry_check(pairs=items)]
        monkeypatch.setattr(registry, "VECTORISE_FROM", 1)
        vectorised = [r.as_dict() for r in registry.registry_check(pairs=items)]
        monkeypatch.undo()
        assert small == vectorised
        assert _check(items)["results"] == small
    assert small[8]["status"] == "licensed" and small[8]["normalised"] == LICENSED_ISBN
    assert small[9]["reason"] == "ISBN check digit is wrong"
