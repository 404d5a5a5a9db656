from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from accounts.models import Membership, Organisation
from accounts.request_context import current_request_id, reset_request_id, set_request_id
from accounts.security import STAFF_OTP_SESSION_KEY
from config.errors import error_body

SESSION_KEY = "active_organisation_id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives every request an id (the caller's X-Request-ID if it is sane) for logs and audit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        token = set_request_id(incoming if _REQUEST_ID.match(incoming) else None)
        try:
            request.request_id = current_request_id()
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            return response
        finally:
            reset_request_id(token)


class ActiveOrganisationMiddleware:
    """The organisation a logged-in person is acting for, kept in the session.

    Defaults to their first membership; staff without a membership act for no organisation
    (they see everything anyway). API-key requests get their organisation from the key.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organisation = None
        request.organisation_role = None
        user = request.user
        if user.is_authenticated:
            memberships = Membership.objects.filter(user=user).select_related("organisation")
            wanted = request.session.get(SESSION_KEY)
            membership = None
            if wanted is not None:
                membership = memberships.filter(organisation_id=wanted).first()
            if membership is None:
                membership = memberships.order_by("created_at", "id").first()
            if membership is not None:
                request.organisation = membership.organisation
                request.organisation_role = membership.role
            elif wanted is not None and user.is_staff:
                request.organisation = Organisation.objects.filter(pk=wanted).first()
        return self.get_response(request)


class StaffOtpMiddleware:
    """Staff with an enrolled authenticator app (or every staff member, when STAFF_REQUIRE_OTP
    is true) must pass the TOTP check before any page or session-authenticated API call.

    Runs after django-otp's OTPMiddleware. API-key requests are not sessions and pass through.
    Whether the person has a device is noted in the session at login (accounts.security), so
    this costs no query per request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and user.is_staff and not user.is_verified():
            blocked = self._blocked(request, user)
            if blocked is not None:
                return blocked
        return self.get_response(request)

    @staticmethod
    def _blocked(request: HttpRequest, user) -> HttpResponse | None:
        path = request.path_info
        open_paths = (reverse("otp_verify"), reverse("otp_enrol"), reverse("logout"))
        if path in open_paths or path.startswith(f"/{settings.STATIC_URL.lstrip('/')}"):
            return None
        if path == "/healthz":
            return None
        has_device = request.session.get(STAFF_OTP_SESSION_KEY)
        if has_device is None:  # a session from before this check existed
            from accounts.two_factor import totp_device_confirmed

            has_device = "yes" if totp_device_confirmed(user=user) else "no"
            request.session[STAFF_OTP_SESSION_KEY] = has_device
        if has_device != "yes" and not settings.STAFF_REQUIRE_OTP:
            return None
        if path.startswith("/api/"):
            return JsonResponse(
                error_body(
                    "otp_required",
                    "Confirm your sign-in with your authenticator app first.",
                ),
                status=403,
            )
        target = reverse("otp_verify" if has_device == "yes" else "otp_enrol")
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
