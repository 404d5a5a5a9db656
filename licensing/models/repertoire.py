"""The repertoire: catalogues, works, identifiers, ownership shares, consent, conflicts,
reservations, and the catalogue import jobs that fill it.

Invariants live in services and in the database: a work's shares sum to at most 100% (a
trigger refuses more, whoever writes), shares are exact integers (parts per million of the
whole, i.e. percent with four decimals), identifiers are stored normalised.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Organisation, User

FULL_SHARE_PPM = 1_000_000  # 100.0000 %


class MediaType(models.TextChoices):
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    AUDIO = "audio", "Audio"
    VIDEO = "video", "Video"
    CODE = "code", "Code"
    DATASET = "dataset", "Dataset"


class Consent(models.TextChoices):
    LICENSED = "licensed", "Licensed"
    RESERVED = "reserved", "Reserved"


class Use(models.TextChoices):
    TRAINING = "training", "Training"
    FINE_TUNING = "fine_tuning", "Fine-tuning"
    RAG = "rag", "Retrieval (RAG)"


class ConsentRegime(models.TextChoices):
    OPT_IN = "opt_in", "Opt-in: only works enrolled as licensed"
    OPT_OUT = "opt_out", "Opt-out (extended collective licensing): all in scope unless reserved"


class IdentifierScheme(models.TextChoices):
    ISBN = "isbn", "ISBN"
    ISSN = "issn", "ISSN"
    DOI = "doi", "DOI"
    ISRC = "isrc", "ISRC"
    ISWC = "iswc", "ISWC"
    URL = "url", "URL"
    SHA256 = "sha256", "SHA-256"
    ISCC = "iscc", "ISCC"


class ShareRole(models.TextChoices):
    AUTHOR = "author", "Author"
    PUBLISHER = "publisher", "Publisher"
    PERFORMER = "performer", "Performer"
    PRODUCER = "producer", "Producer"
    OTHER = "other", "Other"


class SocietySettings(models.Model):
    """The society's repertoire settings. One row (pk=1); read with `society_settings_get()`."""

    consent_regime = models.CharField(
        max_length=10, choices=ConsentRegime.choices, default=ConsentRegime.OPT_IN
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Society settings ({self.consent_regime})"


class Catalogue(models.Model):
    owner = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="catalogues")
    name = models.CharField(max_length=200)
    media_type = models.CharField(max_length=10, choices=MediaType.choices)
    default_consent = models.CharField(
        max_length=10, choices=Consent.choices, default=Consent.LICENSED
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(
        default=timezone.now,
        help_text="Last change (name or default consent); set by the services, for feeds.",
    )

    organisation_field = "owner"

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="catalogue_name_unique"),
            models.CheckConstraint(
                condition=models.Q(media_type__in=MediaType.values), name="catalogue_media_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(default_consent__in=Consent.values),
                name="catalogue_consent_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WorkStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DISPUTED = "disputed", "Disputed"


class Work(models.Model):
    """One work in a catalogue. Consent per use; an empty value inherits the catalogue's default."""

    catalogue = models.ForeignKey(Catalogue, on_delete=models.CASCADE, related_name="works")
    work_ref = models.CharField(max_length=200, help_text="The holder's own key for the work.")
    title = models.CharField(max_length=500)
    media_type = models.CharField(max_length=10, choices=MediaType.choices)
    status = models.CharField(max_length=10, choices=WorkStatus.choices, default=WorkStatus.ACTIVE)
    consent_training = models.CharField(max_length=10, choices=Consent.choices, blank=True)
    consent_fine_tuning = models.CharField(max_length=10, choices=Consent.choices, blank=True)
    consent_rag = models.CharField(max_length=10, choices=Consent.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    organisation_field = "catalogue__owner"

    class Meta:
        ordering = ["catalogue_id", "work_ref"]
        constraints = [
            models.UniqueConstraint(fields=["catalogue", "work_ref"], name="work_ref_unique"),
            models.CheckConstraint(
                condition=models.Q(media_type__in=MediaType.values), name="work_media_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="work_status_idx"),
            # Incremental permission feeds (`?since=`) read works changed after a time.
            models.Index(fields=["updated_at"], name="work_updated_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.work_ref}: {self.title}"

    def consent_for(self, use: str) -> str:
        own = getattr(self, f"consent_{use}")
        return own or self.catalogue.default_consent


class WorkIdentifier(models.Model):
    """A normalised identifier of a work. The same value may be claimed on several works (by
    different holders); `licensing.services.conflicts` decides when that is a conflict."""

    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="identifiers")
    scheme = models.CharField(max_length=10, choices=IdentifierScheme.choices)
    value = models.CharField(max_length=2000)

    organisation_field = "work__catalogue__owner"

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["work", "scheme", "value"], name="work_identifier_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(scheme__in=IdentifierScheme.values),
                name="work_identifier_scheme_valid",
            ),
        ]
        indexes = [models.Index(fields=["scheme", "value"], name="identifier_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"


class Share(models.Model):
    """A holder's share of a work, exactly: `share_ppm` parts per million (100% = 1,000,000)."""

    work = models.ForeignKey(Work, on_delete=models.CASCADE, related_name="shares")
    holder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="shares")
    role = models.CharField(max_length=10, choices=ShareRole.choices, default=ShareRole.AUTHOR)
    share_ppm = models.BigIntegerField()

    organisation_field = "work__catalogue__owner"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["work", "holder", "role"], name="share_unique"),
            models.CheckConstraint(
                condition=models.Q(share_ppm__gt=0) & models.Q(share_ppm__lte=FULL_SHARE_PPM),
                name="share_ppm_range",
            ),
            models.CheckConstraint(
                condition=models.Q(role__in=ShareRole.values), name="share_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.holder_id} {self.role} {self.share_ppm / 10_000}%"


class ConflictStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Conflict(models.Model):
    """The same identifier claimed by different holders whose shares add up to more than 100%.

    Its works are `disputed` (their money goes to suspense) until staff resolve it.
    """

    scheme = models.CharField(max_length=10, choices=IdentifierScheme.choices)
    value = models.CharField(max_length=2000)
    status = models.CharField(
        max_length=10, choices=ConflictStatus.choices, default=ConflictStatus.OPEN
    )
    claimed_ppm = models.BigIntegerField(help_text="Sum of the claimants' shares when opened.")
    works = models.ManyToManyField(Work, related_name="conflicts")
    claimants = models.ManyToManyField(Organisation, related_name="conflicts")
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolution = models.TextField(blank=True)

    organisation_field = "claimants"  # visible to every claimant (and staff)
    organisation_many = True

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "value"],
                condition=models.Q(status="open"),
                name="conflict_one_open_per_identifier",
            )
        ]

    def __str__(self) -> str:
        return f"Conflict on {self.scheme}:{self.value} ({self.status})"


