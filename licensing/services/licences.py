"""Quotes, licences, payments, refunds and their bookings in the ledger.

A licence moves quoted -> pending_payment -> active -> expired | cancelled. Stripe is reached
only through `royalties.integrations.stripe_client`, never inside a transaction: a `Payment`
row (with its idempotency key) is written first, then Stripe is called, then the outcome is
recorded. Money arrives from webhooks (`licensing.services.stripe_events`), which call the
idempotent functions here: a payment succeeds once, a licence activates once, a refund is
booked once, whatever order and however often the events come.
"""

from __future__ import annotations

import calendar
import contextlib
import uuid
from datetime import date, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import OrganisationKind
from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import ConflictError, PermissionError_
from licensing import pricing
from licensing.errors import LicensingError
from licensing.models import (
    Licence,
    LicenceProduct,
    LicenceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Quote,
    Refund,
    TrueUp,
    TrueUpStatus,
)
from licensing.services.certificates import certificate_issue, certificate_revoke
from licensing.services.products import product_tariff
from royalties.integrations import stripe_client
from royalties.models import AccountKind, LedgerAccount
from royalties.services.ledger import Line, journal_entry_post, ledger_account_get_or_create


class PaymentError(LicensingError):
    code = "payment_error"


# --- ledger accounts -------------------------------------------------------------------------


def _account(code: str, name: str, kind: str, currency: str) -> LedgerAccount:
    return ledger_account_get_or_create(
        code=f"{code}:{currency}", name=f"{name} ({currency})", kind=kind, currency=currency
    )


def cash_account(*, via: str, currency: str) -> LedgerAccount:
    label = "Cash at Stripe" if via == "stripe" else "Cash at bank"
    return _account(f"cash:{via}", label, AccountKind.ASSET, currency)


def fees_account(*, currency: str) -> LedgerAccount:
    return _account("processing_fees", "Payment processing fees", AccountKind.EXPENSE, currency)


def deferred_revenue_account(*, currency: str) -> LedgerAccount:
    return _account("deferred_revenue", "Deferred licence revenue", AccountKind.LIABILITY, currency)


# --- quotes and licences ---------------------------------------------------------------------


def _require_licensee(caller: Caller):
    organisation = caller.require_organisation()
    if organisation.kind != OrganisationKind.LICENSEE:
        raise PermissionError_("Only licensee organisations buy licences.", code="not_a_licensee")
    caller.require_write()
    return organisation


def quote_create(
    *,
    caller: Caller,
    product: LicenceProduct,
    annual_revenue_minor: int,
    training_volume: int,
    ai_revenue_minor: int = 0,
) -> Quote:
    organisation = _require_licensee(caller)
    if not product.active:
        raise LicensingError("This product is not on sale.", code="product_inactive")
    try:
        price = pricing.tariff_price(
            product_tariff(product),
            annual_revenue_minor=annual_revenue_minor,
            training_volume=training_volume,
            ai_revenue_minor=ai_revenue_minor,
        )
    except pricing.PricingError as exc:
        raise LicensingError(str(exc), code="no_price") from exc
    with transaction.atomic():
        quote = Quote.objects.create(
            licensee=organisation,
            product=product,
            annual_revenue_minor=annual_revenue_minor,
            training_volume=training_volume,
            ai_revenue_minor=ai_revenue_minor,
            amount_minor=price.amount_minor,
            currency=price.currency,
            tier=price.tier or "",
            breakdown=price.breakdown,
            valid_until=timezone.now() + timedelta(hours=settings.QUOTE_VALID_HOURS),
            created_by=caller.user,
        )
        audit_record(
            action="quote.create",
            caller=caller,
            obj=quote,
            details={"amount_minor": quote.amount_minor, "currency": quote.currency},
        )
    return quote


def licence_from_quote(*, caller: Caller, quote: Quote) -> Licence:
    organisation = _require_licensee(caller)
    with transaction.atomic():
        quote = Quote.objects.select_for_update().select_related("product").get(pk=quote.pk)
        if quote.licensee_id != organisation.pk:
            raise LicensingError("Not found.", code="not_found")
        if quote.valid_until <= timezone.now():
            raise LicensingError("This quote has expired; ask for a new one.", code="quote_expired")
        if Licence.objects.filter(quote=quote).exists():
            raise ConflictError("A licence was already made from this quote.", code="quote_used")
        product = quote.product
        licence = Licence.objects.create(
            licensee=organisation,
            product=product,
            quote=quote,
            status=LicenceStatus.QUOTED,
            amount_minor=quote.amount_minor,
            currency=quote.currency,
            uses=list(product.uses),
            media_types=list(product.media_types),
            territory=product.territory,
            created_by=caller.user,
        )
        audit_record(
            action="licence.create",
            caller=caller,
            obj=licence,
            details={"quote": quote.pk, "amount_minor": licence.amount_minor},
        )
    return licence


