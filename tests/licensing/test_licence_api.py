"""The licence API: products, quotes, licences, checkout, offline payments, certificates; every
object hidden from other organisations."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from licensing.models import LicenceStatus
from licensing.services import licences
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import licence_for, quote_for


def test_products_are_listed_for_everyone_logged_in(licensee, product):
    response = licensee.client().get("/api/v1/products/")
    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert (item["code"], item["minimum_fee_minor"]) == ("ai-training", 750_000)
    assert [t["name"] for t in item["tiers"]] == ["Start-up", "Scale-up", "Enterprise"]
    assert APIClient().get("/api/v1/products/").status_code in (401, 403)


def test_staff_create_and_update_products_licensees_cannot(operator, licensee):
    body = {
        "code": "rag-eu",
        "name": "RAG licence (EU)",
        "uses": ["rag"],
        "currency": "eur",
        "territory": "EU",
        "minimum_fee_minor": 100_000,
        "tiers": [{"name": "Flat", "price_minor": 200_000}],
    }
    assert licensee.client().post("/api/v1/products/", body, format="json").status_code == 403
    created = operator.client().post("/api/v1/products/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["currency"] == "EUR"
    updated = operator.client().patch(
        f"/api/v1/products/{created.json()['id']}/",
        {"tiers": [{"name": "Flat", "price_minor": 300_000}]},
        format="json",
    )
    assert updated.json()["tiers"][0]["price_minor"] == 300_000


def test_quote_then_licence_then_checkout(licensee, product, stripe_control):
    client = licensee.client()
    quote = client.post(
        "/api/v1/quotes/",
        {
            "product": "ai-training",
            "annual_revenue_minor": 500_000_000,
            "training_volume": 10,
            "ai_revenue_minor": 123_456_789,
        },
        format="json",
    )
    assert quote.status_code == 201, quote.json()
    assert quote.json()["amount_minor"] == 3_086_420
    assert quote.json()["breakdown"][-1]["amount_minor"] == 3_086_420
    assert quote.json()["valid_until"]

    licence = client.post("/api/v1/licences/", {"quote": quote.json()["id"]}, format="json")
    assert licence.status_code == 201
    assert licence.json()["status"] == "quoted"
    checkout = client.post(f"/api/v1/licences/{licence.json()['id']}/checkout/")
    assert checkout.status_code == 200, checkout.json()
    assert checkout.json()["checkout_url"].startswith(stripe_control.base_url)
    detail = client.get(f"/api/v1/licences/{licence.json()['id']}/")
    assert detail.json()["status"] == "pending_payment"


def test_invoice_endpoint_sends_a_stripe_invoice(licensee, product, stripe_control):
    licence = licence_for(licensee, product)
    response = licensee.client().post(f"/api/v1/licences/{licence.pk}/invoice/")
    assert response.status_code == 200
    assert response.json()["invoice_url"].endswith(
        "/invoice/" + response.json()["invoice_url"].rsplit("/", 1)[1]
    )
    assert response.json()["method"] == "invoice"


def test_offline_payment_is_staff_only_and_activates(licensee, operator, product):
    licence = licence_for(licensee, product)
    url = f"/api/v1/licences/{licence.pk}/offline-payments/"
    body = {"amount_minor": 750_000, "reference": "SEPA 2026-11-25"}
    assert licensee.client().post(url, body, format="json").status_code == 403
    response = operator.client().post(url, body, format="json")
    assert response.status_code == 201, response.json()
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


def test_certificate_download_verify_and_public_key(licensee, operator, product):
    licence = licence_for(licensee, product)
    licences.payment_offline_record(
        caller=caller_of(operator), licence=licence, amount_minor=750_000, reference="r"
    )
    document = licensee.client().get(f"/api/v1/licences/{licence.pk}/certificate").json()
    public = APIClient()
    verdict = public.post("/api/v1/certificates/verify", document, format="json")
    assert verdict.status_code == 200
    assert verdict.json()["status"] == "valid"
    document["certificate"]["term"]["ends_on"] = "2099-01-01"
    assert (
        public.post("/api/v1/certificates/verify", document, format="json").json()["status"]
        == "invalid"
    )
    key = public.get("/.well-known/blanket-licence-key").json()
    assert key["algorithm"] == "Ed25519"
    assert key["key_id"] == document["key_id"]


@pytest.mark.parametrize("persona", ["outsider", "rights_holder"])
def test_other_organisations_get_404_on_licences_quotes_payments_certificates(
    request, persona, licensee, operator, product
):
    quote = quote_for(licensee, product)
    licence = licences.licence_from_quote(caller=caller_of(licensee), quote=quote)
    payment = licences.payment_offline_record(
        caller=caller_of(operator), licence=licence, amount_minor=750_000, reference="r"
    )
    client = request.getfixturevalue(persona).client()
    for url in (
        f"/api/v1/quotes/{quote.pk}/",
        f"/api/v1/licences/{licence.pk}/",
        f"/api/v1/licences/{licence.pk}/certificate",
        f"/api/v1/payments/{payment.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/api/v1/licences/{licence.pk}/checkout/").status_code == 404
    assert client.post("/api/v1/licences/", {"quote": quote.pk}, format="json").status_code == 404
    for url in ("/api/v1/quotes/", "/api/v1/licences/", "/api/v1/payments/"):
        assert client.get(url).json()["results"] == [], url


def test_api_key_of_the_licensee_sees_its_licence(licensee, product, api_client_for):
    licence = licence_for(licensee, product)
    client = api_client_for(licensee.organisation)
    assert client.get(f"/api/v1/licences/{licence.pk}/").json()["id"] == licence.pk


def test_staff_refund_through_the_api(licensee, operator, product, stripe_control, deliver):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    deliver()
    url = f"/api/v1/payments/{payment.pk}/refunds/"
    assert licensee.client().post(url, {"amount_minor": 100}, format="json").status_code == 403
    response = operator.client().post(url, {"amount_minor": 100}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["refunded_minor"] == 100


def test_product_with_unknown_use_or_media_type_is_refused(operator):
    client = operator.client()
    for field, value in (("uses", ["mining"]), ("media_types", ["hologram"])):
        response = client.post(
            "/api/v1/products/", {"code": "x", "name": "X", field: value}, format="json"
        )
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]
