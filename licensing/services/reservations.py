"""Reservations (opt-outs) for works outside any catalogue: by identifier, URL prefix or domain.

Members register them for their organisation and they apply at once. Anyone else registers
them with an email address; they apply once the emailed link is followed (so nobody can
reserve in another's name without control of the address).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from licensing.errors import LicensingError
from licensing.identifiers import IdentifierError, normalise
from licensing.importing.report import csv_cell_defused
from licensing.models import (
    Consent,
    IdentifierScheme,
    Reservation,
    ReservationKind,
    Use,
    Work,
    WorkIdentifier,
)

_SALT = "licensing.reservation"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
VERIFY_TTL = timedelta(days=7)


def reservation_target_clean(*, kind: str, scheme: str = "", value: str) -> tuple[str, str]:
    """(scheme, normalised value) for a reservation target, or a LicensingError saying why."""
    value = (value or "").strip()
    if kind == ReservationKind.IDENTIFIER:
        try:
            return scheme, normalise(scheme, value)
        except IdentifierError as exc:
            raise LicensingError(
                f"Not a valid {scheme or 'identifier'}: {exc.reason}.",
                code="invalid",
                details={"value": [exc.reason]},
            ) from None
    if kind == ReservationKind.URL_PREFIX:
        try:
            return IdentifierScheme.URL, normalise(IdentifierScheme.URL, value)
        except IdentifierError as exc:
            raise LicensingError(
                f"Not a valid URL prefix: {exc.reason}.",
                code="invalid",
                details={"value": [exc.reason]},
            ) from None
    if kind == ReservationKind.DOMAIN:
        domain = value.lower().rstrip(".")
        domain = re.sub(r"^https?://", "", domain).split("/")[0]
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            domain = ""
        if not _DOMAIN.match(domain):
            raise LicensingError(
                f"{value!r} is not a domain name (e.g. example.com).",
                code="invalid",
                details={"value": ["Not a domain name."]},
            )
        return "", domain
    raise LicensingError(f"Unknown reservation kind {kind!r}.", code="invalid")


def _uses_clean(uses: list[str] | None) -> list[str]:
    uses = sorted(set(uses or []))
    unknown = [u for u in uses if u not in Use.values]
    if unknown:
        raise LicensingError(
            f"Unknown use {unknown[0]!r}.", code="invalid", details={"uses": unknown}
        )
    return [] if set(uses) == set(Use.values) else uses


def reservation_create(
    *, caller: Caller, kind: str, value: str, scheme: str = "", uses: list[str] | None = None
) -> Reservation:
    """A member's reservation, effective at once."""
    caller.require_write()
    organisation = caller.require_organisation()
    scheme, value = reservation_target_clean(kind=kind, scheme=scheme, value=value)
    with transaction.atomic():
        reservation = Reservation.objects.create(
            kind=kind,
            scheme=scheme,
            value=value,
            uses=_uses_clean(uses),
            organisation=organisation,
        )
        audit_record(
            action="reservation.create",
            caller=caller,
            obj=reservation,
            details={"kind": kind, "scheme": scheme, "value": value},
        )
    return reservation


def reservation_request(
    *, email: str, kind: str, value: str, scheme: str = "", uses: list[str] | None = None
) -> Reservation:
    """A non-member's reservation: stored, and effective once the emailed link is followed."""
    email = (email or "").strip().lower()
    if "@" not in email:
        raise LicensingError(
            "An email address is needed.", code="invalid", details={"email": ["Required."]}
        )
    scheme, value = reservation_target_clean(kind=kind, scheme=scheme, value=value)
    with transaction.atomic():
        reservation = Reservation.objects.create(
            kind=kind,
            scheme=scheme,
            value=value,
            uses=_uses_clean(uses),
            email=email,
            nonce=secrets.token_hex(16),
        )
        audit_record(
            action="reservation.request",
            obj=reservation,
            details={"kind": kind, "scheme": scheme, "value": value, "email": email},
        )
        from licensing.tasks_reservations import reservation_verification_send_task

        transaction.on_commit(lambda: reservation_verification_send_task.delay(reservation.pk))
    return reservation


def reservation_token(reservation: Reservation) -> str:
    return signing.dumps({"r": reservation.pk, "n": reservation.nonce}, salt=_SALT)


def reservation_verification_send(*, reservation_id: int) -> bool:
    from django.core.mail import send_mail
    from django.urls import reverse

    reservation = Reservation.objects.filter(pk=reservation_id, verified_at__isnull=True).first()
    if reservation is None or not reservation.email:
        return False
    link = settings.BLANKET_BASE_URL.rstrip("/") + reverse(
        "reservation_verify", kwargs={"token": reservation_token(reservation)}
    )
    target = f"{reservation.scheme + ':' if reservation.scheme else ''}{reservation.value}"
    send_mail(
        subject="Confirm your AI-training reservation",
        message=(
            f"Someone (we hope you) asked to reserve {target} ({reservation.get_kind_display()})"
            f" from AI training licences.\n\nConfirm: {link}\n\nIgnore this email otherwise."
        ),
        from_email=None,
        recipient_list=[reservation.email],
    )
    return True


