"""Idempotent requests, as https://docs.stripe.com/api/idempotent_requests describes (v1).

- Any POST may carry ``Idempotency-Key`` (at most 255 characters; stripe-python sends a UUID on
  every POST and keeps it across its own retries). GET and DELETE ignore the header.
- The first request that *began execution* under a key saves its status code and body,
  whether it succeeded or failed - a card decline, ``balance_insufficient`` or a 500 alike.
  A request rejected while its parameters were validated saves nothing and may be retried.
- A later request with the same key and the same method, path and parameters gets the saved
  response back with ``Idempotent-Replayed: true`` and ``Original-Request``; with different
  parameters or another endpoint it gets a 400 ``idempotency_error``.
- Keys are scoped to the API key and the ``Stripe-Account`` the request was made as.
- Stripe prunes keys after 24 hours; here they live until reset, or until
  ``POST /_test/idempotency/expire`` prunes them (all, or one ``key``) to test what happens
  when a retry comes after the window: it executes again.

``executions`` records every request that actually executed with a key (replays excluded), so
a test can prove "exactly one transfer per payout key".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stripe_local.errors import idempotency_error, invalid_request

MAX_KEY_LENGTH = 255


@dataclass
class SavedResponse:
    key: str
    scope: tuple[str | None, str | None]
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    request_id: str
    created: int
    object_id: str | None = None
    replays: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "key": self.key, "account": self.scope[1], "method": self.method,
            "path": self.path, "status": self.status, "object_id": self.object_id,
            "request_id": self.request_id, "created": self.created, "replays": self.replays,
        }


class IdempotencyLayer:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.saved: dict[tuple[Any, ...], SavedResponse] = {}
        self.executions: list[dict[str, Any]] = []

    @staticmethod
    def check_key(key: str) -> None:
        if len(key) > MAX_KEY_LENGTH:
            raise invalid_request(
                f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key")

    def lookup(self, scope: tuple[str | None, str | None], key: str, method: str, path: str,
               params: dict[str, Any]) -> SavedResponse | None:
        saved = self.saved.get((*scope, key))
        if saved is None:
            return None
        if (saved.method, saved.path) != (method, path):
            raise idempotency_error(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{saved.method} {saved.path}' vs '{method} {path}'). Try "
                f"using a key other than '{key}' if you meant to execute a different request.")
        if saved.params != params:
            raise idempotency_error(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.")
        saved.replays += 1
        return saved

    def save(self, saved: SavedResponse) -> None:
        self.saved[(*saved.scope, saved.key)] = saved
        self.executions.append(saved.summary())

    def expire(self, key: str | None = None) -> int:
        """Prune saved keys as Stripe does after 24 hours (all of them, or one key)."""
        doomed = [k for k, v in self.saved.items() if key is None or v.key == key]
        for k in doomed:
            del self.saved[k]
        return len(doomed)
