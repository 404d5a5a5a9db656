"""True-up: when a licence is priced on a training-volume tier, its accepted token declarations
for the term are checked against the tier paid for; an overrun opens a ``TrueUp`` with a quote
for the difference, which the licensee (or staff) pays through the licence's payment path: a
Stripe Invoice (``trueup_invoice_start``) or a card through Stripe Checkout
(``trueup_checkout_start``). Each attempt is a ``Payment`` with ``for_trueup`` set; the
webhooks complete it with the licence's own services (``payment_succeeded`` books it in the
ledger and marks the true-up paid).

``trueup_check`` runs in the transaction that accepts a declaration (the licence row locked).
It is idempotent: one live true-up per (licence, tier due), so re-processing or superseding a
declaration finds the existing row. The amount due is the price at the tier due less what the
licence has cost so far (its price and earlier true-ups neither waived nor withdrawn), never
negative. When a correction lowers the term's volume below the tier of an unpaid (open or
invoiced) true-up, that true-up is withdrawn, with the reason, audited; a paid one stays paid.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import ConflictError, PermissionError_
from licensing import pricing
from licensing.errors import LicensingError
from licensing.models import (
    DeclarationStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Quote,
    TariffTier,
    TrueUp,
    TrueUpStatus,
    UsageDeclaration,
    UsageUnit,
)
from licensing.services.licences import _licence_check_access, _stripe_refusal_fails
from licensing.services.products import product_tariff
from royalties.integrations import stripe_client

logger = logging.getLogger(__name__)


_CLOSED = (TrueUpStatus.WAIVED, TrueUpStatus.WITHDRAWN)
_UNPAID = (TrueUpStatus.OPEN, TrueUpStatus.INVOICED)


def licence_declared_volume(*, licence_id: int) -> int:
    """Tokens declared for the licence's term: the sum over its accepted declarations (the
    newest per model and period - supersession leaves one accepted)."""
    total = UsageDeclaration.objects.filter(
        licence_id=licence_id, status=DeclarationStatus.ACCEPTED, unit=UsageUnit.TOKENS
    ).aggregate(total=Sum("declared_quantity"))["total"]
    return int(total or 0)


def trueup_check(*, declaration: UsageDeclaration) -> TrueUp | None:
    """After ``declaration`` is accepted: withdraw the unpaid true-ups the term's volume no
    longer reaches, then the true-up its licence now owes, if any (created once per tier due;
    the caller's transaction)."""
    if declaration.status != DeclarationStatus.ACCEPTED:
        return None
    licence = declaration.licence
    quote = licence.quote
    if quote is None or not quote.tier:
        return None
    product = licence.product
    if not product.tiers.filter(volume_to__isnull=False).exists():
        return None  # the tariff does not depend on training volume
    volume = licence_declared_volume(licence_id=licence.pk)
    _trueups_withdraw_unreached(licence=licence, volume=volume, declaration=declaration)
    if declaration.unit != UsageUnit.TOKENS:
        return None
    earlier = licence.trueups.exclude(status__in=_CLOSED).order_by("-price_due_minor")
    latest = earlier.first()
    tier_paid = latest.tier_due if latest is not None else quote.tier
    price_paid = licence.amount_minor + int(
        earlier.aggregate(total=Sum("amount_due_minor"))["total"] or 0
    )
    bound = (
        TariffTier.objects.filter(product=product, name=tier_paid)
        .values_list("volume_to", flat=True)
        .first()
    )
    if bound is None or volume < bound:
        return None
    try:
        price = pricing.tariff_price(
            product_tariff(product),
            annual_revenue_minor=quote.annual_revenue_minor,
            training_volume=volume,
            ai_revenue_minor=quote.ai_revenue_minor,
        )
    except pricing.PricingError:
        logger.warning("licence %s: no tier covers %s tokens; no true-up", licence.pk, volume)
        return None
    if price.tier is None or price.tier == tier_paid:
        return None
    existing = licence.trueups.exclude(status=TrueUpStatus.WITHDRAWN).filter(tier_due=price.tier)
    existing = existing.first()
    if existing is not None:
        return existing
    amount_due = max(0, price.amount_minor - price_paid)
    if amount_due == 0:
        return None
    trueup_quote = Quote.objects.create(
        licensee=licence.licensee,
        product=product,
        annual_revenue_minor=quote.annual_revenue_minor,
        training_volume=volume,
        ai_revenue_minor=quote.ai_revenue_minor,
        amount_minor=amount_due,
        currency=price.currency,
        tier=price.tier,
        breakdown=[
            *price.breakdown,
            {"item": "less: paid for the licence so far", "amount_minor": -price_paid},
            {"item": "true-up due", "amount_minor": amount_due},
        ],
        valid_until=timezone.now() + timedelta(hours=settings.QUOTE_VALID_HOURS),
        created_by=declaration.created_by,
    )
    trueup = TrueUp.objects.create(
        licence=licence,
        declaration=declaration,
        quote=trueup_quote,
        declared_volume=volume,
        tier_paid=tier_paid,
        tier_due=price.tier,
        price_paid_minor=price_paid,
        price_due_minor=price.amount_minor,
        amount_due_minor=amount_due,
        currency=price.currency,
    )
    audit_record(
        action="trueup.create",
        actor=declaration.created_by,
        organisation=licence.licensee,
        obj=trueup,
        details={
            "licence": licence.pk,
            "declaration": declaration.pk,
            "declared_volume": volume,
            "tier_paid": tier_paid,
            "tier_due": price.tier,
            "amount_due_minor": amount_due,
        },
    )
    return trueup


def _trueups_withdraw_unreached(*, licence, volume: int, declaration: UsageDeclaration) -> None:
    """Withdraw each unpaid true-up whose tier ``volume`` (the term's tokens after a
    correction) no longer reaches. A paid one stays paid. An invoice already sent stays at
    Stripe (the boundary cannot void one yet): the audit names it for staff, and if it is
    paid anyway the money is booked and flagged for a refund (``payment_succeeded``)."""
    for trueup in licence.trueups.select_for_update().filter(status__in=_UNPAID):
        floor = (
            TariffTier.objects.filter(product=licence.product, name=trueup.tier_due)
            .values_list("volume_from", flat=True)
            .first()
        ) or 0
        if volume >= floor:
            continue
        trueup.status = TrueUpStatus.WITHDRAWN
        trueup.closed_at = timezone.now()
        trueup.reason = (
            f"Declaration {declaration.pk} ({declaration.model_name} "
            f"{declaration.model_version}, {declaration.period}) corrected the term's volume "
            f"to {volume:,} tokens, below the {trueup.tier_due} tier ({floor:,} tokens)."
        )[:500]
        trueup.save(update_fields=["status", "closed_at", "reason"])
        audit_record(
            action="trueup.withdraw",
            actor=declaration.created_by,
            organisation=licence.licensee,
            obj=trueup,
            details={
                "licence": licence.pk,
                "declaration": declaration.pk,
                "supersedes": declaration.supersedes_id,
                "declared_volume": volume,
                "tier_due": trueup.tier_due,
                "amount_due_minor": trueup.amount_due_minor,
                "invoice_id": trueup.payment.invoice_id if trueup.payment_id else "",
                "reason": trueup.reason,
            },
        )


def _trueup_payment_begin(*, caller: Caller, trueup: TrueUp, method: str) -> tuple[TrueUp, Payment]:
    """The true-up (locked, checked payable) and the payment of ``method`` to (re)use, or a
    new one recorded with its idempotency key before Stripe is called. A pending payment is
    retried with its own key; a failed one only if it reached Stripe (as for licences)."""
    _licence_check_access(caller, trueup.licence)
    with transaction.atomic():
        trueup = TrueUp.objects.select_for_update().select_related("licence").get(pk=trueup.pk)
        if trueup.status not in _UNPAID:
            raise ConflictError(f"The true-up is {trueup.status}.", code="trueup_not_payable")
        payment = (
            trueup.payments.filter(method=method)
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
        if payment is None:
            payment = Payment.objects.create(
                licence=trueup.licence,
                for_trueup=trueup,
                method=method,
                amount_minor=trueup.amount_due_minor,
                currency=trueup.currency,
                idempotency_key=f"payment:new:{uuid.uuid4()}",
                recorded_by=caller.user,
            )
            suffix = "trueup" if method == PaymentMethod.INVOICE else f"trueup:{method}"
            payment.idempotency_key = f"payment:{payment.pk}:{suffix}"
            payment.save(update_fields=["idempotency_key"])
            audit_record(
                action=f"trueup.{method}.start",
                caller=caller,
                organisation=trueup.licence.licensee,
                obj=trueup,
                details={"payment": payment.pk, "amount_minor": payment.amount_minor},
            )
        if method == PaymentMethod.INVOICE and trueup.payment_id != payment.pk:
            trueup.payment = payment
            trueup.status = TrueUpStatus.INVOICED
            trueup.save(update_fields=["payment", "status"])
    return trueup, payment


def _description(trueup: TrueUp) -> str:
    return (
        f"True-up for licence {trueup.licence_id}: {trueup.tier_paid} -> {trueup.tier_due} "
        f"({trueup.declared_volume:,} tokens declared)"
    )


def _metadata(trueup: TrueUp, payment: Payment) -> dict[str, str]:
    return {
        "licence_id": str(trueup.licence_id),
        "payment_id": str(payment.pk),
        "trueup_id": str(trueup.pk),
    }


def trueup_invoice_start(*, caller: Caller, trueup: TrueUp) -> Payment:
    """A Stripe Invoice for the true-up, through the same boundary as a licence's invoice. The
    payment is recorded (with its idempotency key) before Stripe is called; a retry reuses it."""
    trueup, payment = _trueup_payment_begin(
        caller=caller, trueup=trueup, method=PaymentMethod.INVOICE
    )
    if payment.invoice_id:
        return payment
    organisation = trueup.licence.licensee
    email = organisation.contact_email or (caller.user.email if caller.user else "")
    with _stripe_refusal_fails(payment):
        invoice = stripe_client.invoice_create_and_send(
            idempotency_key=payment.idempotency_key,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            description=_description(trueup),
            customer_email=email,
            customer_name=organisation.name,
            metadata=_metadata(trueup, payment),
            days_until_due=settings.INVOICE_DAYS_UNTIL_DUE,
        )
    Payment.objects.filter(pk=payment.pk).update(
        invoice_id=invoice["id"], invoice_url=invoice.get("hosted_invoice_url") or ""
    )
    payment.refresh_from_db()
    return payment


def trueup_checkout_start(
    *, caller: Caller, trueup: TrueUp, return_base_url: str | None = None
) -> Payment:
    """A Stripe Checkout Session (pay by card) for the true-up's amount, as for a licence's
    price; the payment carries its URL. The webhook (``checkout.session.completed``) books it
    and marks the true-up paid; an invoice sent earlier stays payable until then."""
    trueup, payment = _trueup_payment_begin(
        caller=caller, trueup=trueup, method=PaymentMethod.CHECKOUT
    )
    if payment.checkout_url and payment.status == PaymentStatus.PENDING:
        return payment
    base = (return_base_url or settings.BLANKET_BASE_URL).rstrip("/")
    licence_url = f"{base}/licences/{trueup.licence_id}/"
    with _stripe_refusal_fails(payment):
        session = stripe_client.checkout_session_create(
            idempotency_key=f"{payment.idempotency_key}:session",
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            description=_description(trueup),
            success_url=f"{licence_url}?checkout=trueup_paid&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{licence_url}?checkout=cancelled",
            metadata=_metadata(trueup, payment),
            customer_email=caller.user.email if caller.user else None,
        )
    Payment.objects.filter(pk=payment.pk).update(
        checkout_session_id=session["id"],
        checkout_url=session.get("url") or "",
        status=PaymentStatus.PENDING,
    )
    payment.refresh_from_db()
    return payment


def trueup_waive(*, caller: Caller, trueup: TrueUp, reason: str) -> TrueUp:
    """Staff waive an open true-up (with a reason); a later overrun is then priced as if it
    had not been due. Only an open one (not yet invoiced) is waived."""
    if not caller.is_staff:
        raise PermissionError_("Only society staff waive a true-up.")
    reason = (reason or "").strip()
    if not reason:
        raise LicensingError(
            "Say why the true-up is waived.", code="invalid", details={"reason": ["Required."]}
        )
    with transaction.atomic():
        trueup = TrueUp.objects.select_for_update().get(pk=trueup.pk)
        if trueup.status != TrueUpStatus.OPEN:
            raise ConflictError(f"The true-up is {trueup.status}.", code="trueup_not_open")
        trueup.status = TrueUpStatus.WAIVED
        trueup.reason = reason[:500]
        trueup.closed_at = timezone.now()
        trueup.save(update_fields=["status", "reason", "closed_at"])
        audit_record(
            action="trueup.waive",
            caller=caller,
            organisation=trueup.licence.licensee,
            obj=trueup,
            details={"reason": reason, "amount_due_minor": trueup.amount_due_minor},
        )
    return trueup
