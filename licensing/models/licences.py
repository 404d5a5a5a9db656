"""Licence products and tariffs, quotes, licences, payments, Stripe events and certificates.

Money is integer minor units beside a currency. A licence moves
quoted -> pending_payment -> active -> expired | cancelled; payments and refunds are recorded
here and booked in the ledger (`royalties`) by the services.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User


class DeclarationPeriod(models.TextChoices):
    QUARTER = "quarter", "Quarterly"
    MONTH = "month", "Monthly"


class LicenceProduct(models.Model):
    """A blanket licence the society sells, with its tariff (tiers below)."""

    code = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    uses = models.JSONField(default=list, help_text="training, fine_tuning, rag")
    media_types = models.JSONField(default=list, help_text="empty means every media type")
    territory = models.CharField(
        max_length=200, default="WORLD", help_text="WORLD or ISO 3166 codes, comma-separated"
    )
    term_months = models.PositiveSmallIntegerField(default=12)
    declaration_period = models.CharField(
        max_length=10,
        choices=DeclarationPeriod.choices,
        default=DeclarationPeriod.QUARTER,
        help_text="How often licensees declare usage: calendar quarters or months.",
    )
    currency = models.CharField(max_length=3, default="EUR")
    minimum_fee_minor = models.BigIntegerField(default=0)
    ai_revenue_share_bp = models.PositiveIntegerField(
        null=True, blank=True, help_text="Share of the licensee's AI revenue, basis points"
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(minimum_fee_minor__gte=0),
                name="product_minimum_fee_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="product_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TariffTier(models.Model):
    """Applies when revenue_from <= annual revenue < revenue_to and volume_from <= training
    volume < volume_to (empty upper bounds are open). The price covers the product's term."""

    product = models.ForeignKey(LicenceProduct, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=100)
    price_minor = models.BigIntegerField()
    revenue_from_minor = models.BigIntegerField(default=0)
    revenue_to_minor = models.BigIntegerField(null=True, blank=True)
    volume_from = models.BigIntegerField(default=0)
    volume_to = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["product_id", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(price_minor__gte=0), name="tier_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product.code}: {self.name}"


class Quote(models.Model):
    """A price for one licensee and product, with its breakdown, valid until a stated time."""

    licensee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="quotes")
    product = models.ForeignKey(LicenceProduct, on_delete=models.PROTECT, related_name="quotes")
    annual_revenue_minor = models.BigIntegerField()
    training_volume = models.BigIntegerField()
    ai_revenue_minor = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    tier = models.CharField(max_length=100, blank=True)
    breakdown = models.JSONField(default=list)
    valid_until = models.DateTimeField()
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = "licensee"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Quote {self.pk} {self.product.code} {self.amount_minor} {self.currency}"


class LicenceStatus(models.TextChoices):
    QUOTED = "quoted", "Quoted"
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class PaymentMethod(models.TextChoices):
    CHECKOUT = "checkout", "Card (Stripe Checkout)"
    INVOICE = "invoice", "Invoice (net terms)"
    OFFLINE = "offline", "Offline payment"


class Licence(models.Model):
    licensee = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="licences")
    product = models.ForeignKey(LicenceProduct, on_delete=models.PROTECT, related_name="licences")
    quote = models.OneToOneField(
        Quote, on_delete=models.PROTECT, null=True, blank=True, related_name="licence"
    )
    status = models.CharField(
        max_length=20, choices=LicenceStatus.choices, default=LicenceStatus.QUOTED
    )
    payment_method = models.CharField(max_length=10, choices=PaymentMethod.choices, blank=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    uses = models.JSONField(default=list)
    media_types = models.JSONField(default=list)
    territory = models.CharField(max_length=200)
    starts_on = models.DateField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "licensee"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gte=0), name="licence_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="active")
                | (models.Q(starts_on__isnull=False) & models.Q(ends_on__isnull=False)),
                name="active_licence_has_a_term",
            ),
        ]

    def __str__(self) -> str:
        return f"Licence {self.pk} {self.product.code} for {self.licensee.code} ({self.status})"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"


class Payment(models.Model):
    """One attempt to collect a licence's price, by Checkout, Stripe Invoice or offline."""

    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=10, choices=PaymentMethod.choices)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    amount_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField(default=0, help_text="Processor fee, from Stripe")
    refunded_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    idempotency_key = models.CharField(max_length=200, unique=True)
    checkout_session_id = models.CharField(max_length=255, blank=True, db_index=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    invoice_id = models.CharField(max_length=255, blank=True, db_index=True)
    invoice_url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True)
    balance_transaction_id = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=200, blank=True, help_text="Offline: bank reference")
    failure_message = models.CharField(max_length=500, blank=True)
    recorded_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)
    for_trueup = models.ForeignKey(
        "licensing.TrueUp",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="payments",
        help_text="Set when the payment collects a true-up, not the licence's price",
    )

    organisation_field = "licence__licensee"

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="payment_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(refunded_minor__gte=0)
                & models.Q(refunded_minor__lte=models.F("amount_minor")),
                name="payment_refund_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment {self.pk} {self.method} {self.amount_minor} {self.currency}"


class Refund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    stripe_refund_id = models.CharField(max_length=255, unique=True)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = "payment__licence__licensee"

    def __str__(self) -> str:
        return f"Refund {self.stripe_refund_id} {self.amount_minor} {self.currency}"


class StripeEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class StripeEvent(models.Model):
    """Every verified webhook event, stored once by its id before it is processed."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    account = models.CharField(max_length=255, blank=True, help_text="Connect account, if any")
    created = models.DateTimeField(help_text="When Stripe created the event")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=StripeEventStatus.choices, default=StripeEventStatus.RECEIVED
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type} ({self.status})"


class Certificate(models.Model):
    """The signed statement that a licence is active: canonical JSON + Ed25519 signature."""

    licence = models.OneToOneField(Licence, on_delete=models.PROTECT, related_name="certificate")
    serial = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    signature = models.CharField(max_length=200, help_text="base64url Ed25519 signature")
    key_id = models.CharField(max_length=64)
    issued_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=200, blank=True)

    organisation_field = "licence__licensee"

    def __str__(self) -> str:
        return f"Certificate {self.serial}"
