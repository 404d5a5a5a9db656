"""Paying for a licence through the real Stripe SDK against the local Stripe server."""

from __future__ import annotations

import pytest

from licensing.models import (
    Licence,
    LicenceStatus,
    Payment,
    PaymentStatus,
    Refund,
    StripeEvent,
)
from licensing.services import licences
from royalties.models import JournalEntry
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import (
    balances,
    fee_of,
    licence_for,
    trial_balance_is_zero,
)

PRICE = 750_000  # minimum fee: 5,000.00 tier < 7,500.00 minimum


def _checkout_paid(licensee, product, stripe_control, deliver, card="4242424242424242"):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    result = stripe_control.checkout_session_pay(payment.checkout_session_id, card=card)
    codes = deliver()
    assert set(codes) == {200}
    licence.refresh_from_db()
    payment.refresh_from_db()
    return licence, payment, result


def test_checkout_paid_activates_licence_issues_certificate_and_books_the_ledger(
    licensee, product, stripe_control, deliver
):
    licence = licence_for(licensee, product)
    assert (licence.status, licence.amount_minor) == (LicenceStatus.QUOTED, PRICE)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert payment.checkout_url.endswith(f"/pay/{payment.checkout_session_id}")
    assert payment.idempotency_key == f"payment:{payment.pk}:checkout"
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.PENDING_PAYMENT

    stripe_control.checkout_session_pay(payment.checkout_session_id)
    assert set(deliver()) == {200}

    licence.refresh_from_db()
    payment.refresh_from_db()
    fee = fee_of(PRICE)
    assert licence.status == LicenceStatus.ACTIVE
    assert licence.starts_on is not None and licence.ends_on is not None
    assert (licence.ends_on - licence.starts_on).days in (364, 365)
    assert licence.certificate.serial.startswith(f"BLK-{licence.pk:06d}-")
    assert (payment.status, payment.fee_minor) == (PaymentStatus.SUCCEEDED, fee)
    assert trial_balance_is_zero()
    assert balances() == {
        "cash:stripe": PRICE - fee,
        "processing_fees": fee,
        "deferred_revenue": -PRICE,
    }
    entry = JournalEntry.objects.get(idempotency_key=f"payment:{payment.pk}:received")
    assert (entry.source_type, entry.source_id) == ("payment", str(payment.pk))


def test_starting_checkout_twice_reuses_the_session(licensee, product, stripe_control):
    licence = licence_for(licensee, product)
    first = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    second = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert first.pk == second.pk
    assert first.checkout_session_id == second.checkout_session_id
    assert len(stripe_control.requests(path="/v1/checkout/sessions", method="POST")) == 1


def test_duplicate_and_reordered_webhooks_change_nothing(
    licensee, product, stripe_control, deliver
):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    held = stripe_control.webhooks_held()

    codes = deliver(order="reverse", duplicate=True)

    assert codes == [200] * (2 * len(held))
    assert StripeEvent.objects.count() == len(held)
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE
    assert JournalEntry.objects.count() == 1
    fee = fee_of(PRICE)
    assert balances() == {
        "cash:stripe": PRICE - fee,
        "processing_fees": fee,
        "deferred_revenue": -PRICE,
    }
    assert trial_balance_is_zero()


def test_reprocessing_a_stored_event_books_nothing_twice(
    licensee, product, stripe_control, deliver
):
    from licensing.services.stripe_events import stripe_event_process

    licence, _payment, _ = _checkout_paid(licensee, product, stripe_control, deliver)
    completed = StripeEvent.objects.get(type="checkout.session.completed")
    StripeEvent.objects.filter(pk=completed.pk).update(status="received")
    assert stripe_event_process(event_pk=completed.pk) == "processed"
    assert JournalEntry.objects.count() == 1
    assert Licence.objects.get(pk=licence.pk).status == LicenceStatus.ACTIVE


def test_declined_card_leaves_no_licence_active(licensee, product, stripe_control, deliver):
    licence, payment, result = _checkout_paid(
        licensee, product, stripe_control, deliver, card="4000000000000002"
    )
    assert result["status"] == "declined"
    assert licence.status == LicenceStatus.PENDING_PAYMENT
    assert payment.status == PaymentStatus.FAILED
    assert "declined" in payment.failure_message.lower()
    assert not hasattr(licence, "certificate")
    assert JournalEntry.objects.count() == 0
    # the licensee tries again with a good card: the same session and payment succeed
    retry = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert retry.pk == payment.pk
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    deliver()
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


