"""Payouts: approved statements become Stripe Connect transfers, once and only once.

A rights holder's `PayoutAccount` is its Stripe Connect (Express) account as Blanket last saw
it (`account.updated` webhooks and look-ups keep it current; bank details stay at Stripe). Paying
a cycle opens one `PayoutRun` and writes one `Payout` per payable statement *before* any call to
Stripe. Each payout moves `pending → submitting → sent → paid`, or ends `failed` / `reversed`
(its amount returns to the holder's balance), or waits `held` while the holder's account cannot
receive. A task claims a row by a conditional UPDATE; the transfer carries an idempotency key
made of the payout id and its attempt `generation`, which only moves on once Blanket *knows* no
transfer exists for the previous key (a definite refusal, or a look-up that found none).
`PayoutReconciliation` is the comparison of the ledger with Stripe for one cycle.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User
from royalties.models.cycles import Cycle, Statement


class PayoutAccount(models.Model):
    """A holder's connected account and what it can do, as of the last update from Stripe."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, related_name="payout_account"
    )
    stripe_account_id = models.CharField(max_length=64, unique=True)
    country = models.CharField(max_length=2)
    details_submitted = models.BooleanField(default=False)
    payouts_enabled = models.BooleanField(default=False)
    transfers_active = models.BooleanField(default=False)
    requirements_due = models.JSONField(default=list, blank=True)
    disabled_reason = models.CharField(max_length=100, blank=True)
    payout_currency = models.CharField(max_length=3, default="EUR")
    threshold_minor = models.BigIntegerField(
        default=0,
        help_text="The holder's own minimum payout; the society's minimum applies when higher",
    )
    stripe_updated = models.BigIntegerField(
        default=0, help_text="`created` of the newest account event applied (older ones skip)"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    organisation_field = "organisation"

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(threshold_minor__gte=0), name="payout_account_threshold_ok"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}: {self.stripe_account_id}"

    @property
    def can_receive(self) -> bool:
        return self.payouts_enabled and self.transfers_active

    @property
    def state(self) -> str:
        if self.can_receive:
            return "active"
        if self.details_submitted:
            return "restricted"
        return "onboarding"

    @property
    def why_not(self) -> str:
        """Why transfers cannot reach the account now, for the holder; empty when they can."""
        if self.can_receive:
            return ""
        due = ", ".join(self.requirements_due[:5])
        if not self.details_submitted:
            return "Finish connecting your payout account with Stripe" + (
                f" (still needed: {due})." if due else "."
            )
        reason = self.disabled_reason or "payouts are not enabled"
        return f"Stripe has restricted the account ({reason})" + (
            f"; it needs: {due}." if due else "."
        )


class PayoutRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"


class PayoutRun(models.Model):
    """Paying one approved cycle: who started it, whether it is paused and why."""

    cycle = models.OneToOneField(Cycle, on_delete=models.PROTECT, related_name="payout_run")
    status = models.CharField(
        max_length=10, choices=PayoutRunStatus.choices, default=PayoutRunStatus.RUNNING
    )
    pause_reason = models.TextField(blank=True)
    started_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    paused_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    organisation_field = None  # staff only

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=PayoutRunStatus.values),
                name="payout_run_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"Payout run of cycle {self.cycle_id}: {self.status}"


class PayoutStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTING = "submitting", "Submitting"
    SENT = "sent", "Sent"
    PAID = "paid", "Paid"
    HELD = "held", "Held"
    FAILED = "failed", "Failed"
    REVERSED = "reversed", "Reversed"


# Settled: nothing more will happen to the payout in this run.
SETTLED = (PayoutStatus.PAID, PayoutStatus.FAILED, PayoutStatus.REVERSED)


class Payout(models.Model):
    """One payable statement on its way to the holder's connected account."""

    run = models.ForeignKey(PayoutRun, on_delete=models.PROTECT, related_name="payouts")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="payouts")
    statement = models.OneToOneField(Statement, on_delete=models.PROTECT, related_name="payout")
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="payouts")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=12, choices=PayoutStatus.choices, default=PayoutStatus.PENDING
    )
    generation = models.PositiveIntegerField(
        default=0, help_text="Moves on only when no transfer exists under the previous key"
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    destination = models.CharField(max_length=64, blank=True)
    transfer_id = models.CharField(max_length=64, blank=True)
    amount_reversed_minor = models.BigIntegerField(default=0)
    held_reason = models.TextField(blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "holder"

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="payout_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=PayoutStatus.values), name="payout_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(amount_reversed_minor__gte=0)
                & models.Q(amount_reversed_minor__lte=models.F("amount_minor")),
                name="payout_reversal_within_amount",
            ),
            models.CheckConstraint(
                condition=~models.Q(status__in=["sent", "paid", "reversed"])
                | ~models.Q(transfer_id=""),
                name="payout_sent_has_transfer",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="payout_due_idx"),
            models.Index(fields=["holder", "created_at"], name="payout_holder_idx"),
        ]

    def __str__(self) -> str:
        return f"Payout {self.pk} {self.amount_minor} {self.currency} {self.status}"

    @property
    def transfer_group(self) -> str:
        return f"payout-{self.pk}"

    @property
    def idempotency_key(self) -> str:
        return f"payout:{self.pk}:transfer:{self.generation}"



class PayoutReturn(models.Model):
    """Money that went back to the holder's balance: a payout that failed, or a transfer
    reversal. The next cycle allocated after it brings it forward (`cycle`, set when that
    cycle is approved), so the holder is paid it again."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="returns")
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()
    reason = models.CharField(max_length=20, help_text="failed | reversed")
    ref = models.CharField(max_length=64, unique=True, help_text="payout:<id>:failed or trr_…")
    created_at = models.DateTimeField(default=timezone.now)
    cycle = models.ForeignKey(
        Cycle, on_delete=models.PROTECT, null=True, blank=True, related_name="payout_returns"
    )

    organisation_field = "holder"

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="payout_return_positive"
            )
        ]

    def __str__(self) -> str:
        return f"Return {self.ref}: {self.amount_minor}"


class PayoutReconciliation(models.Model):
    """One comparison of a cycle's payouts in the ledger with Stripe's transfers and balance
    transactions. `mismatches` lists every difference found; empty means clean."""

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="reconciliations")
    ran_at = models.DateTimeField(default=timezone.now)
    clean = models.BooleanField()
    checked = models.JSONField(default=dict)
    mismatches = models.JSONField(default=list)

    organisation_field = None  # staff only

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"Reconciliation of cycle {self.cycle_id}: {'clean' if self.clean else 'mismatch'}"
