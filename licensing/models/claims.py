"""The unmatched pool's claims and dismissals.

A rights holder claims an unmatched identifier (scheme, normalised identifier) for one of its
works; staff accept the claim (the identifier is added to the work and the usage moves, exactly,
in every accepted declaration that held it) or reject it with a reason. Staff may also dismiss an
identifier: it stays in the declarations' unmatched pool (the money is not moved) but leaves the
staff queue.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User
from licensing.models.repertoire import Work


class ClaimStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class UnmatchedClaim(models.Model):
    claimant = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="unmatched_claims"
    )
    work = models.ForeignKey(Work, on_delete=models.PROTECT, related_name="unmatched_claims")
    scheme = models.CharField(max_length=10)
    identifier = models.CharField(max_length=2000, help_text="Normalised")
    status = models.CharField(
        max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.PENDING
    )
    note = models.TextField(blank=True, help_text="The claimant's note; staff's reason")
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    organisation_field = "claimant"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["claimant", "scheme", "identifier"],
                condition=models.Q(status="pending"),
                name="unmatched_claim_one_pending_per_claimant",
            ),
        ]
        indexes = [models.Index(fields=["scheme", "identifier"], name="unmatched_claim_idx")]

    def __str__(self) -> str:
        return f"Claim {self.pk} {self.scheme}:{self.identifier} -> work {self.work_id}"


class UnmatchedDismissal(models.Model):
    """Staff set an unmatched identifier aside: it leaves the queue, its usage stays unmatched."""

    scheme = models.CharField(max_length=10)
    identifier = models.CharField(max_length=2000)
    reason = models.TextField(blank=True)
    dismissed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dismissed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "identifier"], name="unmatched_dismissal_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Dismissed {self.scheme}:{self.identifier}"
