"""Usage declarations: what a licensee trained a model on in a period, matched to works.

One ``UsageDeclaration`` per upload (or nil filing) for a licence, a model (name and version)
and a period; it is also the job row of its ingestion (stage, percent, rows, errors). Its
aggregates are written once, in the transaction that accepts it:

- ``DeclarationWorkUsage``: (declaration, work) -> exact quantity and line count. Usage of a
  reserved work is kept on the same table with ``reserved=True`` (flagged for compliance, its
  money held), so "what did this licensee use of work W" is one lookup either way.
- ``DeclarationUnmatched``: (declaration, scheme, identifier) -> quantity and lines that found
  no work, including identifiers that do not validate (``valid=False``, with the reason).
- ``DeclarationReservedIdentifier``: (declaration, scheme, identifier) -> quantity and lines
  of an identifier covered by a registered ``Reservation`` (identifier, URL prefix or domain)
  that found no work: reserved usage (flagged for compliance, money held), kept out of the
  unmatched pool so nobody claims it. A held identifier that does name a work makes that
  work's ``DeclarationWorkUsage`` reserved instead.

Quantities are BigIntegers and exact: matched + reserved + unmatched == declared.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import User
from licensing.models.licences import Licence
from licensing.models.repertoire import Reservation, Work


class DeclarationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    PROCESSING = "processing", "Processing"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


class UsageUnit(models.TextChoices):
    TOKENS = "tokens", "Tokens"
    ITEMS = "items", "Items"
    BYTES = "bytes", "Bytes"
    SECONDS = "seconds", "Seconds"
    ATTRIBUTION = "attribution", "Attribution score"


class UsageDeclaration(models.Model):
    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="declarations")
    period = models.CharField(max_length=10, help_text="2026-Q3 (quarter) or 2026-07 (month)")
    period_start = models.DateField(help_text="First day covered (inside the licence term)")
    period_end = models.DateField(help_text="Last day covered (inside the licence term)")
    model_name = models.CharField(max_length=200)
    model_version = models.CharField(max_length=100)
    unit = models.CharField(max_length=12, choices=UsageUnit.choices, blank=True)
    status = models.CharField(
        max_length=12, choices=DeclarationStatus.choices, default=DeclarationStatus.SUBMITTED
    )
    supersedes = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="superseded_by"
    )
    nil = models.BooleanField(default=False, help_text="Explicitly nothing used in the period")
    deadline = models.DateField()
    late = models.BooleanField(default=False)

    lines = models.BigIntegerField(default=0)
    declared_quantity = models.BigIntegerField(default=0)
    matched_lines = models.BigIntegerField(default=0)
    matched_quantity = models.BigIntegerField(default=0)
    unmatched_lines = models.BigIntegerField(default=0)
    unmatched_quantity = models.BigIntegerField(default=0)
    reserved_lines = models.BigIntegerField(default=0)
    reserved_quantity = models.BigIntegerField(default=0)
    works_matched = models.BigIntegerField(default=0)

    # The ingestion job.
    stage = models.CharField(max_length=40, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors, for pages.")
    error_report = models.FileField(upload_to="declarations/errors/%Y/%m/", blank=True)
    message = models.TextField(blank=True)
    file = models.FileField(upload_to="declarations/%Y/%m/", blank=True)
    file_format = models.CharField(max_length=10, blank=True, help_text="csv or jsonl")
    original_name = models.CharField(max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.BigIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage")

    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "licence__licensee"

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["licence", "model_name", "model_version", "period_start"],
                condition=models.Q(status="accepted"),
                name="declaration_one_accepted_per_model_period",
            ),
            models.CheckConstraint(
                condition=models.Q(period_start__lte=models.F("period_end")),
                name="declaration_period_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(declared_quantity__gte=0)
                & models.Q(matched_quantity__gte=0)
                & models.Q(unmatched_quantity__gte=0)
                & models.Q(reserved_quantity__gte=0),
                name="declaration_quantities_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["licence", "status"], name="declaration_licence_status_idx")
        ]

    def __str__(self) -> str:
        return (
            f"Declaration {self.pk} {self.model_name} {self.model_version} {self.period} "
            f"({self.status})"
        )

    @property
    def is_running(self) -> bool:
        return self.status in (DeclarationStatus.SUBMITTED, DeclarationStatus.PROCESSING)


class DeclarationWorkUsage(models.Model):
    """A declaration's usage of one work. ``reserved``: when the declaration was matched, the
    work was reserved for the licence's uses (its consent), or a line naming it was covered by
    a reservation in force for them (flagged for compliance, money held).

    Keyed by (declaration, work). The two foreign keys have no database constraint: a
    million-line aggregate would otherwise pay a million referential checks (and row locks on
    the works) at commit - 6 of the 11 seconds of the write in the benchmark. The service
    writes these rows only in the transaction that accepts the declaration and checks there
    that every work exists; deletes go through Django (CASCADE from the declaration, PROTECT
    for the work).

    Indexed by the primary key (readers by declaration: reports, the payout cycle's usage)
    and by ``work`` (the disclosures to rights holders read a page of works' usage). The
    ``work`` index was most of the cost of writing these rows (about a second per
    million-row declaration, growing with the table): migration 0009 dropped it while no
    reader selected by work, 0012 restores it for the disclosures.

    On PostgreSQL the table is partitioned by declaration (LIST, migration 0014): a
    declaration of ``DECLARATION_PARTITION_ROWS`` matched works or more (default 100,000)
    fills a table of its own, builds its two indexes in bulk and attaches it as its
    partition, so its cost no longer grows with the declarations stored; the others (and
    the rows stored before 0014) live in the DEFAULT partition. Same name, columns, keys and
    indexes: readers see one table.
    """

    pk = models.CompositePrimaryKey("declaration_id", "work_id")
    declaration = models.ForeignKey(
        UsageDeclaration,
        on_delete=models.CASCADE,
        related_name="work_usage",
        db_constraint=False,
        db_index=False,  # the primary key (declaration, work) serves it
    )
    work = models.ForeignKey(
        Work,
        on_delete=models.PROTECT,
        related_name="declared_usage",
        db_constraint=False,
    )
    quantity = models.BigIntegerField()
    lines = models.BigIntegerField()
    reserved = models.BooleanField(default=False)

    organisation_field = "declaration__licence__licensee"

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0) & models.Q(lines__gte=0),
                name="declaration_work_usage_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.declaration_id}: work {self.work_id} x {self.quantity}"


class DeclarationUnmatched(models.Model):
    """Usage that found no work, per (scheme, identifier) - the normalised identifier when it
    is valid, else the declared text with the reason in ``note``."""

    declaration = models.ForeignKey(
        UsageDeclaration,
        on_delete=models.CASCADE,
        related_name="unmatched",
        db_constraint=False,  # written only with its declaration, as the work usage above
    )
    scheme = models.CharField(max_length=10)
    identifier = models.CharField(max_length=2000)
    valid = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    quantity = models.BigIntegerField()
    lines = models.BigIntegerField()
    title = models.CharField(max_length=500, blank=True, help_text="A title from the file")

    organisation_field = "declaration__licence__licensee"

    class Meta:
        ordering = ["-quantity", "scheme", "identifier"]
        indexes = [models.Index(fields=["scheme", "identifier"], name="declaration_unmatched_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0) & models.Q(lines__gte=0),
                name="declaration_unmatched_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.declaration_id}: {self.scheme}:{self.identifier} x {self.quantity}"


class DeclarationReservedIdentifier(models.Model):
    """Usage of an identifier covered by a reservation in force for the licence's uses that
    matched no work: counted as reserved (never unmatched), flagged for compliance. Per
    (declaration, scheme, normalised identifier); ``reservation``: the oldest covering it."""

    declaration = models.ForeignKey(
        UsageDeclaration,
        on_delete=models.CASCADE,
        related_name="reserved_identifiers",
        db_constraint=False,  # written only with its declaration, as the work usage above
    )
    scheme = models.CharField(max_length=10)
    identifier = models.CharField(max_length=2000)
    quantity = models.BigIntegerField()
    lines = models.BigIntegerField()
    title = models.CharField(max_length=500, blank=True, help_text="A title from the file")
    reservation = models.ForeignKey(
        Reservation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="declared_usage",
        db_constraint=False,
    )

    organisation_field = "declaration__licence__licensee"

    class Meta:
        ordering = ["-quantity", "scheme", "identifier"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quantity__gte=0) & models.Q(lines__gte=0),
                name="declaration_reserved_identifier_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.declaration_id}: reserved {self.scheme}:{self.identifier} x {self.quantity}"
