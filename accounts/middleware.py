from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse

from accounts.models import Membership, Organisation
from accounts.request_context import current_request_id, reset_request_id, set_request_id

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
