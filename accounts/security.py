"""Login protection glue: django-axes hooks and the session policy applied at every login.

django-axes counts failed logins per (email, client address) and refuses that pair for the
cool-off once the limit is reached (settings: AXES_* in config/settings/base.py). The hooks
here make its keys match how Blanket logs people in (emails in any case, addresses behind
TRUSTED_PROXY_COUNT proxies) and answer a lockout with the login page or the API error body.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from accounts.forms import EmailAuthenticationForm
from config.errors import error_body

STAFF_OTP_SESSION_KEY = "staff_otp_device"  # "yes" / "no": has a confirmed TOTP device


def login_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The email axes counts failures under: trimmed and lower-cased, as login matches it."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username") if request is not None else None
    return username.strip().lower() if isinstance(username, str) else username


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address: the socket's, or the one the last trusted proxy saw."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR")


def lockout_minutes() -> int:
    return max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def lockout_message() -> str:
    minutes = lockout_minutes()
    return (
        f"Too many failed logins. Logging in with this email from your address is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''}. If you have forgotten your password, "
        f"reset it instead."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; JSON for API callers, else the login page."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    wants_json = request.path_info.startswith("/api/") or (
        "application/json" in request.headers.get("Accept", "")
        and "text/html" not in request.headers.get("Accept", "")
    )
    if wants_json:
        response = JsonResponse(
            error_body(
                "locked_out",
                lockout_message(),
                {"retry_after_seconds": int(retry_after)},
            ),
            status=settings.AXES_HTTP_RESPONSE_CODE,
        )
    else:
        form = EmailAuthenticationForm(request, initial={"username": login_username(request, None)})
        response = render(
            request,
            "registration/login.html",
            {
                "form": form,
                "locked_out": True,
                "lockout_message": lockout_message(),
                "next": request.POST.get("next", ""),
            },
            status=settings.AXES_HTTP_RESPONSE_CODE,
        )
    response["Retry-After"] = retry_after
    return response


@receiver(user_logged_in, dispatch_uid="accounts.session_harden_on_login")
def session_harden_on_login(sender, request, user, **kwargs) -> None:
    """Staff sessions end with the browser; note whether staff must pass a TOTP check."""
    if request is None or not hasattr(request, "session") or not user.is_staff:
        return
    from accounts.two_factor import totp_device_confirmed

    if settings.STAFF_SESSION_EXPIRE_AT_BROWSER_CLOSE:
        request.session.set_expiry(0)
    has_device = totp_device_confirmed(user=user) is not None
    request.session[STAFF_OTP_SESSION_KEY] = "yes" if has_device else "no"
