"""Failure injection: make the next N matching API requests fail the way networks and Stripe do.

``POST /_test/failures`` with ``{"path": "/v1/transfers", "method": "POST", "status": 500 |
"timeout", "count": 1, "after_effect": false}`` (``path`` may be a glob: ``/v1/transfers*``).
Three failure points, each a real-world case:

- ``status: 500, after_effect: false`` - Stripe fails while executing: nothing happens, the
  request gets a 500 ``api_error``, and that 500 is *saved under the idempotency key*, so a
  retry with the same key gets the same 500 replayed (Stripe documents exactly this). Sent with
  ``Stripe-Should-Retry: false``, so the SDK does not retry a response that would only replay.
  Other statuses work too: 429 (rate limit), 409 (lock timeout, retryable), 402 (card error),
  503; ``error`` overrides ``type``/``code``/``message``/``decline_code``.
- ``status: 500, after_effect: true`` - the request *succeeds* and its real response is saved,
  but the client receives a 500 (the response was lost on the way back). The SDK retries with
  the same key and gets the saved success, ``Idempotent-Replayed: true``: no duplicate.
- ``status: "timeout"`` - the server holds the connection for ``hang_seconds`` (default 30,
  longer than any sane client timeout) and closes it without answering. With
  ``after_effect: false`` nothing happened (the request never "arrived"); with ``true`` the
  request executed and its response was saved first, like a response lost in transit.

A rule matches a request by method and path. Timeouts and ``after_effect`` rules sit at the
network edge and match any such request, replays included; a 500 without ``after_effect``
happens inside the endpoint, after validation, so it matches only requests that execute.
Hangs end early on reset or server stop.
"""

from __future__ import annotations

import fnmatch
import itertools
import threading
from dataclasses import dataclass
from typing import Any

from stripe_local.errors import StripeError, api_error, invalid_request


@dataclass
class FailureRule:
    id: int
    path: str
    method: str
    status: int | str
    count: int
    after_effect: bool
    hang_seconds: float
    error: dict[str, Any] | None

    @property
    def phase(self) -> str:
        if self.after_effect:
            return "after"
        return "before" if self.status == "timeout" else "endpoint"

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and fnmatch.fnmatchcase(path, self.path)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "method": self.method, "status": self.status,
                "count": self.count, "after_effect": self.after_effect,
                "hang_seconds": self.hang_seconds}

    def stripe_error(self) -> StripeError:
        status = int(self.status)
        custom = self.error or {}
        if status == 429:
            err = StripeError("Request rate limit exceeded. Learn more about rate limits here "
                              "https://stripe.com/docs/rate-limits.", status=429,
                              code="rate_limit")
        elif status == 409:
            err = StripeError("This object cannot be accessed right now because another API "
                              "request or Stripe process is currently accessing it.",
                              status=409, code="lock_timeout",
                              headers={"Stripe-Should-Retry": "true"})
        elif status == 402:
            err = StripeError("Your card was declined.", status=402, type="card_error",
                              code="card_declined", decline_code="generic_decline")
        elif status >= 500:
            err = api_error()
            err.status = status
        else:
            err = StripeError("Injected failure.", status=status)
        for attr in ("type", "code", "message", "decline_code", "param"):
            if attr in custom:
                setattr(err, attr, custom[attr])
        return err


class FailureInjector:
    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.rules: list[FailureRule] = []

    def reset(self) -> None:
        with self._lock:
            self.rules = []
            self._release.set()  # wake every hanging request
            self._release = threading.Event()

    def add(self, spec: dict[str, Any]) -> FailureRule:
        status = spec.get("status", 500)
        if status != "timeout" and not (isinstance(status, int) and 400 <= status <= 599):
            raise invalid_request('status must be an HTTP error status or "timeout"')
        count = spec.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise invalid_request("count must be a positive integer")
        path = spec.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise invalid_request('path is required, e.g. "/v1/transfers"')
        rule = FailureRule(
            id=next(self._ids), path=path, method=str(spec.get("method", "POST")).upper(),
            status=status, count=count, after_effect=bool(spec.get("after_effect", False)),
            hang_seconds=float(spec.get("hang_seconds", 30.0)), error=spec.get("error"),
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(self, method: str, path: str, phase: str) -> FailureRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.phase == phase and rule.matches(method, path):
                    rule.count -= 1
                    if rule.count == 0:
                        self.rules.remove(rule)
                    return rule
        return None

    def hang(self, seconds: float) -> None:
        self._release.wait(seconds)
