"""Every write to users, organisations, memberships, invitations and API keys.

Plain functions with keyword-only arguments; each owns its transaction and writes its audit row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.errors import AccountsError
from accounts.models import (
    REGISTRY_PREFIX,
    ApiKey,
    AuditEvent,
    Invitation,
    Membership,
    Organisation,
    OrganisationKind,
    RegistrySequence,
    Role,
    User,
)
from accounts.party_ids import (
    normalise_company_number,
    normalise_ipi_name_number,
    normalise_isni,
)
from accounts.request_context import current_request_id
from accounts.scoping import Caller

API_KEY_SCHEME = "Api-Key"
_INVITATION_SALT = "accounts.invitation"
_API_KEY_TOUCH_INTERVAL = timedelta(seconds=60)


# --- audit ---------------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    caller: Caller | None = None,
    actor: User | None = None,
    organisation: Organisation | None = None,
    obj: Any = None,
    details: dict | None = None,
) -> AuditEvent:
    """Append one audit row. Called by services inside their transaction."""
    if caller is not None:
        actor = actor or caller.user
        organisation = organisation or caller.organisation
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        api_key=caller.api_key if caller is not None else None,
        organisation=organisation,
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        request_id=current_request_id(),
        details=details or {},
    )


def audit_record_many(*, action: str, entries: list[tuple[Any, dict]]) -> None:
    """Append one audit row per (object, details) of a set-based write, in one INSERT: the
    rows ``audit_record(action=..., obj=..., details=...)`` would write one by one (no actor,
    no organisation: system actions)."""
    request_id = current_request_id()
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=action,
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                request_id=request_id,
                details=details,
            )
            for obj, details in entries
        ]
    )


# --- users ---------------------------------------------------------------------------------


def user_sign_up(*, email: str, password: str, full_name: str = "") -> User:
    email = User.objects.normalize_email(email.strip()).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise AccountsError(
            "An account with this email address exists already.", code="email_taken"
        )
    candidate = User(email=email, full_name=full_name.strip())
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise AccountsError(
            " ".join(exc.messages), code="weak_password", details={"password": exc.messages}
        ) from None
    with transaction.atomic():
        try:
            user = User.objects.create_user(email=email, password=password, full_name=full_name)
        except IntegrityError:
            raise AccountsError(
                "An account with this email address exists already.", code="email_taken"
            ) from None
        audit_record(action="user.sign_up", actor=user, obj=user)
    return user


# --- organisations -------------------------------------------------------------------------


def _registry_code_next(*, kind: str) -> str:
    """The next public code for `kind`, e.g. RH-000042. Must run inside a transaction."""
    prefix = REGISTRY_PREFIX[kind]
    RegistrySequence.objects.get_or_create(prefix=prefix)
    # The UPDATE takes the row lock; concurrent creators queue here instead of colliding.
    RegistrySequence.objects.filter(prefix=prefix).update(last_value=F("last_value") + 1)
    value = RegistrySequence.objects.get(prefix=prefix).last_value
    return f"{prefix}-{value:06d}"


def _party_ids_clean(
    *, kind: str, isni: str, ipi_name_number: str, company_number: str
) -> dict[str, str]:
    errors: dict[str, list[str]] = {}
    cleaned = {"isni": "", "ipi_name_number": "", "company_number": ""}
    checks = (
        ("isni", isni, normalise_isni, OrganisationKind.RIGHTS_HOLDER),
        (
            "ipi_name_number",
            ipi_name_number,
            normalise_ipi_name_number,
            OrganisationKind.RIGHTS_HOLDER,
        ),
        ("company_number", company_number, normalise_company_number, OrganisationKind.LICENSEE),
    )
    for field, raw, normalise, allowed_kind in checks:
        raw = (raw or "").strip()
        if not raw:
            continue
        if kind != allowed_kind:
            errors[field] = [f"Only a {OrganisationKind(allowed_kind).label.lower()} has one."]
            continue
        try:
            cleaned[field] = normalise(raw)
        except ValueError as exc:
            reason = str(exc).rstrip(".")
            errors[field] = [reason[:1].upper() + reason[1:] + "."]
    if errors:
        raise AccountsError("Some identifiers are not valid.", code="invalid", details=errors)
    return cleaned


def organisation_create(
    *,
    creator: User | None,
    name: str,
    kind: str,
    country: str,
    isni: str = "",
    ipi_name_number: str = "",
    company_number: str = "",
    contact_email: str = "",
) -> Organisation:
    """Create an organisation with its registry code; the creator (if any) becomes its owner."""
    name = name.strip()
    if not name:
        raise AccountsError(
            "An organisation needs a name.", code="invalid", details={"name": ["Required."]}
        )
    if kind not in OrganisationKind.values:
        raise AccountsError(f"Unknown organisation kind {kind!r}.", code="invalid")
    if kind == OrganisationKind.SOCIETY and creator is not None and not creator.is_staff:
        raise AccountsError(
            "Only society staff may create the society's organisation.", code="forbidden"
        )
    from django_countries import countries

    country = (country or "").strip().upper()
    if country not in dict(countries):
        raise AccountsError(
            f"Unknown country code {country!r}: use ISO 3166 alpha-2, e.g. GB.",
            code="invalid",
            details={"country": ["Unknown country code."]},
        )
    ids = _party_ids_clean(
        kind=kind, isni=isni, ipi_name_number=ipi_name_number, company_number=company_number
    )
    with transaction.atomic():
        for field in ("isni", "ipi_name_number"):
            if ids[field] and Organisation.objects.filter(**{field: ids[field]}).exists():
                raise AccountsError(
                    "Another organisation is registered with this identifier.",
                    code="duplicate_identifier",
                    details={field: ["Already registered."]},
                )
        organisation = Organisation.objects.create(
            name=name,
            kind=kind,
            country=country,
            code=_registry_code_next(kind=kind),
            contact_email=contact_email,
            **ids,
        )
        if creator is not None:
            Membership.objects.create(user=creator, organisation=organisation, role=Role.OWNER)
        audit_record(
            action="organisation.create",
            actor=creator,
            organisation=organisation,
            obj=organisation,
            details={"name": name, "kind": kind, "code": organisation.code},
        )
    return organisation


def membership_add(
    *, organisation: Organisation, user: User, role: str, caller: Caller | None = None
) -> Membership:
    """Add `user` to `organisation` (or change their role). Scripts pass no caller."""
    if caller is not None:
        caller.require_manage()
    if role not in Role.values:
        raise AccountsError(f"Unknown role {role!r}.", code="invalid")
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            user=user, organisation=organisation, defaults={"role": role}
        )
        if not created:
            if membership.role == role:
                return membership
            membership.role = role
            membership.save(update_fields=["role"])
        audit_record(
            action="membership.add" if created else "membership.role_change",
            caller=caller,
            organisation=organisation,
            obj=membership,
            details={"email": user.email, "role": role},
        )
    return membership


def membership_remove(*, caller: Caller, membership: Membership) -> None:
    caller.require_manage()
    organisation = membership.organisation
    with transaction.atomic():
        owners = Membership.objects.select_for_update().filter(
            organisation=organisation, role=Role.OWNER
        )
        if membership.role == Role.OWNER and owners.count() <= 1:
            raise AccountsError("An organisation keeps at least one owner.", code="last_owner")
        audit_record(
            action="membership.remove",
            caller=caller,
            organisation=organisation,
            obj=membership,
            details={"email": membership.user.email, "role": membership.role},
        )
        membership.delete()


# --- invitations ---------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    """The token in the emailed link: signed, so only a hash-like nonce is stored."""
    return signing.dumps({"i": invitation.pk, "n": invitation.nonce[:32]}, salt=_INVITATION_SALT)


def invitation_create(*, caller: Caller, email: str, role: str = Role.MEMBER) -> Invitation:
    caller.require_manage()
    organisation = caller.require_organisation()
    email = User.objects.normalize_email(email.strip()).lower()
    if role not in Role.values:
        raise AccountsError(
            f"Unknown role {role!r}.", code="invalid", details={"role": ["Unknown role."]}
        )
    if role == Role.OWNER and caller.role != Role.OWNER and not caller.is_staff:
        raise AccountsError("Only an owner may invite another owner.", code="forbidden")
    if Membership.objects.filter(organisation=organisation, user__email__iexact=email).exists():
        raise AccountsError(
            f"{email} is already a member of {organisation.name}.",
            code="already_member",
            details={"email": ["Already a member."]},
        )
    with transaction.atomic():
        invitation = Invitation.objects.create(
            organisation=organisation,
            email=email,
            role=role,
            nonce=secrets.token_hex(32),
            invited_by=caller.user,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
        )
        audit_record(
            action="invitation.create",
            caller=caller,
            obj=invitation,
            details={"email": email, "role": role},
        )
        from accounts.tasks import invitation_send_task

        transaction.on_commit(lambda: invitation_send_task.delay(invitation.pk))
    return invitation


def invitation_send(*, invitation_id: int) -> bool:
    """Email the invitation link. At least once: a retry after a crash may send it twice,
    which beats never sending it; one already marked sent is not sent again."""
    from django.core.mail import send_mail
    from django.urls import reverse

    invitation = (
        Invitation.objects.select_related("organisation", "invited_by")
        .filter(pk=invitation_id)
        .first()
    )
    if invitation is None or invitation.sent_at is not None or not invitation.is_open:
        return False
    link = settings.BLANKET_BASE_URL.rstrip("/") + reverse(
        "invitation_accept", kwargs={"token": invitation_token(invitation)}
    )
    send_mail(
        subject=f"You are invited to {invitation.organisation.name} on Blanket",
        message=(
            f"{invitation.invited_by.email} invited you to join {invitation.organisation.name} "
            f"({invitation.organisation.code}) as {invitation.get_role_display().lower()}.\n\n"
            f"Accept: {link}\n\nThe link works until {invitation.expires_at:%d %b %Y}."
        ),
        from_email=None,
        recipient_list=[invitation.email],
    )
    Invitation.objects.filter(pk=invitation_id, sent_at__isnull=True).update(sent_at=timezone.now())
    return True


def invitation_from_token(*, token: str) -> Invitation:
    max_age = timedelta(days=settings.INVITATION_TTL_DAYS)
    try:
        data = signing.loads(token, salt=_INVITATION_SALT, max_age=max_age)
        invitation = Invitation.objects.select_related("organisation").get(pk=data["i"])
    except (signing.BadSignature, Invitation.DoesNotExist, KeyError, TypeError):
        raise AccountsError(
            "This invitation link is not valid.", code="invalid_invitation"
        ) from None
    if not secrets.compare_digest(invitation.nonce[:32], str(data.get("n", ""))):
        raise AccountsError("This invitation link is not valid.", code="invalid_invitation")
    if not invitation.is_open:
        raise AccountsError(
            "This invitation has expired, was revoked or was used already.",
            code="invitation_closed",
        )
    return invitation


def invitation_accept(*, user: User, token: str) -> Membership:
    invitation = invitation_from_token(token=token)
    if invitation.email.lower() != user.email.lower():
        raise AccountsError(
            f"This invitation is for {invitation.email}; you are logged in as {user.email}.",
            code="wrong_account",
        )
    with transaction.atomic():
        closed = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if not closed:
            raise AccountsError("This invitation was used already.", code="invitation_closed")
        membership = membership_add(
            organisation=invitation.organisation, user=user, role=invitation.role
        )
        audit_record(
            action="invitation.accept",
            actor=user,
            organisation=invitation.organisation,
            obj=invitation,
        )
    return membership


def invitation_revoke(*, caller: Caller, invitation: Invitation) -> None:
    caller.require_manage()
    with transaction.atomic():
        Invitation.objects.filter(pk=invitation.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        audit_record(action="invitation.revoke", caller=caller, obj=invitation)


# --- API keys ------------------------------------------------------------------------------


def _api_key_hash(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(
    *, organisation: Organisation, name: str, caller: Caller | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never shown again."""
    if caller is not None:
        caller.require_manage()
        if caller.api_key is not None:
            raise AccountsError("API keys cannot create API keys.", code="forbidden")
    name = name.strip()
    if not name:
        raise AccountsError("A key needs a name.", code="invalid", details={"name": ["Required."]})
    prefix = "bk_" + secrets.token_hex(4)
    raw_key = f"{prefix}.{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            organisation=organisation,
            name=name[:100],
            prefix=prefix,
            key_hash=_api_key_hash(raw_key),
            created_by=caller.user if caller is not None else None,
        )
        audit_record(
            action="api_key.create",
            caller=caller,
            organisation=organisation,
            obj=api_key,
            details={"name": api_key.name, "prefix": prefix},
        )
    return api_key, raw_key


def api_key_revoke(*, caller: Caller, api_key: ApiKey) -> ApiKey:
    caller.require_manage()
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=caller.user
        )
        audit_record(
            action="api_key.revoke", caller=caller, organisation=api_key.organisation, obj=api_key
        )
    api_key.refresh_from_db()
    return api_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None. Records the last use at most once a minute."""
    if not raw_key or len(raw_key) > 200:
        return None
    api_key = (
        ApiKey.objects.select_related("organisation")
        .filter(key_hash=_api_key_hash(raw_key), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > _API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
