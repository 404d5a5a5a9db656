"""A cycle's allocation fanned out: the run, its partitions and their exact partial sums.

With more than one partition (`ROYALTIES_ALLOCATION_PARTITIONS`), an allocation is an
`AllocationRun`: the plan (the licence pools, releases and payout returns it allocates, frozen
when it starts) and one `AllocationPartition` per group of licences. Each map task writes its
partition's exact scaled sums (`AllocationPartial`, `AllocationPartialLicence`) and marks the
partition done in one transaction; the last one to do so hands the run to the reduce task,
which sums the partials into the `Allocation`. The database is the source of truth: no money
travels in task arguments, chord callbacks or a result backend, and the partials (scratch,
deleted once reduced) are integers, `amount_minor × scale + amount_sub`.

`AllocationResidue`: each holder's rounding residue after an allocation (sub-units), which the
next cycle's allocation carries so that rounding never drifts over cycles.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation
from royalties.models.cycles import Allocation, Cycle


class AllocationRunState(models.TextChoices):
    MAPPING = "mapping", "Mapping the partitions"
    REDUCING = "reducing", "Reducing the partials"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AllocationRun(models.Model):
    """One attempt at allocating a cycle over partitions of its licences (the job's plan)."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="allocation_runs")
    state = models.CharField(
        max_length=10, choices=AllocationRunState.choices, default=AllocationRunState.MAPPING
    )
    scale = models.BigIntegerField(help_text="Sub-units per minor unit of the partials")
    partitions = models.PositiveIntegerField()
    partitions_done = models.PositiveIntegerField(default=0)
    licences = models.JSONField(
        default=list, help_text="The licence pools allocated (recognition figures, declarations)"
    )
    releases = models.JSONField(default=list, help_text="Ids of the suspense releases it pays")
    payout_returns = models.JSONField(default=list, help_text="Ids of the payout returns")
    allocation = models.OneToOneField(
        Allocation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["cycle_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(partitions_done__lte=models.F("partitions")),
                name="allocation_run_done_within_partitions",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cycle} run {self.pk} ({self.state})"


class AllocationPartition(models.Model):
    """A group of licences allocated by one map task: `licence_ids` priced here, `donor_ids`
    read only for their usage (the proxy pool of their product is allocated here)."""

    run = models.ForeignKey(AllocationRun, on_delete=models.CASCADE, related_name="partition_rows")
    index = models.PositiveIntegerField()
    licence_ids = models.JSONField(default=list)
    donor_ids = models.JSONField(default=list)
    done_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(default=0)

    organisation_field = None  # the society's own business: staff only

    class Meta:
        ordering = ["run_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="allocation_partition_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run} partition {self.index}"


class PartialKind(models.IntegerChoices):
    FEE = 0, "Administration fee of a product"
    HOLDER = 1, "Holder earnings (and attributable fee)"
    SUSPENSE = 2, "Suspense bucket"
    WORK_LINE = 3, "Holder x work line"
    SOURCE_LINE = 4, "Holder x product line"


class AllocationPartial(models.Model):
    """One exact scaled sum of a partition, before any rounding: `amount_minor × scale +
    amount_sub` sub-units (0 <= amount_sub < scale), the same for `fee_*` (holders only).
    `label` is the product (fees, source lines) or the suspense reason. Written with COPY."""

    partition = models.ForeignKey(
        AllocationPartition, on_delete=models.CASCADE, related_name="partials"
    )
    kind = models.PositiveSmallIntegerField(choices=PartialKind.choices)
    holder_id = models.BigIntegerField(null=True, blank=True)
    work_id = models.BigIntegerField(null=True, blank=True)
    label = models.CharField(max_length=60, blank=True)
    ref = models.CharField(max_length=2100, blank=True)
    quantity = models.BigIntegerField(default=0)
    amount_minor = models.BigIntegerField(default=0)
    amount_sub = models.BigIntegerField(default=0)
    fee_minor = models.BigIntegerField(default=0)
    fee_sub = models.BigIntegerField(default=0)

    organisation_field = None  # the society's own business: staff only

    def __str__(self) -> str:
        return f"{self.partition}: {self.get_kind_display()} {self.amount_minor}"


class AllocationPartialLicence(models.Model):
    """A licence a partition saw: priced there (its pool's parts, rounded inside the pool) or
    only read as a donor; `direct` when priced on its own usage."""

    partition = models.ForeignKey(
        AllocationPartition, on_delete=models.CASCADE, related_name="partial_licences"
    )
    licence_id = models.BigIntegerField()
    product_code = models.CharField(max_length=60)
    priced = models.BooleanField()
    direct = models.BooleanField()
    pool_minor = models.BigIntegerField(default=0)
    fee_minor = models.BigIntegerField(default=0)
    holders_minor = models.BigIntegerField(default=0)
    suspense_minor = models.BigIntegerField(default=0)

    organisation_field = None  # the society's own business: staff only

    def __str__(self) -> str:
        return f"{self.partition}: licence {self.licence_id}"


class AllocationResidue(models.Model):
    """A holder's rounding residue after an allocation: the exact scaled amounts it was owed
    over every allocated cycle minus what it was given, in sub-units (1/scale of a minor unit;
    negative when rounded up more than down). The next cycle's allocation reads it."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="residues")
    holder = models.ForeignKey(
        Organisation, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    residue_sub = models.BigIntegerField()

    organisation_field = "holder"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["allocation", "holder"], name="allocation_residue_one_per_holder"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.allocation}: holder {self.holder_id} residue {self.residue_sub}"
