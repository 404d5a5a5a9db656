"""Webhook signatures exactly as Stripe computes them.

``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` - the scheme
``stripe.Webhook.construct_event`` / ``WebhookSignature.verify_header`` checks. Several ``v1``
entries may be present (that is how Stripe rolls endpoint secrets), and the SDK accepts the
header if any one of them matches.

``signature_header`` and ``sign_payload`` take any timestamp and secret, so tests can forge
(wrong secret), replay (stale timestamp), post-date (future timestamp: the SDK does *not*
reject these; Blanket's receiver must) or tamper (sign one body, send another).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time


def _as_bytes(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload


def compute_signature(payload: bytes | str, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + _as_bytes(payload)
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(payload: bytes | str, secret: str, *, timestamp: int | None = None,
                     extra_secrets: tuple[str, ...] = ()) -> str:
    """The ``Stripe-Signature`` value; one ``v1`` per secret (rolling secrets)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    parts = [f"t={ts}"]
    parts += [f"v1={compute_signature(payload, s, ts)}" for s in (secret, *extra_secrets)]
    return ",".join(parts)


def sign_payload(payload: bytes | str, secret: str, *, timestamp: int | None = None,
                 ) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a webhook POST, as Stripe would send them."""
    body = _as_bytes(payload)
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(body, secret, timestamp=timestamp),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }


def generate_secret() -> str:
    return "whsec_" + secrets.token_hex(24)