def test_invoice_paid_late_activates_the_licence(licensee, product, stripe_control, deliver):
    licence = licence_for(licensee, product)
    payment = licences.licence_invoice_start(caller=caller_of(licensee), licence=licence)
    assert payment.invoice_url.endswith(f"/invoice/{payment.invoice_id}")
    stripe_control.invoice_mark_overdue(payment.invoice_id)
    assert stripe_control.invoice_pay(payment.invoice_id, fail=True)["status"] == "declined"
    deliver()
    payment.refresh_from_db()
    licence.refresh_from_db()
    assert (payment.status, licence.status) == (PaymentStatus.FAILED, LicenceStatus.PENDING_PAYMENT)

    assert stripe_control.invoice_pay(payment.invoice_id)["status"] == "succeeded"
    deliver(order="reverse", duplicate=True)

    payment.refresh_from_db()
    licence.refresh_from_db()
    fee = fee_of(PRICE)
    assert (payment.status, payment.fee_minor) == (PaymentStatus.SUCCEEDED, fee)
    assert licence.status == LicenceStatus.ACTIVE
    assert licence.payment_method == "invoice"
    assert balances() == {
        "cash:stripe": PRICE - fee,
        "processing_fees": fee,
        "deferred_revenue": -PRICE,
    }


def test_partial_then_full_refund_reverses_and_cancels(
    licensee, operator, product, stripe_control, deliver
):
    licence, payment, _ = _checkout_paid(licensee, product, stripe_control, deliver)
    fee = fee_of(PRICE)

    licences.payment_refund(caller=caller_of(operator), payment=payment, amount_minor=100_000)
    deliver()  # charge.refunded: the same refund, already booked
    payment.refresh_from_db()
    licence.refresh_from_db()
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.PARTIALLY_REFUNDED, 100_000)
    assert licence.status == LicenceStatus.ACTIVE
    assert balances()["cash:stripe"] == PRICE - fee - 100_000
    assert balances()["deferred_revenue"] == -PRICE + 100_000

    licences.payment_refund(caller=caller_of(operator), payment=payment, amount_minor=650_000)
    deliver(duplicate=True)
    payment.refresh_from_db()
    licence.refresh_from_db()
    assert (payment.status, payment.refunded_minor) == (PaymentStatus.REFUNDED, PRICE)
    assert licence.status == LicenceStatus.CANCELLED
    assert licence.certificate.revoked_at is not None
    assert Refund.objects.count() == 2
    assert balances() == {"cash:stripe": -fee, "processing_fees": fee, "deferred_revenue": 0}
    assert trial_balance_is_zero()


def test_refund_made_in_the_stripe_dashboard_is_booked_from_the_webhook(
    licensee, product, stripe_control, deliver, stripe_client
):
    _licence, payment, _ = _checkout_paid(licensee, product, stripe_control, deliver)
    stripe_client.v1.refunds.create({"payment_intent": payment.payment_intent_id, "amount": 1234})
    deliver(order="reverse", duplicate=True)
    payment.refresh_from_db()
    assert payment.refunded_minor == 1234
    assert Refund.objects.get().amount_minor == 1234
    assert balances()["deferred_revenue"] == -PRICE + 1234


def test_only_staff_refund_and_record_offline_payments(licensee, product, stripe_control):
    from config.errors import PermissionError_

    licence = licence_for(licensee, product)
    with pytest.raises(PermissionError_):
        licences.payment_offline_record(
            caller=caller_of(licensee), licence=licence, amount_minor=PRICE, reference="x"
        )


def test_offline_payment_activates_and_books_bank_cash(licensee, operator, product):
    licence = licence_for(licensee, product)
    payment = licences.payment_offline_record(
        caller=caller_of(operator), licence=licence, amount_minor=PRICE, reference="SEPA 42"
    )
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE
    assert payment.reference == "SEPA 42"
    assert balances() == {"cash:bank": PRICE, "deferred_revenue": -PRICE}


def test_expired_licences_are_swept(licensee, operator, product):
    import datetime

    licence = licence_for(licensee, product)
    licences.payment_offline_record(
        caller=caller_of(operator), licence=licence, amount_minor=PRICE, reference="r"
    )
    licence.refresh_from_db()
    assert licences.licence_expire_due(today=licence.ends_on) == 0
    assert licences.licence_expire_due(today=licence.ends_on + datetime.timedelta(days=1)) == 1
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.EXPIRED


