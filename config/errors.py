"""One error type for business rules and one error body for the API.

Services raise `DomainError` subclasses (each app has its own); the API turns every error,
ours or DRF's, into `{"error": {"code", "message", "details"}}`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response


class DomainError(Exception):
    """A business rule said no. `code` is stable for clients; `message` is for people."""

    code = "domain_error"
    http_status = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if self.code == "forbidden":
            self.http_status = status.HTTP_403_FORBIDDEN
        elif self.code == "not_found":
            self.http_status = status.HTTP_404_NOT_FOUND
        self.details = details if details is not None else {}


class NotFoundError(DomainError):
    code = "not_found"
    http_status = status.HTTP_404_NOT_FOUND


class PermissionError_(DomainError):
    code = "permission_denied"
    http_status = status.HTTP_403_FORBIDDEN


class ConflictError(DomainError):
    code = "conflict"
    http_status = status.HTTP_409_CONFLICT


_DRF_CODES = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def error_body(code: str, message: str, details: Any = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    from rest_framework.views import exception_handler  # late: DRF's views import settings

    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        message = "The request has invalid fields."
        details = (
            response.data
            if isinstance(response.data, dict)
            else {"non_field_errors": response.data}
        )
    else:
        detail = getattr(exc, "detail", str(exc))
        message = str(detail)
        details = {}
    response.data = error_body(code, message, details)
    return response


def not_found(request, exception=None):
    """404 outside any view (no route matched): JSON in the API's error format under /api/,
    Django's page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        body = error_body("not_found", "Not found.")
        return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
    return page_not_found(request, exception)


def server_error(request):
    """500: JSON under /api/ (the error is logged by Django; nothing of it is shown)."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as page_server_error

    if request.path.startswith("/api/"):
        body = error_body("server_error", "Something went wrong on our side; it is logged.")
        return JsonResponse(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return page_server_error(request)
