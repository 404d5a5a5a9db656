"""The one module that talks to Stripe.

Everything else calls these small functions; nothing else imports `stripe`. The client is built
from settings (`STRIPE_SECRET_KEY`, `STRIPE_API_BASE`, `STRIPE_WEBHOOK_SECRET`), so tests and the
demo point it at the local Stripe server and production at api.stripe.com. Every create call
carries an idempotency key derived from our own row id, chosen by the caller
(`payment:<id>:checkout`), so a retry after a lost response can never charge twice. Callers
never hold a database transaction open across these calls: record the intent, call, record the
outcome.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import stripe
from django.conf import settings

from royalties.errors import RoyaltiesError

WEBHOOK_TOLERANCE_SECONDS = 300  # older signatures are refused (stripe-python's default)
WEBHOOK_FUTURE_SKEW_SECONDS = 60  # stripe-python does not refuse future timestamps; we do

_PAYMENT_INTENT_EXPAND = ["latest_charge.balance_transaction"]


class StripeBoundaryError(RoyaltiesError):
    """Stripe refused a request or could not be reached (after the SDK's bounded retries)."""

    code = "payment_provider_error"
    http_status = 502

    @property
    def stripe_code(self) -> str | None:
        return (self.details or {}).get("stripe_code")

    @property
    def definite(self) -> bool:
        """Stripe answered with a refusal (4xx): the request did not and will not take effect.
        False for 5xx, time-outs and lost connections, where it may have."""
        status = (self.details or {}).get("http_status")
        return status is not None and 400 <= int(status) < 500 and status != 409


class WebhookSignatureError(Exception):
    """The webhook is not from Stripe, was altered, or is too old or too far in the future."""


_clients: dict[tuple, stripe.StripeClient] = {}


def _client() -> stripe.StripeClient:
    """One client per configuration and process, reused: its ``RequestsClient`` keeps one
    ``requests.Session`` per thread, so calls reuse a kept-alive connection instead of
    opening a TCP connection (and a server thread) each. A payout makes two or three calls
    and onboarding two: at 10^3 payouts the connects were a measurable share. Keyed by the
    settings (tests point it at a fresh local server) and the process id (never share a
    pooled socket across a fork)."""
    base = settings.STRIPE_API_BASE
    key = (
        os.getpid(),
        settings.STRIPE_SECRET_KEY,
        base,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_TIMEOUT_SECONDS,
    )
    client = _clients.get(key)
    if client is None:
        client = stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            base_addresses={"api": base, "connect": base, "files": base},
            max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        )
        if len(_clients) > 32:  # many test servers in one process: forget the old ones
            _clients.clear()
        _clients[key] = client
    return client


def _call(
    method,
    params: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    object_id: str | None = None,
) -> dict[str, Any]:
    options = {"idempotency_key": key} if key else None
    args = (object_id,) if object_id is not None else ()
    try:
        result = method(*args, params or {}, options) if options else method(*args, params or {})
    except stripe.CardError as exc:
        raise StripeBoundaryError(
            exc.user_message or str(exc),
            code="card_declined",
            details={"decline_code": getattr(exc, "code", None)},
        ) from exc
    except stripe.StripeError as exc:
        raise StripeBoundaryError(
            f"Stripe: {exc.user_message or exc}",
            details={
                "stripe_code": getattr(exc, "code", None),
                "http_status": getattr(exc, "http_status", None),
            },
        ) from exc
    return result.to_dict()


def checkout_session_create(
    *,
    idempotency_key: str,
    amount_minor: int,
    currency: str,
    description: str,
    success_url: str,
    cancel_url: str,
    metadata: dict[str, str],
    customer_email: str | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency.lower(),
                    "unit_amount": amount_minor,
                    "product_data": {"name": description},
                },
                "quantity": 1,
            }
        ],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    if customer_email:
        params["customer_email"] = customer_email
    return _call(_client().v1.checkout.sessions.create, params, key=idempotency_key)


def checkout_session_retrieve(session_id: str) -> dict[str, Any]:
    """The session with its payment intent, charge and balance transaction expanded."""
    return _call(
        _client().v1.checkout.sessions.retrieve,
        {"expand": ["payment_intent.latest_charge.balance_transaction"]},
        object_id=session_id,
    )


def payment_intent_retrieve(payment_intent_id: str) -> dict[str, Any]:
    return _call(
        _client().v1.payment_intents.retrieve,
        {"expand": _PAYMENT_INTENT_EXPAND},
        object_id=payment_intent_id,
    )


def invoice_create_and_send(
    *,
    idempotency_key: str,
    amount_minor: int,
    currency: str,
    description: str,
    customer_email: str,
    customer_name: str,
    metadata: dict[str, str],
    days_until_due: int = 30,
) -> dict[str, Any]:
    """Customer, draft invoice, one line, finalise, send: each step keyed, so a retry of the
    whole function after a failure half-way repeats nothing."""
    client = _client()
    customer = _call(
        client.v1.customers.create,
        {"email": customer_email, "name": customer_name, "metadata": metadata},
        key=f"{idempotency_key}:customer",
    )
    invoice = _call(
        client.v1.invoices.create,
        {
            "customer": customer["id"],
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "currency": currency.lower(),
            "metadata": metadata,
        },
        key=f"{idempotency_key}:invoice",
    )
    _call(
        client.v1.invoice_items.create,
        {
            "customer": customer["id"],
            "invoice": invoice["id"],
            "amount": amount_minor,
            "currency": currency.lower(),
            "description": description,
        },
        key=f"{idempotency_key}:item",
    )
    _call(
        client.v1.invoices.finalize_invoice,
        key=f"{idempotency_key}:finalize",
        object_id=invoice["id"],
    )
    return _call(
        client.v1.invoices.send_invoice, key=f"{idempotency_key}:send", object_id=invoice["id"]
    )


