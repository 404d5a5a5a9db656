"""Licence pages: the quote calculator, paying, certificates, the staff ledger; other
organisations get 404."""

from __future__ import annotations

import json

import pytest

from licensing.models import Licence, LicenceStatus
from licensing.services import licences
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import licence_for, quote_for


def _active_licence(licensee, operator, product):
    licence = licence_for(licensee, product)
    licences.payment_offline_record(
        caller=caller_of(operator),
        licence=licence,
        amount_minor=licence.amount_minor,
        reference="SEPA 7",
    )
    licence.refresh_from_db()
    return licence


def test_quote_calculator_shows_price_and_breakdown(licensee, product):
    client = licensee.client()
    assert "Get a quote" in client.get("/licences/quote/").content.decode()
    response = client.post(
        "/licences/quote/",
        {
            "product": "ai-training",
            "annual_revenue": "5000000.00",
            "training_volume": "10",
            "ai_revenue": "1234567.89",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "30,864.20 EUR" in page
    assert "tier: Scale-up" in page
    htmx = client.post(
        "/licences/quote/",
        {"product": "ai-training", "annual_revenue": "1", "training_volume": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert "7,500.00 EUR" in htmx.content.decode()
    assert "<html" not in htmx.content.decode()


def test_accepting_a_quote_then_paying_by_card_redirects_to_stripe(
    licensee, product, stripe_control
):
    client = licensee.client()
    quote = quote_for(licensee, product)
    response = client.post(f"/licences/quotes/{quote.pk}/accept/")
    licence = Licence.objects.get(quote=quote)
    assert response.url == f"/licences/{licence.pk}/"
    assert "Pay by card" in client.get(response.url).content.decode()
    pay = client.post(f"/licences/{licence.pk}/pay/card/")
    assert pay.status_code == 302
    assert pay.url.startswith(stripe_control.base_url + "/pay/")


def test_return_from_checkout_activates_even_before_the_webhook(licensee, product, stripe_control):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    page = licensee.client().get(
        f"/licences/{licence.pk}/paid/?session_id={payment.checkout_session_id}"
    )
    assert "your licence is active" in page.content.decode()
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


def test_pay_by_invoice_shows_the_invoice_link(licensee, product, stripe_control):
    licence = licence_for(licensee, product)
    client = licensee.client()
    response = client.post(f"/licences/{licence.pk}/pay/invoice/", follow=True)
    assert "Invoice sent" in response.content.decode()
    assert "/invoice/in_" in response.content.decode()


def test_certificate_downloads_json_and_pdf(licensee, operator, product):
    licence = _active_licence(licensee, operator, product)
    client = licensee.client()
    document = json.loads(client.get(f"/licences/{licence.pk}/certificate.json").content)
    assert document["certificate"]["serial"] == licence.certificate.serial
    pdf = client.get(f"/licences/{licence.pk}/certificate.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_staff_record_offline_payment_and_read_the_ledger(licensee, operator, product):
    licence = licence_for(licensee, product)
    client = operator.client()
    response = client.post(
        f"/licences/{licence.pk}/offline-payment/",
        {"amount": "7500.00", "reference": "SEPA 9"},
        follow=True,
    )
    assert "Offline payment recorded" in response.content.decode()
    ledger = client.get("/ledger/").content.decode()
    assert "cash:bank:EUR" in ledger
    assert "7,500.00 EUR" in ledger and "-7,500.00 EUR" in ledger
    entry = licence.payments.get().pk
    from royalties.models import JournalEntry

    detail = client.get(f"/ledger/entries/{JournalEntry.objects.get().pk}/").content.decode()
    assert f"payment:{entry}:received" in detail
    assert f"/licences/{licence.pk}/" in detail
    assert licensee.client().get("/ledger/").status_code == 403


def test_staff_create_a_product_with_tiers(operator):
    response = operator.client().post(
        "/licences/products/",
        {
            "code": "rag-eu",
            "name": "RAG (EU)",
            "uses": ["rag"],
            "territory": "EU",
            "term_months": "12",
            "currency": "EUR",
            "minimum_fee": "1000.00",
            "tiers": "Small | 2000 | 0 | 1000000\nLarge | 9000.50 | 1000000 |",
        },
        follow=True,
    )
    page = response.content.decode()
    assert "Product RAG (EU) created" in page
    assert "9,000.50 EUR" in page


@pytest.mark.parametrize("persona", ["outsider", "rights_holder"])
def test_other_organisations_get_404_on_licence_pages(
    request, persona, licensee, operator, product
):
    licence = _active_licence(licensee, operator, product)
    quote = quote_for(licensee, product)
    client = request.getfixturevalue(persona).client()
    for url in (
        f"/licences/{licence.pk}/",
        f"/licences/{licence.pk}/certificate.json",
        f"/licences/{licence.pk}/certificate.pdf",
        f"/licences/{licence.pk}/paid/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/licences/{licence.pk}/pay/card/").status_code == 404
    assert client.post(f"/licences/quotes/{quote.pk}/accept/").status_code == 404
    listing = client.get("/licences/").content.decode()
    assert f'href="/licences/{licence.pk}/"' not in listing
    assert "No licences yet." in listing


def test_staff_refund_from_the_licence_page(licensee, operator, product, stripe_control, deliver):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    deliver()
    client = operator.client()
    assert "Refund" in client.get(f"/licences/{licence.pk}/").content.decode()
    response = client.post(f"/payments/{payment.pk}/refund/", {"amount": "7500.00"}, follow=True)
    page = response.content.decode()
    assert "Refund made through Stripe" in page
    assert "Cancelled" in page
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.CANCELLED
    assert (
        licensee.client().post(f"/payments/{payment.pk}/refund/", {"amount": "1"}).status_code
        == 403
    )


def test_staff_edit_a_tariff_and_licensees_cannot(operator, licensee, product):
    client = operator.client()
    form = client.get(f"/licences/products/{product.pk}/edit/").content.decode()
    assert "Scale-up | 25000.00 | 1000000.00 | 10000000.00" in form
    response = client.post(
        f"/licences/products/{product.pk}/edit/",
        {
            "name": "AI training licence",
            "uses": ["training"],
            "territory": "WORLD",
            "term_months": "12",
            "currency": "EUR",
            "minimum_fee": "7500.00",
            "ai_revenue_share_bp": "300",
            "tiers": "Flat | 12000 | 0 |",
        },
        follow=True,
    )
    assert "tiers replaced" in response.content.decode()
    product.refresh_from_db()
    assert (product.ai_revenue_share_bp, product.code) == (300, "ai-training")
    assert list(product.tiers.values_list("name", "price_minor")) == [("Flat", 1_200_000)]
    assert licensee.client().get(f"/licences/products/{product.pk}/edit/").status_code == 403