class ReservationKind(models.TextChoices):
    IDENTIFIER = "identifier", "Identifier"
    URL_PREFIX = "url_prefix", "URL prefix"
    DOMAIN = "domain", "Domain"


class Reservation(models.Model):
    """A rights reservation (opt-out) registered for works not necessarily in any catalogue.

    Members register them for their organisation; non-members register them with an email
    address that must be verified before the reservation takes effect.
    """

    kind = models.CharField(max_length=12, choices=ReservationKind.choices)
    scheme = models.CharField(max_length=10, choices=IdentifierScheme.choices, blank=True)
    value = models.CharField(max_length=2000, help_text="Normalised identifier, URL or domain.")
    uses = models.JSONField(default=list, help_text="Uses reserved; empty means every use.")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="reservations"
    )
    email = models.EmailField(blank=True)
    nonce = models.CharField(max_length=64, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "organisation"

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "scheme", "value"], name="reservation_lookup_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(organisation__isnull=True, email=""),
                name="reservation_has_a_party",
            )
        ]

    def __str__(self) -> str:
        return f"Reservation {self.kind} {self.scheme}:{self.value}"

    @property
    def is_effective(self) -> bool:
        return self.withdrawn_at is None and (
            self.organisation_id is not None or self.verified_at is not None
        )


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportMode(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", "Write nothing if any row has an error"
    VALID_ONLY = "valid_only", "Write the valid works, skip works with errors"


class CatalogueImport(models.Model):
    """One upload of a catalogue file and the job that validates and writes it."""

    catalogue = models.ForeignKey(Catalogue, on_delete=models.CASCADE, related_name="imports")
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    file_size = models.BigIntegerField(default=0)
    mode = models.CharField(
        max_length=20, choices=ImportMode.choices, default=ImportMode.ALL_OR_NOTHING
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    stage = models.CharField(max_length=40, blank=True)
    percent = models.PositiveSmallIntegerField(default=0)
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    works_created = models.BigIntegerField(default=0)
    works_updated = models.BigIntegerField(default=0)
    works_unchanged = models.BigIntegerField(default=0)
    works_skipped = models.BigIntegerField(default=0)
    error_count = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="The first errors, for pages.")
    error_report = models.FileField(upload_to="imports/errors/%Y/%m/", blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "catalogue__owner"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.original_name} ({self.status})"
