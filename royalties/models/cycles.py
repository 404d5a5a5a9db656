"""Payout cycles: the policy they apply, their allocations, statements and suspense.

A `Cycle` turns one period's licence money (in one currency) into amounts owed to rights
holders. Each run of the engine is an `Allocation`; re-allocating before approval makes a new
one (the earlier stays, for the diff) and the cycle points at the newest. Only the approved
allocation is booked in the ledger. A `Statement` per holder per allocation carries the
holder's brought-forward balance, earnings, deductions and what is payable or carried forward;
its lines (`StatementWorkLine`, `StatementSourceLine`) are rounded inside the holder's total,
so they always add up to it. Money that belongs to no one yet is a `SuspenseItem` (by reason,
with the cycle it arose in for ageing); a `SuspenseRelease` takes it out again in a later
cycle, to a work's holders after a claim, or pro rata after the hold.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User

BASIS_POINTS = 10_000


class FallbackRule(models.TextChoices):
    PROXY = "proxy", "Usage profile of the product's other licences"
    SUSPENSE = "suspense", "Hold in suspense until a declaration arrives"


class HoldExpiry(models.TextChoices):
    REDISTRIBUTE = "redistribute", "Redistribute pro rata to the cycle's paid holders"
    RETAIN = "retain", "Keep for a stated purpose"


class DistributionPolicy(models.Model):
    """The rules a cycle applies. Versioned: a change is a new row with the next version, and a
    cycle keeps the version it was allocated with. Rows are never edited once used."""

    version = models.PositiveIntegerField(unique=True)
    admin_fee_bp = models.PositiveIntegerField(
        validators=[MaxValueValidator(BASIS_POINTS)],
        help_text="Administration fee in basis points (1500 = 15%).",
    )
    fee_bp_by_product = models.JSONField(
        default=dict, blank=True, help_text="Product code -> fee in basis points"
    )
    fee_bp_by_media = models.JSONField(
        default=dict, blank=True, help_text="Media type -> fee in basis points (beats product)"
    )
    media_weight_bp = models.JSONField(
        default=dict, blank=True, help_text="Media type -> usage weight, 10000 = 1.0"
    )
    unmatched_weight_bp = models.PositiveIntegerField(default=BASIS_POINTS)
    threshold_minor = models.BigIntegerField(
        default=0, help_text="Minimum payout, minor units; below it the balance is carried"
    )
    declaration_deadline_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days after the period's end that declarations are due"
    )
    fallback = models.CharField(
        max_length=10, choices=FallbackRule.choices, default=FallbackRule.PROXY
    )
    suspense_hold_cycles = models.PositiveSmallIntegerField(
        default=4, help_text="Cycles unmatched and unclaimed money is held for claims"
    )
    hold_expiry = models.CharField(
        max_length=12, choices=HoldExpiry.choices, default=HoldExpiry.REDISTRIBUTE
    )
    retain_purpose = models.CharField(
        max_length=300, blank=True, help_text="What retained money is used for"
    )
    author_share_ppm = models.PositiveIntegerField(
        default=500_000,
        validators=[MinValueValidator(0), MaxValueValidator(1_000_000)],
        help_text="Author's part where a work's shares leave the author/publisher split to "
        "the policy (the publisher has the rest).",
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["-version"]
        verbose_name_plural = "distribution policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(admin_fee_bp__lte=BASIS_POINTS), name="policy_fee_at_most_100"
            ),
            models.CheckConstraint(
                condition=models.Q(threshold_minor__gte=0), name="policy_threshold_not_negative"
            ),
            models.CheckConstraint(
                condition=~models.Q(hold_expiry="retain") | ~models.Q(retain_purpose=""),
                name="policy_retained_money_has_a_purpose",
            ),
        ]

    def __str__(self) -> str:
        return f"Policy v{self.version}"


class CycleStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ALLOCATING = "allocating", "Allocating"
    ALLOCATED = "allocated", "Allocated"
    APPROVED = "approved", "Approved"
    PAYING = "paying", "Paying"
    PAID = "paid", "Paid"
    CLOSED = "closed", "Closed"
    FAILED = "failed", "Failed"


class Cycle(models.Model):
    """One period's distribution in one currency; also the job row of its allocation."""

    period = models.CharField(max_length=10, help_text="2026-Q3")
    period_start = models.DateField()
    period_end = models.DateField()
    currency = models.CharField(max_length=3, default="EUR")
    policy = models.ForeignKey(DistributionPolicy, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=CycleStatus.choices, default=CycleStatus.DRAFT)
    current_allocation = models.OneToOneField(
        "Allocation", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The allocation job.
    stage = models.CharField(max_length=60, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    task_id = models.CharField(max_length=64, blank=True)

    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    allocated_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    allocated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["-period_start", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["period", "currency"], name="cycle_one_per_period"),
            models.CheckConstraint(
                condition=models.Q(period_start__lte=models.F("period_end")),
                name="cycle_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=CycleStatus.values), name="cycle_status_valid"
            ),
            models.CheckConstraint(
                # Four eyes, in the database too: the approver is never the allocator.
                condition=models.Q(approved_by__isnull=True)
                | ~models.Q(approved_by=models.F("allocated_by")),
                name="cycle_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"Cycle {self.period} {self.currency} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status == CycleStatus.ALLOCATING


class Allocation(models.Model):
    """One run of the engine for a cycle: its totals, checksum and timings."""

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="allocations")
    number = models.PositiveIntegerField()
    policy = models.ForeignKey(DistributionPolicy, on_delete=models.PROTECT, related_name="+")
    checksum = models.CharField(max_length=64)
    totals = models.JSONField(default=dict)
    releases = models.JSONField(default=list, help_text="Ids of the suspense releases it paid")
    payout_returns = models.JSONField(
        default=list, help_text="Ids of the payout returns it brought forward"
    )
    timings = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["cycle_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["cycle", "number"], name="allocation_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.cycle} allocation {self.number}"


class CycleLicence(models.Model):
    """What one licence put into an allocation: revenue recognised in the period (daily pro
    rata over its term, cumulative so nothing drifts), processing fees recognised, the pool
    (the difference), and where the pool went."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="licences")
    licence = models.ForeignKey(
        "licensing.Licence", on_delete=models.PROTECT, related_name="cycle_pools"
    )
    product_code = models.CharField(max_length=60)
    days_in_period = models.PositiveIntegerField()
    term_days = models.PositiveIntegerField()
    collected_minor = models.BigIntegerField(help_text="Paid less refunded, for the term")
    recognised_minor = models.BigIntegerField()
    processing_fee_minor = models.BigIntegerField()
    pool_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField(default=0)
    holders_minor = models.BigIntegerField(default=0)
    suspense_minor = models.BigIntegerField(default=0)
    declared = models.BooleanField(help_text="False: the policy's fallback was used")
    declarations = models.JSONField(default=list, help_text="Ids of the declarations used")

    organisation_field = "licence__licensee"

    class Meta:
        ordering = ["allocation_id", "licence_id"]
        constraints = [
            models.UniqueConstraint(fields=["allocation", "licence"], name="cycle_licence_unique"),
            models.CheckConstraint(
                condition=models.Q(pool_minor__gte=0), name="cycle_licence_pool_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.allocation}: licence {self.licence_id} pool {self.pool_minor}"


class Statement(models.Model):
    """One holder's account of one allocation of a cycle. Published when the cycle is approved."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="statements")
    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="statements")
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="statements")
    currency = models.CharField(max_length=3)
    brought_forward_minor = models.BigIntegerField(default=0)
    gross_minor = models.BigIntegerField(default=0, help_text="Earnings before the fee")
    deductions_minor = models.BigIntegerField(default=0, help_text="Administration fee")
    earned_minor = models.BigIntegerField(default=0, help_text="Earnings after the fee")
    total_minor = models.BigIntegerField(default=0)
    payable_minor = models.BigIntegerField(default=0)
    carried_forward_minor = models.BigIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "holder"

    class Meta:
        ordering = ["-cycle__period_start", "holder_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["allocation", "holder"], name="statement_one_per_holder"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total_minor=models.F("brought_forward_minor") + models.F("earned_minor")
                ),
                name="statement_total_adds_up",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    total_minor=models.F("payable_minor") + models.F("carried_forward_minor")
                ),
                name="statement_total_is_paid_or_carried",
            ),
            models.CheckConstraint(
                condition=models.Q(earned_minor__gte=0)
                & models.Q(payable_minor__gte=0)
                & models.Q(carried_forward_minor__gte=0),
                name="statement_amounts_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["holder", "cycle"], name="statement_holder_idx")]

    def __str__(self) -> str:
        return f"Statement {self.cycle.period} {self.holder_id}"


class StatementWorkLine(models.Model):
    """A holder's earnings from one work in the allocation (work empty: a pro-rata
    redistribution). Written in bulk; rows go with their statement."""

    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="work_lines", db_constraint=False
    )
    work = models.ForeignKey(
        "licensing.Work",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    quantity = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField()

    organisation_field = "statement__holder"

    class Meta:
        ordering = ["statement_id", "-amount_minor", "work_id"]

    def __str__(self) -> str:
        return f"{self.statement_id}: work {self.work_id} {self.amount_minor}"


class StatementSourceLine(models.Model):
    """A holder's earnings from one licence (or one suspense release) in the allocation."""

    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="source_lines", db_constraint=False
    )
    licence = models.ForeignKey(
        "licensing.Licence",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    product_code = models.CharField(max_length=60, blank=True)
    release_ref = models.CharField(max_length=100, blank=True)
    amount_minor = models.BigIntegerField()

    organisation_field = "statement__holder"

    class Meta:
        ordering = ["statement_id", "-amount_minor"]

    def __str__(self) -> str:
        return f"{self.statement_id}: licence {self.licence_id} {self.amount_minor}"


class SuspenseReason(models.TextChoices):
    UNMATCHED = "unmatched", "Unmatched usage"
    DISPUTED = "disputed", "Disputed work"
    RESERVED = "reserved", "Usage of a reserved work"
    UNASSIGNED_SHARE = "unassigned_share", "Shares below 100%"
    NO_USAGE = "no_usage", "No declaration and no proxy"
    UNDISTRIBUTABLE = "undistributable", "Nobody to redistribute to"


class SuspenseItem(models.Model):
    """Money held by an allocation for a reason and a reference (an identifier, a work, a
    licence). Booked when the cycle is approved; released by a later cycle.

    Written only by the allocation's write, with their allocation, in its transaction (hundreds
    of thousands a cycle at a society's size). So the two foreign keys have no database
    constraint, as the statement lines: their deferred checks took 6-8 s at the commit of a
    500k-item allocation, holding PostgreSQL while the site waited. Deletes go through Django
    (CASCADE from the allocation, PROTECT for the cycle). The allocation is indexed by
    ``suspense_allocation_idx`` (allocation, reason), not by a second index of its own."""

    allocation = models.ForeignKey(
        Allocation,
        on_delete=models.CASCADE,
        related_name="suspense_items",
        db_constraint=False,
        db_index=False,
    )
    cycle = models.ForeignKey(
        Cycle, on_delete=models.PROTECT, related_name="suspense_items", db_constraint=False
    )
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=20, choices=SuspenseReason.choices)
    ref = models.CharField(max_length=2100, help_text="scheme:identifier, work id or licence id")
    amount_minor = models.BigIntegerField()

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["cycle_id", "reason", "-amount_minor"]
        indexes = [
            models.Index(fields=["allocation", "reason"], name="suspense_allocation_idx"),
            models.Index(fields=["reason", "ref"], name="suspense_ref_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount_minor__gt=0), name="suspense_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.ref} {self.amount_minor} {self.currency}"


class SuspenseRelease(models.Model):
    """Money leaving suspense: decided between cycles (by staff after a claim, or by the hold
    rule), consumed by the next cycle's allocation, which books it."""

    class Kind(models.TextChoices):
        TO_WORK = "to_work", "To a work's holders (after a claim or resolution)"
        REDISTRIBUTE = "redistribute", "Redistributed pro rata after the hold"
        RETAIN = "retain", "Retained for the policy's stated purpose"

    item = models.OneToOneField(SuspenseItem, on_delete=models.PROTECT, related_name="release")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    work = models.ForeignKey(
        "licensing.Work", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=300)
    cycle = models.ForeignKey(
        Cycle,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="releases",
        help_text="The cycle that paid it out (set when that cycle is approved)",
    )
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(kind="to_work") | models.Q(work__isnull=False),
                name="release_to_work_names_the_work",
            ),
        ]

    def __str__(self) -> str:
        return f"Release of {self.item_id} ({self.kind})"
