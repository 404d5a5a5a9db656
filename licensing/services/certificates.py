"""Licence certificates: issue (on activation), verify (anyone), revoke (refund, staff).

A certificate document is `{"certificate": payload, "signature", "key_id", "algorithm"}`; the
signature covers the canonical JSON of the payload (see `licensing.certificates`).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from licensing import certificates as signing
from licensing.models import Certificate, Licence, LicenceStatus

VALID, INVALID, EXPIRED, REVOKED = "valid", "invalid", "expired", "revoked"


def _payload(licence: Licence, serial: str, issued_at) -> dict[str, Any]:
    base = settings.BLANKET_BASE_URL.rstrip("/")
    return {
        "version": 1,
        "serial": serial,
        "issuer": settings.BLANKET_SOCIETY_NAME,
        "licence_id": licence.pk,
        "licensee": {"name": licence.licensee.name, "code": licence.licensee.code},
        "product": {"code": licence.product.code, "name": licence.product.name},
        "scope": {
            "uses": list(licence.uses),
            "media_types": list(licence.media_types),
            "territory": licence.territory,
        },
        "term": {
            "starts_on": licence.starts_on.isoformat(),
            "ends_on": licence.ends_on.isoformat(),
        },
        "amount_minor": licence.amount_minor,
        "currency": licence.currency,
        "issued_at": issued_at.isoformat(),
        "repertoire_snapshot": {
            "as_of": issued_at.isoformat(),
            "check_url": f"{base}/api/v1/registry/check",
            "note": "Works licensed as of this time; reserved works are never licensed.",
        },
        "verify_url": f"{base}/api/v1/certificates/verify",
        "key_url": f"{base}/.well-known/blanket-licence-key",
    }


def certificate_issue(*, licence: Licence) -> Certificate:
    """Sign and store the certificate of an active licence (once: a second call returns it)."""
    existing = Certificate.objects.filter(licence=licence).first()
    if existing is not None:
        return existing
    issued_at = timezone.now().replace(microsecond=0)
    serial = f"BLK-{licence.pk:06d}-{secrets.token_hex(4).upper()}"
    payload = _payload(licence, serial, issued_at)
    signature, key_id = signing.sign(payload)
    with transaction.atomic():
        certificate = Certificate.objects.create(
            licence=licence,
            serial=serial,
            payload=payload,
            signature=signature,
            key_id=key_id,
            issued_at=issued_at,
        )
        audit_record(
            action="certificate.issue",
            organisation=licence.licensee,
            obj=certificate,
            details={"serial": serial},
        )
    return certificate


def certificate_document(certificate: Certificate) -> dict[str, Any]:
    """What the licensee downloads and anyone can verify."""
    return {
        "certificate": certificate.payload,
        "signature": certificate.signature,
        "key_id": certificate.key_id,
        "algorithm": signing.ALGORITHM,
    }


def certificate_verify(*, document: Any) -> dict[str, Any]:
    """valid | invalid | expired | revoked, with the reason a person can read."""

    def answer(status: str, reason: str, serial: str | None = None) -> dict[str, Any]:
        return {"status": status, "reason": reason, "serial": serial}

    if not isinstance(document, dict) or not isinstance(document.get("certificate"), dict):
        return answer(INVALID, "Not a Blanket certificate document.")
    payload = document["certificate"]
    serial = payload.get("serial") if isinstance(payload.get("serial"), str) else None
    signature = document.get("signature")
    if not isinstance(signature, str) or not signing.signature_valid(payload, signature):
        return answer(
            INVALID,
            "The signature does not match the certificate: it was altered "
            "or not issued by this society.",
            serial,
        )
    stored = Certificate.objects.select_related("licence").filter(serial=serial).first()
    if stored is None or stored.payload != payload:
        return answer(INVALID, "No certificate with this serial was issued.", serial)
    if stored.revoked_at is not None:
        return answer(
            REVOKED,
            f"Revoked on {stored.revoked_at:%Y-%m-%d}: "
            f"{stored.revocation_reason or 'no reason given'}.",
            serial,
        )
    today = timezone.localdate()
    if stored.licence.status == LicenceStatus.EXPIRED or stored.licence.ends_on < today:
        return answer(EXPIRED, f"The licence term ended on {stored.licence.ends_on}.", serial)
    if stored.licence.status == LicenceStatus.CANCELLED:
        return answer(REVOKED, "The licence was cancelled.", serial)
    return answer(VALID, f"In force until {stored.licence.ends_on}.", serial)


def certificate_revoke(
    *, certificate: Certificate, reason: str, caller: Caller | None = None
) -> Certificate:
    with transaction.atomic():
        updated = Certificate.objects.filter(pk=certificate.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revocation_reason=reason[:200]
        )
        certificate.refresh_from_db()
        if updated:
            audit_record(
                action="certificate.revoke",
                caller=caller,
                organisation=certificate.licence.licensee,
                obj=certificate,
                details={"reason": reason},
            )
    return certificate
