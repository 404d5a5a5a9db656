"""Users, organisations, memberships, invitations, API keys and the audit log.

Writes go through `accounts.services`; the models hold data and database-level invariants.
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_countries.fields import CountryField


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with an email address; belongs to organisations through memberships."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(
        default=False, help_text="Society staff: sees every organisation's objects."
    )
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class OrganisationKind(models.TextChoices):
    RIGHTS_HOLDER = "rights_holder", "Rights holder"
    LICENSEE = "licensee", "Licensee"
    SOCIETY = "society", "Society"


REGISTRY_PREFIX = {
    OrganisationKind.RIGHTS_HOLDER: "RH",
    OrganisationKind.LICENSEE: "LI",
    OrganisationKind.SOCIETY: "SO",
}


class RegistrySequence(models.Model):
    """One counter per registry prefix. Incremented under a row lock, never "max + 1"."""

    prefix = models.CharField(max_length=4, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.prefix}: {self.last_value}"


class Organisation(models.Model):
    """A rights holder, a licensee or the society itself. The tenant every object belongs to."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=OrganisationKind.choices)
    code = models.CharField(
        max_length=16, unique=True, help_text="Public registry code, e.g. RH-000042."
    )
    country = CountryField()
    isni = models.CharField("ISNI", max_length=16, blank=True)
    ipi_name_number = models.CharField("IPI name number", max_length=11, blank=True)
    company_number = models.CharField(max_length=40, blank=True)
    contact_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=OrganisationKind.values), name="organisation_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(kind=OrganisationKind.RIGHTS_HOLDER)
                | (models.Q(isni="") & models.Q(ipi_name_number="")),
                name="organisation_party_ids_only_for_rights_holders",
            ),
            models.CheckConstraint(
                condition=models.Q(kind=OrganisationKind.LICENSEE) | models.Q(company_number=""),
                name="organisation_company_number_only_for_licensees",
            ),
            models.UniqueConstraint(
                fields=["isni"], condition=~models.Q(isni=""), name="organisation_isni_unique"
            ),
            models.UniqueConstraint(
                fields=["ipi_name_number"],
                condition=~models.Q(ipi_name_number=""),
                name="organisation_ipi_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    # The scoping mechanism (accounts.scoping) asks every scoped model for this path.
    organisation_field = "pk"


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


# Roles that may manage the organisation (members, API keys, settings).
MANAGING_ROLES = frozenset({Role.OWNER, Role.ADMIN})
# Roles that may change the organisation's data (catalogues, declarations...).
WRITING_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})


class Membership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    organisation_field = "organisation"

    class Meta:
        ordering = ["organisation_id", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation.code} as {self.role}"


class Invitation(models.Model):
    """An emailed invitation to join an organisation. The token itself is never stored."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # Random, never sent: the emailed token is a signature over (id, nonce), see services.
    nonce = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    organisation_field = "organisation"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organisation.code}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


class ApiKey(models.Model):
    """A machine credential of one organisation: `Authorization: Api-Key <prefix>.<secret>`.

    The full key is shown once at creation; only its SHA-256 is kept (keys carry 256 bits of
    randomness, so a fast hash is safe and lets every request be checked in one indexed query).
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    organisation_field = "organisation"

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditEvent(models.Model):
    """Append-only record of who did what to which object, written by services.

    Rows cannot be changed or deleted: `save()` refuses updates here, and database triggers
    (see the migration) refuse UPDATE and DELETE from any client, ORM or not.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    organisation_field = "organisation"

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogImmutableError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogImmutableError("Audit events are append-only")


class AuditLogImmutableError(Exception):
    pass
