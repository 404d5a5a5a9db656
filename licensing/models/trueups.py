"""True-ups: a licence priced on a training-volume tier whose accepted declarations overran it.

One row per (licence, tier due): re-processing or superseding a declaration finds the row and
creates no second one. The amount due is the price at the tier due less what was paid for the
licence (its price and earlier true-ups), never negative; the licensee pays it through the
licence's payment path, by Stripe Invoice or by card (Stripe Checkout): every attempt is a
``Payment`` with ``for_trueup`` set; ``TrueUp.payment`` is the invoice sent, then the payment
that settled it.

An unpaid (open or invoiced) true-up is withdrawn when a corrected declaration lowers the
term's volume below its tier (``reason`` says so); a paid one stays paid. A withdrawn row
leaves the tier free for a new true-up if the volume rises again.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from licensing.models.declarations import UsageDeclaration
from licensing.models.licences import Licence, Payment, Quote


class TrueUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    INVOICED = "invoiced", "Invoiced"
    PAID = "paid", "Paid"
    WAIVED = "waived", "Waived"
    WITHDRAWN = "withdrawn", "Withdrawn"


class TrueUp(models.Model):
    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="trueups")
    declaration = models.ForeignKey(
        UsageDeclaration,
        on_delete=models.PROTECT,
        related_name="trueups",
        help_text="The accepted declaration that revealed the overrun",
    )
    quote = models.OneToOneField(
        Quote, on_delete=models.PROTECT, related_name="trueup", help_text="The true-up quote"
    )
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="trueup"
    )
    declared_volume = models.BigIntegerField(help_text="Accepted tokens declared for the term")
    tier_paid = models.CharField(max_length=100)
    tier_due = models.CharField(max_length=100)
    price_paid_minor = models.BigIntegerField(help_text="Licence price plus earlier true-ups")
    price_due_minor = models.BigIntegerField(help_text="The price at the tier due")
    amount_due_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=10, choices=TrueUpStatus.choices, default=TrueUpStatus.OPEN
    )
    created_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=500, blank=True, help_text="Why waived or withdrawn")
    closed_at = models.DateTimeField(null=True, blank=True, help_text="When waived or withdrawn")

    organisation_field = "licence__licensee"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["licence", "tier_due"],
                condition=~models.Q(status="withdrawn"),
                name="trueup_one_per_tier",
            ),
            models.CheckConstraint(
                condition=models.Q(amount_due_minor__gte=0), name="trueup_amount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"True-up {self.pk}: licence {self.licence_id} {self.tier_paid} -> {self.tier_due}"