def _licence_check_access(caller: Caller, licence: Licence) -> None:
    if not caller.is_staff and licence.licensee_id != getattr(caller.organisation, "pk", None):
        raise LicensingError("Not found.", code="not_found")
    caller.require_write()


def _payment_begin(*, caller: Caller, licence: Licence, method: str) -> tuple[Payment, bool]:
    """The pending payment of this method to (re)use, or a new one; (payment, is_new). The
    licence moves to pending_payment."""
    _licence_check_access(caller, licence)
    with transaction.atomic():
        licence = (
            Licence.objects.select_for_update(of=("self",))
            .select_related("quote")
            .get(pk=licence.pk)
        )
        if licence.status not in (LicenceStatus.QUOTED, LicenceStatus.PENDING_PAYMENT):
            raise ConflictError(
                f"This licence is {licence.get_status_display().lower()}; there is nothing to pay.",
                code="licence_not_payable",
            )
        if licence.payments.filter(status=PaymentStatus.SUCCEEDED).exists():
            raise ConflictError("This licence is paid already.", code="licence_paid")
        # A pending payment is retried with its own key. A failed one is reused only if it
        # reached Stripe (a declined card: the session is still open); one that Stripe
        # refused to create stays failed, since its key would replay the same error.
        existing = (
            licence.payments.filter(method=method)
            .filter(
                Q(status=PaymentStatus.PENDING)
                | (
                    Q(status=PaymentStatus.FAILED)
                    & (~Q(checkout_session_id="") | ~Q(invoice_id=""))
                )
            )
            .order_by("-pk")
            .first()
        )
        if existing is not None:
            return existing, False
        quote = licence.quote
        if quote is not None and quote.valid_until <= timezone.now():
            raise LicensingError(
                "The quote behind this licence has expired; ask for a new quote.",
                code="quote_expired",
            )
        payment = Payment.objects.create(
            licence=licence,
            method=method,
            amount_minor=licence.amount_minor,
            currency=licence.currency,
            idempotency_key=f"payment:new:{uuid.uuid4()}",
            recorded_by=caller.user,
        )
        payment.idempotency_key = f"payment:{payment.pk}:{method}"
        payment.save(update_fields=["idempotency_key"])
        Licence.objects.filter(pk=licence.pk).update(
            status=LicenceStatus.PENDING_PAYMENT, payment_method=method
        )
        audit_record(
            action=f"payment.{method}.start",
            caller=caller,
            obj=payment,
            details={"licence": licence.pk, "amount_minor": payment.amount_minor},
        )
    return payment, True


@contextlib.contextmanager
def _stripe_refusal_fails(payment: Payment):
    """If Stripe answers the creation of the session or invoice with an error (after the SDK's
    retries with the same key), the payment is marked failed: Stripe saved that error under
    the key, so the next attempt starts a new payment with a new key. Without any answer, the
    payment stays pending and the next attempt retries with the same key."""
    try:
        yield
    except stripe_client.StripeBoundaryError as exc:
        if not exc.details.get("http_status"):
            raise  # no answer at all: the next attempt retries with the same key
        Payment.objects.filter(
            pk=payment.pk, status=PaymentStatus.PENDING, checkout_session_id="", invoice_id=""
        ).update(status=PaymentStatus.FAILED, failure_message=exc.message[:500])
        raise


def _description(licence: Licence) -> str:
    return f"{licence.product.name}, {licence.product.term_months} months (licence {licence.pk})"


def licence_checkout_start(
    *, caller: Caller, licence: Licence, return_base_url: str | None = None
) -> Payment:
    """A Stripe Checkout Session for the licence's price; the payment carries its URL."""
    payment, _ = _payment_begin(caller=caller, licence=licence, method=PaymentMethod.CHECKOUT)
    if payment.checkout_url and payment.status == PaymentStatus.PENDING:
        return payment
    base = (return_base_url or settings.BLANKET_BASE_URL).rstrip("/")
    with _stripe_refusal_fails(payment):
        session = stripe_client.checkout_session_create(
            idempotency_key=f"{payment.idempotency_key}:session",
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            description=_description(licence),
            success_url=f"{base}/licences/{licence.pk}/paid/?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/licences/{licence.pk}/?checkout=cancelled",
            metadata={"licence_id": str(licence.pk), "payment_id": str(payment.pk)},
            customer_email=caller.user.email if caller.user else None,
        )
    Payment.objects.filter(pk=payment.pk).update(
        checkout_session_id=session["id"],
        checkout_url=session.get("url") or "",
        status=PaymentStatus.PENDING,
    )
    payment.refresh_from_db()
    return payment


