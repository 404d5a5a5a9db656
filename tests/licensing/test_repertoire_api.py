"""The repertoire API: every object endpoint answers 404 to another organisation."""

import pytest

from licensing.models import Conflict, Work
from licensing.services.reservations import reservation_create
from tests.licensing.factories import caller_of, catalogue_for, work_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def owned(rights_holder, co_holder):
    catalogue = catalogue_for(rights_holder)
    work = work_in(catalogue, rights_holder, "A", isbn="9780439023481")
    work_in(catalogue_for(co_holder), co_holder, "B", isbn="9780439023481")  # a conflict
    reservation = reservation_create(
        caller=caller_of(rights_holder), kind="domain", value="press.example"
    )
    return {
        "catalogue": catalogue,
        "work": work,
        "conflict": Conflict.objects.get(),
        "reservation": reservation,
    }


def _calls(o):
    c, w, k, r = o["catalogue"].pk, o["work"].pk, o["conflict"].pk, o["reservation"].pk
    return [
        ("get", f"/api/v1/catalogues/{c}/", None),
        ("patch", f"/api/v1/catalogues/{c}/", {"name": "mine now"}),
        ("delete", f"/api/v1/catalogues/{c}/", None),
        ("get", f"/api/v1/works/{w}/", None),
        ("put", f"/api/v1/works/{w}/shares/", {"shares": [{"share": "1"}]}),
        ("post", f"/api/v1/works/{w}/consent/", {"consent": "reserved"}),
        ("get", f"/api/v1/works/?catalogue={c}", None),
        ("post", "/api/v1/works/consent/", {"catalogue": c, "consent": "reserved"}),
        (
            "post",
            "/api/v1/works/",
            {
                "catalogue": c,
                "work_ref": "X",
                "title": "X",
                "identifiers": [{"scheme": "isbn", "value": "9780306406157"}],
            },
        ),
        ("get", f"/api/v1/conflicts/{k}/", None),
        ("post", f"/api/v1/conflicts/{k}/resolve/", {"resolution": "x"}),
        ("get", f"/api/v1/reservations/{r}/", None),
        ("delete", f"/api/v1/reservations/{r}/", None),
    ]


def test_outsider_gets_404_on_every_repertoire_endpoint_and_changes_nothing(owned, outsider):
    client = outsider.client()
    for method, url, body in _calls(owned):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    work = Work.objects.get(pk=owned["work"].pk)
    assert work.consent_training == "" and work.shares.get().share_ppm == 1_000_000
    assert owned["catalogue"].__class__.objects.get(pk=owned["catalogue"].pk).name == "Backlist"
    owned["reservation"].refresh_from_db()
    assert owned["reservation"].withdrawn_at is None


def test_outsider_api_key_gets_404_too(owned, outsider, api_client_for):
    client = api_client_for(outsider.organisation)
    for method, url, body in _calls(owned):
        assert getattr(client, method)(url, body, format="json").status_code == 404, url


def test_outsider_lists_are_empty(owned, outsider):
    client = outsider.client()
    for url in (
        "/api/v1/catalogues/",
        "/api/v1/works/",
        "/api/v1/conflicts/",
        "/api/v1/reservations/",
    ):
        assert client.get(url).json()["count"] == 0, url


def test_owner_filters_works_by_normalised_identifier_title_consent_and_dispute(
    owned, rights_holder
):
    client = rights_holder.client()
    found = client.get("/api/v1/works/?identifier=isbn:0-439-02348-3").json()
    assert [w["work_ref"] for w in found["results"]] == ["A"]
    assert found["results"][0]["identifiers"] == [{"scheme": "isbn", "value": "9780439023481"}]
    assert client.get("/api/v1/works/?search=work a").json()["count"] == 1
    assert client.get("/api/v1/works/?disputed=true").json()["count"] == 1
    assert client.get("/api/v1/works/?consent=reserved").json()["count"] == 0
    client.post(
        f"/api/v1/works/{owned['work'].pk}/consent/",
        {"consent": "reserved", "uses": ["training"]},
        format="json",
    )
    assert client.get("/api/v1/works/?consent=reserved").json()["count"] == 1
    assert client.get("/api/v1/works/?consent=reserved&use=rag").json()["count"] == 0


def test_owner_creates_a_work_over_the_api_with_errors_per_field(owned, rights_holder):
    client = rights_holder.client()
    bad = client.post(
        "/api/v1/works/",
        {
            "catalogue": owned["catalogue"].pk,
            "work_ref": "X",
            "title": "X",
            "identifiers": [{"scheme": "isbn", "value": "9780439023482"}],
        },
        format="json",
    )
    assert bad.status_code == 400
    assert "check digit" in str(bad.json()["error"]["details"])
    good = client.post(
        "/api/v1/works/",
        {
            "catalogue": owned["catalogue"].pk,
            "work_ref": "X",
            "title": "X",
            "identifiers": [{"scheme": "doi", "value": "doi:10.1000/XYZ"}],
            "shares": [{"share": "33.3333"}],
        },
        format="json",
    )
    assert good.status_code == 201, good.json()
    assert good.json()["shares"][0]["share"] == "33.3333"


def test_a_viewer_cannot_change_consent(owned, rights_holder):
    from rest_framework.test import APIClient

    from accounts.models import Role, User
    from accounts.services import membership_add

    viewer = User.objects.create_user(email="v@example.test", password="x" * 12)
    membership_add(organisation=rights_holder.organisation, user=viewer, role=Role.VIEWER)
    client = APIClient()
    client.force_login(viewer)
    response = client.post(
        f"/api/v1/works/{owned['work'].pk}/consent/", {"consent": "reserved"}, format="json"
    )
    assert response.status_code == 403
