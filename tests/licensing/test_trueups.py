"""True-up: token declarations overrunning the volume tier a licence was priced at."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from config.errors import DomainError
from licensing.models import PaymentStatus, TrueUp, TrueUpStatus
from licensing.services import licences, products
from licensing.services.trueups import trueup_invoice_start
from royalties.integrations import stripe_client
from tests.licensing.declarations_support import ISBN_A, csv_file, declare, repertoire
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import balances, fee_of, trial_balance_is_zero

pytestmark = pytest.mark.django_db

VOLUME_TIERS = [
    {"name": "Small", "price_minor": 1_000_000, "volume_to": 1_000_000},
    {"name": "Medium", "price_minor": 2_500_000, "volume_from": 1_000_000, "volume_to": 10_000_000},
    {"name": "Large", "price_minor": 6_000_000, "volume_from": 10_000_000},
]


@pytest.fixture
def works(rights_holder):
    return repertoire(rights_holder)


@pytest.fixture
def licence(licensee, operator):
    """Priced at "Small" (500,000 tokens quoted): 10,000.00 EUR, paid, active from today."""
    product = products.product_create(
        caller=caller_of(operator),
        code="volume",
        name="Volume-priced training licence",
        uses=["training"],
        media_types=[],
        term_months=12,
        currency="EUR",
        minimum_fee_minor=0,
        tiers=VOLUME_TIERS,
    )
    quote = licences.quote_create(
        caller=caller_of(licensee),
        product=product,
        annual_revenue_minor=0,
        training_volume=500_000,
    )
    licence = licences.licence_from_quote(caller=caller_of(licensee), quote=quote)
    licences.payment_offline_record(
        caller=caller_of(operator), licence=licence, amount_minor=1_000_000, reference="BANK-1"
    )
    licence.refresh_from_db()
    assert (licence.quote.tier, licence.amount_minor) == ("Small", 1_000_000)
    return licence


def _period(licence, quarters_on: int = 0) -> str:
    month = licence.starts_on.month - 1 + 3 * quarters_on
    return f"{licence.starts_on.year + month // 12}-Q{month % 12 // 3 + 1}"


def _tokens(licensee, licence, quantity, *, model="aleph", quarters_on=0):
    upload = csv_file([("isbn", ISBN_A, quantity)])
    declaration = declare(
        licensee, licence, upload, model=model, period=_period(licence, quarters_on)
    )
    assert declaration.status == "accepted", declaration.message
    return declaration


def test_an_overrun_opens_one_trueup_for_the_difference(licensee, licence, works):
    _tokens(licensee, licence, 600_000)
    assert not TrueUp.objects.exists()  # 600,000 < 1,000,000: within "Small"

    second = _tokens(licensee, licence, 700_000, model="beth")  # 1,300,000: "Medium"
    trueup = TrueUp.objects.get()
    assert (trueup.tier_paid, trueup.tier_due, trueup.declared_volume) == (
        "Small",
        "Medium",
        1_300_000,
    )
    # 25,000.00 at "Medium" less 10,000.00 paid = 15,000.00
    assert (trueup.price_paid_minor, trueup.price_due_minor, trueup.amount_due_minor) == (
        1_000_000,
        2_500_000,
        1_500_000,
    )
    assert trueup.status == TrueUpStatus.OPEN and trueup.declaration == second
    assert (trueup.quote.amount_minor, trueup.quote.tier, trueup.quote.training_volume) == (
        1_500_000,
        "Medium",
        1_300_000,
    )
    assert AuditEvent.objects.filter(action="trueup.create").count() == 1

    # A correction of the same model and period (superseding) stays in "Medium": no second one.
    _tokens(licensee, licence, 800_000, model="beth")
    assert TrueUp.objects.count() == 1

    # Into "Large": 60,000.00 less 10,000.00 and the 15,000.00 true-up = 35,000.00.
    _tokens(licensee, licence, 9_000_000, quarters_on=1)
    latest = TrueUp.objects.get(tier_due="Large")
    assert (latest.tier_paid, latest.declared_volume) == ("Medium", 10_400_000)
    assert (latest.price_paid_minor, latest.amount_due_minor) == (2_500_000, 3_500_000)
    assert TrueUp.objects.count() == 2


def test_other_units_and_licences_without_volume_tiers_owe_nothing(licensee, licence, works):
    declare(
        licensee,
        licence,
        csv_file([("isbn", ISBN_A, 5_000_000)]),
        unit="items",
        period=_period(licence),
    )
    assert not TrueUp.objects.exists()


def test_the_licensee_invoices_a_trueup_and_paying_it_closes_it(
    licensee, outsider, licence, works, monkeypatch
):
    _tokens(licensee, licence, 1_200_000)
    trueup = TrueUp.objects.get()
    sent = []

    def fake_invoice(**kwargs):
        sent.append(kwargs)
        return {"id": "in_trueup", "hosted_invoice_url": "https://pay.example/in_trueup"}

    monkeypatch.setattr(stripe_client, "invoice_create_and_send", fake_invoice)
    with pytest.raises(DomainError):
        trueup_invoice_start(caller=caller_of(outsider), trueup=trueup)
    payment = trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)
    again = trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)
    assert again.pk == payment.pk and len(sent) == 1  # the invoice is sent once
    assert (payment.amount_minor, payment.invoice_id, payment.licence_id) == (
        1_500_000,
        "in_trueup",
        licence.pk,
    )
    assert sent[0]["amount_minor"] == 1_500_000
    assert sent[0]["idempotency_key"] == f"payment:{payment.pk}:trueup"
    assert sent[0]["metadata"]["trueup_id"] == str(trueup.pk)
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.INVOICED

    licences.payment_succeeded(
        payment=payment, amount_minor=1_500_000, fee_minor=0, net_minor=1_500_000, via="bank"
    )
    trueup.refresh_from_db()
    payment.refresh_from_db()
    licence.refresh_from_db()
    assert trueup.status == TrueUpStatus.PAID and payment.status == PaymentStatus.SUCCEEDED
    assert licence.status == "active"
    assert not AuditEvent.objects.filter(action="payment.duplicate").exists()
    with pytest.raises(DomainError):
        trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)


def test_trueups_show_to_the_licensee_and_staff_and_404_to_others(
    licensee, outsider, operator, licence, works, monkeypatch
):
    declaration = _tokens(licensee, licence, 1_200_000)
    trueup = TrueUp.objects.get()
    client = licensee.client()
    for url in (f"/licences/{licence.pk}/", f"/declarations/{declaration.pk}/"):
        page = client.get(url).content.decode()
        assert 'id="trueups"' in page and "Small → Medium" in page, url
    assert 'id="trueups"' in operator.client().get(f"/licences/{licence.pk}/").content.decode()
    api = f"/api/v1/trueups/{trueup.pk}/"
    body = client.get(api).json()
    assert (body["amount_due_minor"], body["tier_due"], body["status"]) == (
        1_500_000,
        "Medium",
        "open",
    )
    assert operator.client().get(api).status_code == 200
    other = outsider.client()
    assert other.get(api).status_code == 404
    assert other.get("/api/v1/trueups/").json()["results"] == []
    assert other.post(f"{api}invoice/").status_code == 404
    assert other.post(f"/trueups/{trueup.pk}/invoice/").status_code == 404

    monkeypatch.setattr(
        stripe_client,
        "invoice_create_and_send",
        lambda **kw: {"id": "in_api", "hosted_invoice_url": "https://pay.example/in_api"},
    )
    response = client.post(f"{api}invoice/")
    assert response.status_code == 200, response.content
    assert (response.json()["amount_minor"], response.json()["invoice_id"]) == (1_500_000, "in_api")
    assert client.get(api).json()["invoice_url"] == "https://pay.example/in_api"
    assert client.post(f"/trueups/{trueup.pk}/invoice/").status_code == 302


def test_a_trueup_invoice_paid_through_the_local_stripe_is_booked_and_closed(
    licensee, licence, works, stripe_control, deliver
):
    _tokens(licensee, licence, 1_200_000)
    trueup = TrueUp.objects.get()
    before = balances()
    payment = trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)
    assert payment.invoice_url.endswith(f"/invoice/{payment.invoice_id}")
    assert stripe_control.invoice_pay(payment.invoice_id)["status"] == "succeeded"
    deliver(duplicate=True)

    trueup.refresh_from_db()
    payment.refresh_from_db()
    licence.refresh_from_db()
    fee = fee_of(1_500_000)  # 22,500 + 25
    assert (trueup.status, payment.status, payment.fee_minor) == ("paid", "succeeded", fee)
    assert licence.status == "active"
    after = balances()
    assert after["deferred_revenue"] - before["deferred_revenue"] == -1_500_000
    assert after["cash:stripe"] - before.get("cash:stripe", 0) == 1_500_000 - fee
    assert trial_balance_is_zero()
    assert not AuditEvent.objects.filter(action="payment.duplicate").exists()


def test_staff_waive_an_open_trueup_and_the_next_overrun_ignores_it(
    licensee, operator, licence, works
):
    _tokens(licensee, licence, 1_200_000)
    trueup = TrueUp.objects.get()
    url = f"/api/v1/trueups/{trueup.pk}/waive/"
    assert licensee.client().post(url, {"reason": "x"}, format="json").status_code == 403
    assert operator.client().post(url, {}, format="json").status_code == 400
    response = operator.client().post(url, {"reason": "Goodwill"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "waived"
    assert AuditEvent.objects.filter(action="trueup.waive").exists()
    # Into "Large" (10,200,000 tokens): 60,000.00 less the 10,000.00 paid; the waiver is not.
    _tokens(licensee, licence, 9_000_000, quarters_on=1)
    latest = TrueUp.objects.get(tier_due="Large")
    assert (latest.tier_paid, latest.amount_due_minor) == ("Small", 5_000_000)


def test_refunding_a_trueup_in_full_leaves_the_licence_active(
    licensee, licence, works, monkeypatch
):
    _tokens(licensee, licence, 1_200_000)
    monkeypatch.setattr(
        stripe_client,
        "invoice_create_and_send",
        lambda **kw: {"id": "in_r", "hosted_invoice_url": ""},
    )
    payment = trueup_invoice_start(caller=caller_of(licensee), trueup=TrueUp.objects.get())
    licences.payment_succeeded(
        payment=payment, amount_minor=1_500_000, fee_minor=0, net_minor=1_500_000, via="bank"
    )
    licences.refund_record(payment=payment, stripe_refund_id="re_trueup", amount_minor=1_500_000)
    licence.refresh_from_db()
    payment.refresh_from_db()
    assert (payment.status, licence.status) == (PaymentStatus.REFUNDED, "active")