def licence_invoice_start(*, caller: Caller, licence: Licence) -> Payment:
    """A Stripe Invoice sent to the licensee, payable within the net terms."""
    payment, _ = _payment_begin(caller=caller, licence=licence, method=PaymentMethod.INVOICE)
    if payment.invoice_id:
        return payment
    organisation = licence.licensee
    email = organisation.contact_email or (caller.user.email if caller.user else "")
    with _stripe_refusal_fails(payment):
        invoice = stripe_client.invoice_create_and_send(
            idempotency_key=payment.idempotency_key,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            description=_description(licence),
            customer_email=email,
            customer_name=organisation.name,
            metadata={"licence_id": str(licence.pk), "payment_id": str(payment.pk)},
            days_until_due=settings.INVOICE_DAYS_UNTIL_DUE,
        )
    Payment.objects.filter(pk=payment.pk).update(
        invoice_id=invoice["id"], invoice_url=invoice.get("hosted_invoice_url") or ""
    )
    payment.refresh_from_db()
    return payment


def payment_offline_record(
    *, caller: Caller, licence: Licence, amount_minor: int, reference: str
) -> Payment:
    """Staff record money received outside Stripe (a bank transfer); the licence activates."""
    if not caller.is_staff:
        raise PermissionError_("Only society staff record offline payments.")
    if not reference.strip():
        raise LicensingError("Give the bank reference.", code="reference_required")
    with transaction.atomic():
        licence = Licence.objects.select_for_update().get(pk=licence.pk)
        if licence.status not in (LicenceStatus.QUOTED, LicenceStatus.PENDING_PAYMENT):
            raise ConflictError("This licence is not awaiting payment.", code="licence_not_payable")
        if amount_minor != licence.amount_minor:
            raise LicensingError(
                f"The licence costs {licence.amount_minor} {licence.currency} (minor units); "
                f"record the full amount.",
                code="amount_mismatch",
            )
        payment = Payment.objects.create(
            licence=licence,
            method=PaymentMethod.OFFLINE,
            status=PaymentStatus.SUCCEEDED,
            amount_minor=amount_minor,
            currency=licence.currency,
            idempotency_key=f"payment:new:{uuid.uuid4()}",
            reference=reference.strip()[:200],
            recorded_by=caller.user,
            paid_at=timezone.now(),
        )
        payment.idempotency_key = f"payment:{payment.pk}:offline"
        payment.save(update_fields=["idempotency_key"])
        _payment_received_book(payment=payment, via="bank", net_minor=amount_minor, fee_minor=0)
        audit_record(
            action="payment.offline.record",
            caller=caller,
            obj=payment,
            organisation=licence.licensee,
            details={
                "licence": licence.pk,
                "amount_minor": amount_minor,
                "reference": payment.reference,
            },
        )
        licence_activate(payment=payment)
    return payment


# --- money arriving --------------------------------------------------------------------------


def _payment_received_book(*, payment: Payment, via: str, net_minor: int, fee_minor: int) -> None:
    """Dr cash (net), Dr processing fees (fee), Cr deferred revenue (amount). Once per payment."""
    currency = payment.currency
    lines = [Line(cash_account(via=via, currency=currency), net_minor)]
    if fee_minor:
        lines.append(Line(fees_account(currency=currency), fee_minor))
    lines.append(Line(deferred_revenue_account(currency=currency), -(net_minor + fee_minor)))
    journal_entry_post(
        idempotency_key=f"payment:{payment.pk}:received",
        lines=lines,
        source_type="payment",
        source_id=payment.pk,
        description=f"Licence {payment.licence_id}: {payment.get_method_display()} received",
        effective_date=timezone.localdate(),
    )


