"""Stripe's error body and the HTTP status that goes with it.

Mirrors https://docs.stripe.com/api/errors: every failure is ``{"error": {...}}`` with ``type``
(``invalid_request_error``, ``card_error``, ``api_error``, ``idempotency_error``), a ``message``
and, when they apply, ``code``, ``param``, ``decline_code`` and ``doc_url``. Keys that do not
apply are left out, as Stripe does; the SDK reads them all with ``.get``.

``saved`` says whether the idempotency layer may store this response. Real Stripe saves the
result of a request once "endpoint execution begins" (card declines, insufficient balance, 500s)
and saves nothing for requests that fail validation. Routes decide the boundary by calling
``Request.begin()`` (see ``router.py``); an error raised after it is saved.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None,
                    status: int = 400) -> StripeError:
    return StripeError(message, status=status, code=code, param=param)


def missing_param(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", code="parameter_missing", param=param)


def resource_missing(kind: str, object_id: str, *, param: str | None = None) -> StripeError:
    """``No such customer: 'cus_x'``: 404 for an id in the URL, 400 for an id in a parameter."""
    return StripeError(
        f"No such {kind}: '{object_id}'",
        status=400 if param else 404,
        code="resource_missing",
        param=param or "id",
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or "
        "we can help at https://support.stripe.com/.",
        status=404,
    )


def card_error(message: str, *, code: str, decline_code: str | None = None,
               extra: dict[str, Any] | None = None) -> StripeError:
    return StripeError(message, status=402, type="card_error", code=code,
                       decline_code=decline_code, extra=extra)


def api_error(message: str = "An unknown error occurred while processing your request.",
              ) -> StripeError:
    return StripeError(message, status=500, type="api_error")


def idempotency_error(message: str) -> StripeError:
    return StripeError(message, status=400, type="idempotency_error")


def authentication_error(message: str) -> StripeError:
    """401; Stripe sends ``invalid_request_error`` here and the SDK raises AuthenticationError."""
    return StripeError(message, status=401)


def permission_error(message: str, *, code: str | None = None) -> StripeError:
    return StripeError(message, status=403, code=code)