def reservation_verify(*, token: str) -> Reservation:
    try:
        data = signing.loads(token, salt=_SALT, max_age=VERIFY_TTL)
        reservation = Reservation.objects.get(pk=data["r"])
    except (signing.BadSignature, Reservation.DoesNotExist, KeyError, TypeError):
        raise LicensingError("This confirmation link is not valid.", code="invalid_token") from None
    if not secrets.compare_digest(reservation.nonce, str(data.get("n", ""))):
        raise LicensingError("This confirmation link is not valid.", code="invalid_token")
    with transaction.atomic():
        updated = Reservation.objects.filter(pk=reservation.pk, verified_at__isnull=True).update(
            verified_at=timezone.now()
        )
        if updated:
            audit_record(
                action="reservation.verify", obj=reservation, details={"email": reservation.email}
            )
    reservation.refresh_from_db()
    return reservation


def reservation_withdraw(*, caller: Caller, reservation: Reservation) -> Reservation:
    caller.require_write()
    with transaction.atomic():
        Reservation.objects.filter(pk=reservation.pk, withdrawn_at__isnull=True).update(
            withdrawn_at=timezone.now()
        )
        audit_record(action="reservation.withdraw", caller=caller, obj=reservation)
    reservation.refresh_from_db()
    return reservation


def reservation_covering(*, scheme: str, value: str, uses: list[str]) -> Reservation | None:
    """The oldest reservation in force for any of ``uses`` that covers the normalised
    identifier ``(scheme, value)``: an identifier reservation on it; for a URL, a URL-prefix
    reservation that is a prefix of it, or a domain reservation on its host or a parent
    domain. One identifier at a time (a hand match); declarations are matched set-based by
    ``licensing.matching``, with the same rules."""
    in_force = Reservation.objects.filter(withdrawn_at__isnull=True).exclude(
        organisation__isnull=True, verified_at__isnull=True
    )
    covering = in_force.filter(kind=ReservationKind.IDENTIFIER, scheme=scheme, value=value)
    if scheme == IdentifierScheme.URL:
        origin = re.match(r"[a-z]+://[^/?#]+", value)
        host = re.match(r"[a-z]+://([^/:?#\[\]]+)", value)
        if origin:
            prefixes = [value[:end] for end in range(len(origin.group(0)), len(value) + 1)]
            covering = covering | in_force.filter(
                kind=ReservationKind.URL_PREFIX, value__in=prefixes
            )
        if host:
            labels = host.group(1).split(".")
            domains = [".".join(labels[i:]) for i in range(len(labels))]
            covering = covering | in_force.filter(kind=ReservationKind.DOMAIN, value__in=domains)
    for reservation in covering.order_by("pk"):
        if not reservation.uses or set(reservation.uses) & set(uses):
            return reservation
    return None


RESERVATION_FEED_COLUMNS = ("kind", "scheme", "value", "uses", "source", "since")


def reservation_feed_rows() -> Iterator[list[str]]:
    """Everything reserved, for crawlers: registered reservations, then the identifiers of
    works their holders reserved for training. Streams; never loads a table into memory."""
    reservations = (
        Reservation.objects.filter(withdrawn_at__isnull=True)
        .exclude(organisation__isnull=True, verified_at__isnull=True)
        .order_by("pk")
        .values_list("kind", "scheme", "value", "uses", "created_at")
    )
    for kind, scheme, value, uses, since in reservations.iterator(chunk_size=5_000):
        yield [
            kind,
            scheme,
            csv_cell_defused(value),
            " ".join(uses) or "all",
            "reservation",
            since.date().isoformat(),
        ]
    reserved_works = Work.objects.filter(consent_training=Consent.RESERVED) | Work.objects.filter(
        consent_training="", catalogue__default_consent=Consent.RESERVED
    )
    identifiers = (
        WorkIdentifier.objects.filter(work__in=reserved_works.values("pk"))
        .order_by("pk")
        .values_list("scheme", "value", "work__updated_at")
    )
    for scheme, value, since in identifiers.iterator(chunk_size=5_000):
        yield [
            "identifier",
            scheme,
            csv_cell_defused(value),
            "training",
            "work",
            since.date().isoformat(),
        ]


def reservation_feed_csv() -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RESERVATION_FEED_COLUMNS)
    for row in reservation_feed_rows():
        writer.writerow(row)
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
