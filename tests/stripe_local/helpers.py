"""Small builders shared by the local Stripe tests."""

from __future__ import annotations

from typing import Any

import stripe


def checkout_session_create(
    client: stripe.StripeClient, *, amount: int = 10000, currency: str = "eur", **extra: Any
) -> stripe.checkout.Session:
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": "Blanket training licence"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "https://blanket.test/licences/return?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://blanket.test/licences/cancelled",
        "customer_email": "buyer@ai.example",
        "metadata": {"licence_id": "42"},
        "payment_intent_data": {"metadata": {"licence_id": "42"}},
    }
    params.update(extra)
    return client.v1.checkout.sessions.create(params)


def connected_account_create(
    client: stripe.StripeClient, control: Any, *, onboarded: bool = True
) -> stripe.Account:
    account = client.v1.accounts.create(
        {
            "type": "express",
            "country": "DE",
            "email": "holder@rights.example",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"organisation_id": "7"},
        }
    )
    if onboarded:
        control.account_complete_onboarding(account.id)
        account = client.v1.accounts.retrieve(account.id)
    return account


def events_of(client: stripe.StripeClient, event_type: str, **params: Any) -> list[Any]:
    return list(client.v1.events.list({"type": event_type, **params}).auto_paging_iter())