def test_quote_expires_and_is_used_once(licensee, product, settings):
    from django.utils import timezone

    from config.errors import ConflictError
    from licensing.errors import LicensingError
    from tests.licensing.payments_support import quote_for

    quote = quote_for(licensee, product)
    licences.licence_from_quote(caller=caller_of(licensee), quote=quote)
    with pytest.raises(ConflictError):
        licences.licence_from_quote(caller=caller_of(licensee), quote=quote)
    stale = quote_for(licensee, product)
    stale.valid_until = timezone.now()
    stale.save()
    with pytest.raises(LicensingError, match="expired"):
        licences.licence_from_quote(caller=caller_of(licensee), quote=stale)


def test_only_licensees_get_quotes(rights_holder, product):
    from config.errors import PermissionError_
    from tests.licensing.payments_support import quote_for

    with pytest.raises(PermissionError_):
        quote_for(rights_holder, product)


def test_payment_amount_never_computed_from_float(licensee, product, stripe_control, deliver):
    _licence, payment, _ = _checkout_paid(licensee, product, stripe_control, deliver)
    assert isinstance(Payment.objects.get(pk=payment.pk).fee_minor, int)


def test_a_lost_stripe_response_is_retried_with_the_same_key_and_charges_once(
    licensee, product, stripe_control
):
    """Stripe creates the session but the answer is lost (500 after the effect): the SDK
    retries with the same idempotency key and gets the saved session, not a second one."""
    stripe_control.failure_add("/v1/checkout/sessions", status=500, after_effect=True)
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    keys = {r["key"] for r in stripe_control.idempotent_executions(path="/v1/checkout/sessions")}
    assert keys == {f"payment:{payment.pk}:checkout:session"}
    assert payment.checkout_url


def test_a_stripe_error_fails_the_payment_and_a_later_try_starts_afresh(
    licensee, product, stripe_control
):
    """Stripe saves an error under the idempotency key, so retrying that key would replay it:
    the failed payment stays failed and the next try is a new payment with a new key."""
    from royalties.integrations.stripe_client import StripeBoundaryError

    stripe_control.failure_add("/v1/checkout/sessions", status=500)
    licence = licence_for(licensee, product)
    with pytest.raises(StripeBoundaryError):
        licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    failed = Payment.objects.get(licence=licence)
    assert (failed.status, failed.checkout_url) == (PaymentStatus.FAILED, "")

    retried = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert retried.pk != failed.pk
    assert retried.checkout_url
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.PENDING_PAYMENT


def test_paying_by_card_and_by_invoice_books_both_and_flags_the_duplicate(
    licensee, product, stripe_control, deliver
):
    from accounts.models import AuditEvent

    licence = licence_for(licensee, product)
    card = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    invoice = licences.licence_invoice_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(card.checkout_session_id)
    stripe_control.invoice_pay(invoice.invoice_id)
    deliver(duplicate=True)

    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE
    assert balances()["deferred_revenue"] == -2 * PRICE  # the money did arrive twice
    assert AuditEvent.objects.filter(action="payment.duplicate").count() == 1


def test_the_sweeper_reprocesses_failed_events(licensee, product, stripe_control, deliver):
    from licensing.services.stripe_events import stripe_events_stuck
    from licensing.tasks_payments import stripe_events_sweep_task

    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    stripe_control.failure_add("/v1/checkout/sessions/*", method="GET", status=500, count=10)
    deliver()
    completed = StripeEvent.objects.get(type="checkout.session.completed")
    assert completed.status == "failed"
    assert "unknown error" in completed.error.lower()
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.PENDING_PAYMENT
    assert stripe_events_stuck() == [completed.pk]

    stripe_control.failures_clear()
    assert stripe_events_sweep_task.delay().get() == 1
    completed.refresh_from_db()
    licence.refresh_from_db()
    assert (completed.status, licence.status) == ("processed", LicenceStatus.ACTIVE)


def test_an_expired_session_is_replaced_on_the_next_try(
    licensee, product, stripe_control, deliver, stripe_client
):
    licence = licence_for(licensee, product)
    first = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_client.v1.checkout.sessions.expire(first.checkout_session_id)
    deliver(duplicate=True)
    first.refresh_from_db()
    assert (first.status, first.checkout_url) == (PaymentStatus.FAILED, "")
    assert "expired" in first.failure_message

    second = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert second.pk != first.pk
    stripe_control.checkout_session_pay(second.checkout_session_id)
    deliver()
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


def test_a_licence_whose_quote_expired_cannot_start_a_payment(licensee, product, stripe_control):
    from django.utils import timezone

    from licensing.errors import LicensingError
    from licensing.models import Quote

    licence = licence_for(licensee, product)
    Quote.objects.filter(pk=licence.quote_id).update(valid_until=timezone.now())
    with pytest.raises(LicensingError, match="expired"):
        licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    assert not Payment.objects.exists()
