"""TOTP second factor for staff (django-otp): enrol an authenticator app, then prove it.

A staff member with a confirmed device must enter its 6-digit code after the password before
any page opens (accounts.middleware.StaffOtpMiddleware); STAFF_REQUIRE_OTP=true makes enrolment
mandatory. Codes are checked by django-otp, which refuses a code used before (replay) and slows
down guessing after each wrong code.
"""

from __future__ import annotations

from base64 import b32encode
from binascii import unhexlify

import segno
from django.db import transaction
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.errors import AccountsError
from accounts.models import User
from accounts.security import STAFF_OTP_SESSION_KEY
from accounts.services import audit_record

DEVICE_NAME = "Authenticator app"


def totp_device_confirmed(*, user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """The device being enrolled: an unconfirmed one with a fresh secret, reused until confirmed."""
    if not user.is_staff:
        raise AccountsError("Two-factor sign-in is for society staff.", code="forbidden")
    if totp_device_confirmed(user=user) is not None:
        raise AccountsError("An authenticator app is enrolled already.", code="conflict")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def totp_secret(*, device: TOTPDevice) -> str:
    """The base32 secret people type into an app that cannot scan the QR code."""
    return b32encode(unhexlify(device.key)).decode("ascii")


def totp_qr_svg(*, device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code (no image files, no network)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111")


def totp_enrolment_confirm(*, request, user: User, token: str) -> TOTPDevice:
    """Confirm the pending device with a code from the app; this session counts as verified."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user=user, confirmed=False)
            .order_by("id")
            .first()
        )
        if device is None:
            raise AccountsError("Start the enrolment again.", code="not_found")
        if not device.verify_token(token.strip()):
            raise AccountsError(
                "That code is not right. Check the time on your phone and try the next code.",
                code="invalid_token",
                details={"token": ["That code is not right."]},
            )
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        audit_record(action="user.totp_enrolled", actor=user, obj=user)
    otp_login(request, device)
    request.session[STAFF_OTP_SESSION_KEY] = "yes"
    return device


def totp_verify(*, request, user: User, token: str) -> TOTPDevice:
    """Check a code from the enrolled app and mark this session as verified."""
    device = totp_device_confirmed(user=user)
    if device is None:
        raise AccountsError("No authenticator app is enrolled.", code="not_found")
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, _ = locked.verify_is_allowed()
        if not allowed:
            raise AccountsError(
                "Too many wrong codes. Wait a moment before the next try.",
                code="throttled",
                details={"token": ["Too many wrong codes; wait a moment."]},
            )
        ok = locked.verify_token(token.strip())
    if not ok:
        audit_record(action="user.totp_failed", actor=user, obj=user)
        raise AccountsError(
            "That code is not right.",
            code="invalid_token",
            details={"token": ["That code is not right."]},
        )
    otp_login(request, locked)
    return locked