def invoice_retrieve(invoice_id: str) -> dict[str, Any]:
    """The invoice with its payments expanded (fetch an intent's charge with
    `payment_intent_retrieve`: Stripe expands at most four levels)."""
    return _call(
        _client().v1.invoices.retrieve,
        {"expand": ["payments.data.payment"]},
        object_id=invoice_id,
    )


def refund_create(
    *, idempotency_key: str, payment_intent_id: str, amount_minor: int, metadata: dict[str, str]
) -> dict[str, Any]:
    return _call(
        _client().v1.refunds.create,
        {"payment_intent": payment_intent_id, "amount": amount_minor, "metadata": metadata},
        key=idempotency_key,
    )


def refund_list(*, charge_id: str) -> list[dict[str, Any]]:
    page = _call(_client().v1.refunds.list, {"charge": charge_id, "limit": 100})
    return list(page["data"])


# --- Connect: accounts, onboarding links, transfers -----------------------------------------


def connect_account_create(
    *, idempotency_key: str, country: str, email: str, metadata: dict[str, str]
) -> dict[str, Any]:
    """An Express account that can receive transfers; Stripe collects the holder's details."""
    params: dict[str, Any] = {
        "type": "express",
        "country": country,
        "capabilities": {"transfers": {"requested": True}},
        "metadata": metadata,
    }
    if email:
        params["email"] = email
    return _call(_client().v1.accounts.create, params, key=idempotency_key)


def connect_account_retrieve(account_id: str) -> dict[str, Any]:
    return _call(_client().v1.accounts.retrieve, {}, object_id=account_id)


def account_link_create(*, account_id: str, refresh_url: str, return_url: str) -> dict[str, Any]:
    """A single-use onboarding link (Stripe's expire after a few minutes)."""
    return _call(
        _client().v1.account_links.create,
        {
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": refresh_url,
            "return_url": return_url,
        },
    )


def transfer_create(
    *,
    idempotency_key: str,
    amount_minor: int,
    currency: str,
    destination: str,
    transfer_group: str,
    metadata: dict[str, str],
    description: str,
) -> dict[str, Any]:
    return _call(
        _client().v1.transfers.create,
        {
            "amount": amount_minor,
            "currency": currency.lower(),
            "destination": destination,
            "transfer_group": transfer_group,
            "metadata": metadata,
            "description": description,
        },
        key=idempotency_key,
    )


def transfer_retrieve(transfer_id: str) -> dict[str, Any]:
    return _call(
        _client().v1.transfers.retrieve,
        {"expand": ["balance_transaction"]},
        object_id=transfer_id,
    )


def _all_pages(method, params: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params = {**params, "limit": 100}
    while True:
        page = _call(method, params)
        items.extend(page["data"])
        if not page.get("has_more") or not page["data"]:
            return items
        params["starting_after"] = page["data"][-1]["id"]


def transfers_list(*, transfer_group: str | None = None) -> list[dict[str, Any]]:
    """Every transfer (of one transfer group), newest first."""
    params = {"transfer_group": transfer_group} if transfer_group else {}
    return _all_pages(_client().v1.transfers.list, params)


def balance_transactions_list(*, type: str) -> list[dict[str, Any]]:
    return _all_pages(_client().v1.balance_transactions.list, {"type": type})


def balance_available(currency: str) -> int:
    balance = _call(_client().v1.balance.retrieve, {})
    return sum(
        entry["amount"] for entry in balance["available"] if entry["currency"] == currency.lower()
    )


def webhook_event_construct(payload: bytes, signature_header: str) -> dict[str, Any]:
    """The verified event as a dict, or `WebhookSignatureError`. Verifies the HMAC over the raw
    body with the SDK (which also refuses signatures older than 300 s), then refuses timestamps
    more than 60 s in the future, which the SDK lets through."""
    if not signature_header:
        raise WebhookSignatureError("No Stripe-Signature header.")
    try:
        stripe.Webhook.construct_event(
            payload,
            signature_header,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise WebhookSignatureError(str(exc)) from exc
    stamps = [
        part.split("=", 1)[1]
        for part in signature_header.split(",")
        if part.strip().startswith("t=")
    ]
    try:
        timestamp = int(stamps[0].strip())
    except (IndexError, ValueError) as exc:
        raise WebhookSignatureError("No timestamp in the signature header.") from exc
    if timestamp > time.time() + WEBHOOK_FUTURE_SKEW_SECONDS:
        raise WebhookSignatureError("Timestamp is in the future.")
    event = json.loads(payload)
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookSignatureError("Not a Stripe event.")
    return event