def payment_succeeded(
    *,
    payment: Payment,
    amount_minor: int,
    fee_minor: int,
    net_minor: int,
    payment_intent_id: str = "",
    charge_id: str = "",
    balance_transaction_id: str = "",
    via: str = "stripe",
) -> Payment:
    """Stripe says the money arrived (amounts from its balance transaction, never computed).
    Idempotent: the payment is marked, booked and its licence activated at most once."""
    if amount_minor != payment.amount_minor or net_minor + fee_minor != amount_minor:
        raise PaymentError(
            f"Payment {payment.pk}: Stripe reports {amount_minor} (fee {fee_minor}, net "
            f"{net_minor}) for a price of {payment.amount_minor}.",
            code="amount_mismatch",
        )
    with transaction.atomic():
        flipped = Payment.objects.filter(
            pk=payment.pk, status__in=(PaymentStatus.PENDING, PaymentStatus.FAILED)
        ).update(
            status=PaymentStatus.SUCCEEDED,
            fee_minor=fee_minor,
            payment_intent_id=payment_intent_id,
            charge_id=charge_id,
            balance_transaction_id=balance_transaction_id,
            failure_message="",
            paid_at=timezone.now(),
        )
        payment.refresh_from_db()
        if payment.status not in (
            PaymentStatus.SUCCEEDED,
            PaymentStatus.PARTIALLY_REFUNDED,
            PaymentStatus.REFUNDED,
        ):
            return payment
        _payment_received_book(payment=payment, via=via, net_minor=net_minor, fee_minor=fee_minor)
        if payment.for_trueup_id or TrueUp.objects.filter(payment=payment).exists():
            if flipped:  # a true-up: the licence is active already
                _trueup_paid(payment=payment)
        elif payment.status == PaymentStatus.SUCCEEDED:
            licence = licence_activate(payment=payment)
            paid_twice = licence.payments.filter(
                status__in=(PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)
            ).exclude(pk=payment.pk)
            if flipped and paid_twice.exists():  # card and invoice both paid: refund one
                audit_record(
                    action="payment.duplicate",
                    organisation=licence.licensee,
                    obj=payment,
                    details={"licence": licence.pk},
                )
    return payment


def _trueup_paid(*, payment: Payment) -> None:
    """The true-up ``payment`` collects is paid (the payment that settled it is linked). If it
    was paid already by its other method, or withdrawn or waived meanwhile, the money is booked
    all the same and flagged for staff to refund."""
    trueup = (
        TrueUp.objects.select_for_update()
        .filter(Q(pk=payment.for_trueup_id) | Q(payment=payment))
        .first()
    )
    if trueup.status in (TrueUpStatus.OPEN, TrueUpStatus.INVOICED):
        trueup.status = TrueUpStatus.PAID
        trueup.payment = payment
        trueup.save(update_fields=["status", "payment"])
        action = "trueup.paid"
    elif trueup.status == TrueUpStatus.PAID and trueup.payment_id != payment.pk:
        action = "payment.duplicate"  # card and invoice both paid: refund one
    elif trueup.status == TrueUpStatus.PAID:
        action = "trueup.paid"
    else:
        action = f"trueup.paid_after_{trueup.status}"  # waived or withdrawn: refund it
    audit_record(
        action=action,
        organisation=payment.licence.licensee,
        obj=payment,
        details={"licence": payment.licence_id, "trueup": trueup.pk, "status": trueup.status},
    )


def payment_failed(*, payment: Payment, message: str) -> Payment:
    """A declined card or a failed invoice attempt: the licence stays pending_payment."""
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.FAILED, failure_message=message[:500]
    )
    payment.refresh_from_db()
    return payment


def payment_checkout_expired(*, payment: Payment) -> Payment:
    """The session expired unpaid: the payment fails and forgets the dead session, so it is
    never offered again (the session id stays in the message for the record)."""
    Payment.objects.filter(
        pk=payment.pk,
        status__in=(PaymentStatus.PENDING, PaymentStatus.FAILED),
        checkout_session_id=payment.checkout_session_id,
    ).update(
        status=PaymentStatus.FAILED,
        failure_message=f"Checkout session {payment.checkout_session_id} expired unpaid.",
        checkout_session_id="",
        checkout_url="",
    )
    payment.refresh_from_db()
    return payment


def _add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def licence_activate(*, payment: Payment) -> Licence:
    """pending_payment (or quoted) -> active, once; the term starts today and the certificate
    is issued. A cancelled or expired licence is never revived by a late event."""
    with transaction.atomic():
        licence = Licence.objects.select_related("product", "licensee").get(pk=payment.licence_id)
        starts = timezone.localdate()
        ends = _add_months(starts, licence.product.term_months) - timedelta(days=1)
        activated = Licence.objects.filter(
            pk=licence.pk, status__in=(LicenceStatus.QUOTED, LicenceStatus.PENDING_PAYMENT)
        ).update(
            status=LicenceStatus.ACTIVE,
            starts_on=starts,
            ends_on=ends,
            activated_at=timezone.now(),
            payment_method=payment.method,
        )
        licence.refresh_from_db()
        if activated:
            certificate_issue(licence=licence)
            audit_record(
                action="licence.activate",
                organisation=licence.licensee,
                obj=licence,
                details={"payment": payment.pk, "ends_on": ends.isoformat()},
            )
    return licence


