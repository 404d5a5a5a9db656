"""True-up: when a licence is priced on a training-volume tier, its accepted token declarations
for the term are checked against the tier paid for; an overrun opens a ``TrueUp`` with a quote
for the difference, which the licensee (or staff) invoices through the licence's payment path.

``trueup_check`` runs in the transaction that accepts a declaration (the licence row locked).
It is idempotent: one true-up per (licence, tier due), so re-processing or superseding a
declaration finds the existing row. The amount due is the price at the tier due less what the
licence has cost so far (its price and earlier, unwaived true-ups), never negative.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
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


def licence_declared_volume(*, licence_id: int) -> int:
    """Tokens declared for the licence's term: the sum over its accepted declarations (the
    newest per model and period - supersession leaves one accepted)."""
    total = UsageDeclaration.objects.filter(
        licence_id=licence_id, status=DeclarationStatus.ACCEPTED, unit=UsageUnit.TOKENS
    ).aggregate(total=Sum("declared_quantity"))["total"]
    return int(total or 0)


def trueup_check(*, declaration: UsageDeclaration) -> TrueUp | None:
    """After ``declaration`` is accepted: the true-up its licence now owes, if any (created
    once per tier due; the caller's transaction)."""
    if declaration.status != DeclarationStatus.ACCEPTED or declaration.unit != UsageUnit.TOKENS:
        return None
    licence = declaration.licence
    quote = licence.quote
    if quote is None or not quote.tier:
        return None
    product = licence.product
    if not product.tiers.filter(volume_to__isnull=False).exists():
        return None  # the tariff does not depend on training volume
    earlier = licence.trueups.exclude(status=TrueUpStatus.WAIVED).order_by("-price_due_minor")
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
    volume = licence_declared_volume(licence_id=licence.pk)
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
    existing = licence.trueups.filter(tier_due=price.tier).first()
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


def trueup_invoice_start(*, caller: Caller, trueup: TrueUp) -> Payment:
    """A Stripe Invoice for the true-up, through the same boundary as a licence's invoice. The
    payment is recorded (with its idempotency key) before Stripe is called; a retry reuses it."""
    licence = trueup.licence
    _licence_check_access(caller, licence)
    with transaction.atomic():
        trueup = TrueUp.objects.select_for_update().get(pk=trueup.pk)
        if trueup.status not in (TrueUpStatus.OPEN, TrueUpStatus.INVOICED):
            raise ConflictError(f"The true-up is {trueup.status}.", code="trueup_not_payable")
        payment = trueup.payment
        reusable = payment is not None and (
            payment.status == PaymentStatus.PENDING
            or (payment.status == PaymentStatus.FAILED and payment.invoice_id)
        )
        if not reusable:
            payment = Payment.objects.create(
                licence=licence,
                method=PaymentMethod.INVOICE,
                amount_minor=trueup.amount_due_minor,
                currency=trueup.currency,
                idempotency_key=f"payment:new:{uuid.uuid4()}",
                recorded_by=caller.user,
            )
            payment.idempotency_key = f"payment:{payment.pk}:trueup"
            payment.save(update_fields=["idempotency_key"])
            trueup.payment = payment
            trueup.status = TrueUpStatus.INVOICED
            trueup.save(update_fields=["payment", "status"])
            audit_record(
                action="trueup.invoice.start",
                caller=caller,
                organisation=licence.licensee,
                obj=trueup,
                details={"payment": payment.pk, "amount_minor": payment.amount_minor},
            )
    if payment.invoice_id:
        return payment
    organisation = licence.licensee
    email = organisation.contact_email or (caller.user.email if caller.user else "")
    with _stripe_refusal_fails(payment):
        invoice = stripe_client.invoice_create_and_send(
            idempotency_key=payment.idempotency_key,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
            description=(
                f"True-up for licence {licence.pk}: {trueup.tier_paid} -> {trueup.tier_due} "
                f"({trueup.declared_volume:,} tokens declared)"
            ),
            customer_email=email,
            customer_name=organisation.name,
            metadata={
                "licence_id": str(licence.pk),
                "payment_id": str(payment.pk),
                "trueup_id": str(trueup.pk),
            },
            days_until_due=settings.INVOICE_DAYS_UNTIL_DUE,
        )
    Payment.objects.filter(pk=payment.pk).update(
        invoice_id=invoice["id"], invoice_url=invoice.get("hosted_invoice_url") or ""
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
        trueup.save(update_fields=["status"])
        audit_record(
            action="trueup.waive",
            caller=caller,
            organisation=trueup.licence.licensee,
            obj=trueup,
            details={"reason": reason, "amount_due_minor": trueup.amount_due_minor},
        )
    return trueup
