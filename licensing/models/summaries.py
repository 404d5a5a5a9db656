"""Transparency outputs kept in the licensing app.

- ``TrainingSummary``: a licensee's public summary of the content a model was trained on (EU AI
  Act Art. 53(1)(d), following the Commission's template). ``data`` holds the sections the
  platform generates from the licensee's ACCEPTED declarations for the model; the free-text
  fields are the licensee's own words. A draft may be regenerated and edited; publishing
  freezes it (published rows are never changed again), and a re-publish is a new row with the
  next ``version``.
- ``DisclosurePreference``: a rights holder's choice to receive a disclosure digest by email
  when a payout cycle is approved; ``DisclosureDigest`` records each digest (one per holder
  per cycle), written before the email goes out and stamped after, so a digest is sent once.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User


class TrainingSummaryStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"


class TrainingSummary(models.Model):
    licensee = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="training_summaries"
    )
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    version = models.PositiveIntegerField(
        default=1, help_text="1 for the first publication of this model's summary, then 2, ..."
    )
    status = models.CharField(
        max_length=10, choices=TrainingSummaryStatus.choices, default=TrainingSummaryStatus.DRAFT
    )
    data = models.JSONField(default=dict, help_text="The generated sections (figures)")
    generated_at = models.DateTimeField(default=timezone.now)

    # The licensee's own words (editable while a draft).
    contact = models.CharField(
        max_length=300, blank=True, help_text="Contact point: an email address or https URL"
    )
    placed_on_market = models.DateField(
        null=True, blank=True, help_text="Date the model was placed on the EU market"
    )
    model_description = models.TextField(blank=True)
    other_sources = models.TextField(
        blank=True,
        help_text="Other data sources: public datasets, crawled data, user data, synthetic data",
    )
    processing_narrative = models.TextField(
        blank=True, help_text="Data processing: opt-outs respected, unlawful content removed"
    )

    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    published_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "licensee"

    class Meta:
        ordering = ["model_name", "model_version", "-version", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["licensee", "model_name", "model_version", "version"],
                name="training_summary_unique_version",
            ),
            models.UniqueConstraint(
                fields=["licensee", "model_name", "model_version"],
                condition=models.Q(status="draft"),
                name="training_summary_one_draft",
            ),
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(published_at__isnull=False),
                name="training_summary_published_has_date",
            ),
        ]

    def __str__(self) -> str:
        return f"Training summary {self.model_name} {self.model_version} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.status == TrainingSummaryStatus.PUBLISHED


class DisclosurePreference(models.Model):
    """A rights holder's disclosure settings (one row per organisation, created on first save)."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="disclosure_preference"
    )
    digest_on_cycle = models.BooleanField(
        default=False, help_text="Email a disclosure digest when a payout cycle is approved"
    )
    updated_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    organisation_field = "organisation"

    def __str__(self) -> str:
        return f"Disclosure preference of {self.organisation_id}"


class DisclosureDigest(models.Model):
    """One digest email to one holder for one approved cycle. ``cycle_pk`` is the id of the
    ``royalties.Cycle`` (a plain id: licensing's tables do not depend on royalties')."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="disclosure_digests"
    )
    cycle_pk = models.BigIntegerField()
    period = models.CharField(max_length=10)
    recipients = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    organisation_field = "organisation"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "cycle_pk"], name="disclosure_digest_once_per_cycle"
            )
        ]

    def __str__(self) -> str:
        return f"Disclosure digest {self.period} for {self.organisation_id}"