def licence_expire_due(*, today: date | None = None) -> int:
    """Active licences whose term has ended become expired (periodic task)."""
    today = today or timezone.localdate()
    return Licence.objects.filter(status=LicenceStatus.ACTIVE, ends_on__lt=today).update(
        status=LicenceStatus.EXPIRED
    )


# --- refunds ---------------------------------------------------------------------------------


def payment_refund(*, caller: Caller, payment: Payment, amount_minor: int) -> Refund:
    """Staff refund part or all of a Stripe payment; the refund is booked at once (and again,
    harmlessly, when `charge.refunded` arrives)."""
    if not caller.is_staff:
        raise PermissionError_("Only society staff refund payments.")
    payment.refresh_from_db()
    if payment.method == PaymentMethod.OFFLINE or not payment.payment_intent_id:
        raise LicensingError("Only Stripe payments are refunded here.", code="not_refundable")
    if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
        raise ConflictError("Only a received payment can be refunded.", code="not_refundable")
    left = payment.amount_minor - payment.refunded_minor
    if not 0 < amount_minor <= left:
        raise LicensingError(f"Refund between 1 and {left} (minor units).", code="invalid_amount")
    refund = stripe_client.refund_create(
        idempotency_key=f"payment:{payment.pk}:refund:{payment.refunded_minor}:{amount_minor}",
        payment_intent_id=payment.payment_intent_id,
        amount_minor=amount_minor,
        metadata={"payment_id": str(payment.pk), "licence_id": str(payment.licence_id)},
    )
    with transaction.atomic():
        recorded = refund_record(
            payment=payment, stripe_refund_id=refund["id"], amount_minor=refund["amount"]
        )
        audit_record(
            action="payment.refund",
            caller=caller,
            obj=payment,
            organisation=payment.licence.licensee,
            details={"refund": refund["id"], "amount_minor": refund["amount"]},
        )
    return recorded


def refund_record(*, payment: Payment, stripe_refund_id: str, amount_minor: int) -> Refund:
    """Record and book one Stripe refund, once per refund id: Dr deferred revenue, Cr cash.
    A full refund cancels the licence and revokes its certificate (a true-up's does not)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        refund, created = Refund.objects.get_or_create(
            stripe_refund_id=stripe_refund_id,
            defaults={
                "payment": payment,
                "amount_minor": amount_minor,
                "currency": payment.currency,
            },
        )
        if not created:
            return refund
        if payment.refunded_minor + amount_minor > payment.amount_minor:
            raise PaymentError(f"Refunds of payment {payment.pk} would exceed its amount.")
        full = payment.refunded_minor + amount_minor == payment.amount_minor
        Payment.objects.filter(pk=payment.pk).update(
            refunded_minor=F("refunded_minor") + amount_minor,
            status=PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED,
        )
        currency = payment.currency
        journal_entry_post(
            idempotency_key=f"refund:{stripe_refund_id}",
            lines=[
                Line(deferred_revenue_account(currency=currency), amount_minor),
                Line(cash_account(via="stripe", currency=currency), -amount_minor),
            ],
            source_type="refund",
            source_id=refund.pk,
            description=f"Licence {payment.licence_id}: refund {stripe_refund_id}",
            effective_date=timezone.localdate(),
        )
        # Refunding a true-up gives back the overrun's price; the licence itself stands.
        if full and not TrueUp.objects.filter(payment=payment).exists():
            licence_cancel_refunded(licence=payment.licence)
    return refund


def licence_cancel_refunded(*, licence: Licence) -> Licence:
    with transaction.atomic():
        cancelled = Licence.objects.filter(
            pk=licence.pk,
            status__in=(LicenceStatus.ACTIVE, LicenceStatus.PENDING_PAYMENT, LicenceStatus.QUOTED),
        ).update(status=LicenceStatus.CANCELLED, cancelled_at=timezone.now())
        licence.refresh_from_db()
        certificate = getattr(licence, "certificate", None)
        if certificate is not None:
            certificate_revoke(certificate=certificate, reason="Licence fee refunded in full")
        if cancelled:
            audit_record(
                action="licence.cancel",
                organisation=licence.licensee,
                obj=licence,
                details={"reason": "refunded"},
            )
    return licence
