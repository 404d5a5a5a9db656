"""Shared builders for the licence and payment tests: the local Stripe wired into settings,
held webhooks delivered through Django's test client, products, quotes and licences."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from licensing.models import LicenceProduct
from licensing.services import licences, products
from royalties.services.ledger import ledger_account_balance, ledger_trial_balance
from tests.licensing.factories import caller_of

WEBHOOK_SECRET = "whsec_blanket_test_secret"
WEBHOOK_PATH = "/stripe/webhook/"

TIERS = [
    {"name": "Start-up", "price_minor": 500_000, "revenue_to_minor": 100_000_000},
    {
        "name": "Scale-up",
        "price_minor": 2_500_000,
        "revenue_from_minor": 100_000_000,
        "revenue_to_minor": 1_000_000_000,
    },
    {"name": "Enterprise", "price_minor": 10_000_000, "revenue_from_minor": 1_000_000_000},
]


@pytest.fixture
def stripe_control(local_stripe, settings):
    """The local Stripe, with Blanket's settings pointing at it and webhooks held, so a test
    fetches the signed deliveries and posts them itself."""
    settings.STRIPE_API_BASE = local_stripe.url
    settings.STRIPE_SECRET_KEY = local_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_TIMEOUT_SECONDS = 5
    control = local_stripe.control
    control.webhook_endpoint_create("http://127.0.0.1:9" + WEBHOOK_PATH, secret=WEBHOOK_SECRET)
    control.webhooks_hold()
    return control


@pytest.fixture
def deliver(client, stripe_control, django_capture_on_commit_callbacks):
    """Post every held webhook to our endpoint (optionally reversed and/or twice); the task
    runs eagerly after commit. Returns the HTTP status codes."""

    def run(*, order: str = "forward", duplicate: bool = False) -> list[int]:
        held = stripe_control.webhooks_held()
        stripe_control.webhooks_discard()
        if order == "reverse":
            held.reverse()
        if duplicate:
            held = held + held
        codes = []
        for item in held:
            with django_capture_on_commit_callbacks(execute=True):
                response = client.post(
                    WEBHOOK_PATH,
                    data=item["payload"],
                    content_type="application/json",
                    HTTP_STRIPE_SIGNATURE=item["headers"]["Stripe-Signature"],
                )
            codes.append(response.status_code)
        return codes

    return run


@pytest.fixture
def product(operator) -> LicenceProduct:
    return products.product_create(
        caller=caller_of(operator),
        code="ai-training",
        name="AI training licence",
        uses=["training", "fine_tuning"],
        media_types=["text", "image"],
        term_months=12,
        currency="EUR",
        minimum_fee_minor=750_000,
        ai_revenue_share_bp=250,
        tiers=TIERS,
    )


def quote_for(persona, product, *, revenue=50_000_000, volume=1_000, ai_revenue=0):
    return licences.quote_create(
        caller=caller_of(persona),
        product=product,
        annual_revenue_minor=revenue,
        training_volume=volume,
        ai_revenue_minor=ai_revenue,
    )


def licence_for(persona, product, **kwargs):
    quote = quote_for(persona, product, **kwargs)
    return licences.licence_from_quote(caller=caller_of(persona), quote=quote)


def balances(currency: str = "EUR") -> dict[str, int]:
    from royalties.models import LedgerAccount

    return {
        account.code.rsplit(":", 1)[0]: ledger_account_balance(account=account)
        for account in LedgerAccount.objects.filter(currency=currency)
    }


def trial_balance_is_zero() -> bool:
    return all(total == 0 for total in ledger_trial_balance().values())


def fee_of(amount: int) -> int:
    """The local Stripe's fee: 1.5 % rounded half up + 25 (as its own tests state)."""
    return (amount * 15 + 500) // 1000 + 25


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def as_json(response):
    return json.loads(response.content)
