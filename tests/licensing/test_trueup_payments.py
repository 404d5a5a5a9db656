"""Paying a true-up by card (Stripe Checkout) as well as by invoice, through the real Stripe SDK
against the local Stripe server, and withdrawing an unpaid true-up a correction no longer
reaches."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from config.errors import DomainError
from licensing.models import (
    Payment,
    PaymentMethod,
    PaymentStatus,
    StripeEvent,
    TrueUp,
    TrueUpStatus,
)
from licensing.services.trueups import trueup_checkout_start, trueup_invoice_start
from royalties.models import JournalEntry
from stripe_local.signing import signature_header
from tests.licensing import test_trueups
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import WEBHOOK_PATH, balances, fee_of, trial_balance_is_zero
from tests.licensing.test_trueups import _tokens

pytestmark = pytest.mark.django_db

# The volume-priced licence ("Small", paid) and the repertoire of the true-up tests.
licence = test_trueups.licence
works = test_trueups.works

DUE = 1_500_000  # "Medium" 25,000.00 less the 10,000.00 paid for "Small"


def _trueup(licensee, licence) -> TrueUp:
    _tokens(licensee, licence, 1_200_000)
    return TrueUp.objects.get()


def test_a_trueup_paid_by_card_is_booked_in_the_ledger_and_closed(
    client,
    licensee,
    licence,
    works,
    stripe_control,
    deliver,
):
    trueup = _trueup(licensee, licence)
    before = balances()
    payment = trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)
    assert (payment.method, payment.amount_minor, payment.for_trueup_id) == (
        PaymentMethod.CHECKOUT,
        DUE,
        trueup.pk,
    )
    assert payment.idempotency_key == f"payment:{payment.pk}:trueup:checkout"
    assert payment.checkout_url.endswith(f"/pay/{payment.checkout_session_id}")
    again = trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)
    assert (again.pk, again.checkout_session_id) == (payment.pk, payment.checkout_session_id)
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.OPEN  # nothing paid yet

    stripe_control.checkout_session_pay(payment.checkout_session_id)
    held = stripe_control.webhooks_held()
    assert held, "Stripe sent no webhook"
    forged = client.post(
        WEBHOOK_PATH,
        data=held[0]["payload"],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature_header(held[0]["payload"], "whsec_forged"),
    )
    assert forged.status_code == 400  # verified: a forged signature books nothing
    assert not StripeEvent.objects.exists()
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.OPEN
    assert set(deliver(duplicate=True)) == {200}

    trueup.refresh_from_db()
    payment.refresh_from_db()
    licence.refresh_from_db()
    fee = fee_of(DUE)
    assert (trueup.status, trueup.payment_id) == (TrueUpStatus.PAID, payment.pk)
    assert (payment.status, payment.fee_minor) == (PaymentStatus.SUCCEEDED, fee)
    assert licence.status == "active"
    after = balances()
    assert after["deferred_revenue"] - before["deferred_revenue"] == -DUE
    assert after["cash:stripe"] - before.get("cash:stripe", 0) == DUE - fee
    assert after["processing_fees"] - before.get("processing_fees", 0) == fee
    assert trial_balance_is_zero()
    entry = JournalEntry.objects.get(idempotency_key=f"payment:{payment.pk}:received")
    assert (entry.source_type, entry.source_id) == ("payment", str(payment.pk))
    assert AuditEvent.objects.filter(action="trueup.paid").count() == 1
    assert AuditEvent.objects.filter(action="trueup.checkout.start").count() == 1
    assert not AuditEvent.objects.filter(action="payment.duplicate").exists()
    with pytest.raises(DomainError):
        trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)
    page = licensee.client().get(f"/licences/{licence.pk}/").content.decode()
    assert "stays paid whatever later corrections declare" in page


def test_the_card_button_and_api_action_start_checkout_for_the_licensee_only(
    licensee,
    outsider,
    operator,
    licence,
    works,
    stripe_control,
):
    trueup = _trueup(licensee, licence)
    client = licensee.client()
    page = client.get(f"/licences/{licence.pk}/").content.decode()
    assert f"/trueups/{trueup.pk}/pay/card/" in page and "Pay by card" in page

    other = outsider.client()
    assert other.post(f"/api/v1/trueups/{trueup.pk}/checkout/").status_code == 404
    assert other.post(f"/trueups/{trueup.pk}/pay/card/").status_code == 404
    assert not Payment.objects.filter(for_trueup=trueup).exists()

    response = client.post(f"/api/v1/trueups/{trueup.pk}/checkout/")
    assert response.status_code == 200, response.content
    body = response.json()
    payment = Payment.objects.get(for_trueup=trueup)
    assert body["checkout_url"] == payment.checkout_url
    assert (body["payment"]["amount_minor"], body["payment"]["method"]) == (DUE, "checkout")
    redirect = client.post(f"/trueups/{trueup.pk}/pay/card/")
    assert (redirect.status_code, redirect["Location"]) == (302, payment.checkout_url)
    assert Payment.objects.filter(for_trueup=trueup).count() == 1  # the session is reused
    assert operator.client().get(f"/api/v1/trueups/{trueup.pk}/").status_code == 200


def test_paying_a_trueup_by_invoice_and_by_card_books_both_and_flags_the_duplicate(
    licensee,
    licence,
    works,
    stripe_control,
    deliver,
):
    trueup = _trueup(licensee, licence)
    invoice = trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)
    card = trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)
    assert invoice.pk != card.pk and invoice.method == PaymentMethod.INVOICE
    stripe_control.invoice_pay(invoice.invoice_id)
    stripe_control.checkout_session_pay(card.checkout_session_id)
    assert set(deliver()) == {200}

    trueup.refresh_from_db()
    invoice.refresh_from_db()
    card.refresh_from_db()
    assert (invoice.status, card.status) == (PaymentStatus.SUCCEEDED, PaymentStatus.SUCCEEDED)
    assert trueup.status == TrueUpStatus.PAID
    assert AuditEvent.objects.filter(action="payment.duplicate").count() == 1
    assert trial_balance_is_zero()


def test_a_correction_below_the_tier_withdraws_the_open_trueup_and_a_rise_opens_a_new_one(
    licensee,
    licence,
    works,
):
    _tokens(licensee, licence, 600_000)
    second = _tokens(licensee, licence, 700_000, model="beth")  # 1,300,000: "Medium"
    trueup = TrueUp.objects.get()
    assert trueup.status == TrueUpStatus.OPEN

    corrected = _tokens(licensee, licence, 100_000, model="beth")  # 700,000: back in "Small"
    assert corrected.supersedes_id == second.pk
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.WITHDRAWN and trueup.closed_at is not None
    assert f"Declaration {corrected.pk}" in trueup.reason and "700,000 tokens" in trueup.reason
    event = AuditEvent.objects.get(action="trueup.withdraw")
    assert (event.details["declaration"], event.details["supersedes"]) == (
        corrected.pk,
        second.pk,
    )
    page = licensee.client().get(f"/licences/{licence.pk}/").content.decode()
    assert 'data-status="withdrawn"' in page and "700,000 tokens" in page
    with pytest.raises(DomainError):
        trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)

    _tokens(licensee, licence, 900_000, model="beth")  # 1,500,000: "Medium" again
    live = TrueUp.objects.exclude(status=TrueUpStatus.WITHDRAWN).get()
    assert (live.tier_due, live.status, live.amount_due_minor) == ("Medium", "open", DUE)
    assert TrueUp.objects.count() == 2


def test_a_paid_trueup_stays_paid_when_a_correction_lowers_the_volume(
    licensee,
    licence,
    works,
    stripe_control,
    deliver,
):
    _tokens(licensee, licence, 1_200_000, model="beth")
    trueup = TrueUp.objects.get()
    payment = trueup_checkout_start(caller=caller_of(licensee), trueup=trueup)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    deliver()
    _tokens(licensee, licence, 100_000, model="beth")
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.PAID and trueup.reason == ""
    assert not AuditEvent.objects.filter(action="trueup.withdraw").exists()


def test_an_invoice_paid_after_its_trueup_was_withdrawn_is_booked_and_flagged(
    licensee,
    licence,
    works,
    stripe_control,
    deliver,
):
    _tokens(licensee, licence, 1_200_000, model="beth")
    trueup = TrueUp.objects.get()
    invoice = trueup_invoice_start(caller=caller_of(licensee), trueup=trueup)
    _tokens(licensee, licence, 100_000, model="beth")
    trueup.refresh_from_db()
    assert trueup.status == TrueUpStatus.WITHDRAWN
    event = AuditEvent.objects.get(action="trueup.withdraw")
    assert event.details["invoice_id"] == invoice.invoice_id  # for staff to void

    stripe_control.invoice_pay(invoice.invoice_id)
    deliver()
    trueup.refresh_from_db()
    invoice.refresh_from_db()
    assert (trueup.status, invoice.status) == (TrueUpStatus.WITHDRAWN, PaymentStatus.SUCCEEDED)
    assert AuditEvent.objects.filter(action="trueup.paid_after_withdrawn").count() == 1
    assert trial_balance_is_zero()
