"""The demo's licence sales: two products with tariffs, and each demo licensee buying a licence
through the local Stripe - one by card (Checkout), one by a Stripe Invoice paid late.

Everything goes through the real services and the real SDK against `stripe_local`; webhooks
are held by the local Stripe and delivered through Blanket's own webhook path (signature
verification, store once, process), exactly as Stripe's would be. Safe to run again: a
licensee that already holds an active licence of a product buys nothing more.

From `manage.py demo` (see `demo_stripe_start` and `demo_licences_seed`):

    server = demo_stripe_start(site_url="http://127.0.0.1:8000")
    sales = demo_licences_seed(
        staff=demo.staff["operator"],
        licensees={name: (demo.organisations[name], demo.owners[name])
                   for name in ("Aleph AI Ltd", "Corvid Labs")},
        stripe_control=server.control,
    )
    server.control.webhooks_configure(mode="immediate")  # live webhooks while serving
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from accounts.models import Organisation, User
from accounts.scoping import Caller, caller_for_user
from licensing.models import Licence, LicenceProduct, LicenceStatus
from licensing.services import licences, products
from licensing.services.stripe_events import stripe_event_receive
from royalties.integrations.stripe_client import webhook_event_construct

PRODUCTS = (
    {
        "code": "ai-training-2026",
        "name": "AI training licence",
        "description": "Train generative models on the society's licensed repertoire.",
        "uses": ["training", "fine_tuning"],
        "media_types": [],
        "territory": "WORLD",
        "term_months": 12,
        "currency": "EUR",
        "minimum_fee_minor": 750_000,
        "ai_revenue_share_bp": 250,
        "tiers": [
            {"name": "Start-up", "price_minor": 500_000, "revenue_to_minor": 100_000_000},
            {
                "name": "Scale-up",
                "price_minor": 2_500_000,
                "revenue_from_minor": 100_000_000,
                "revenue_to_minor": 1_000_000_000,
            },
            {"name": "Enterprise", "price_minor": 10_000_000, "revenue_from_minor": 1_000_000_000},
        ],
    },
    {
        "code": "rag-eu-2026",
        "name": "Retrieval (RAG) licence, EU",
        "description": "Retrieve and quote licensed works in AI answers, in the EU.",
        "uses": ["rag"],
        "media_types": ["text", "image"],
        "territory": "EU",
        "term_months": 12,
        "currency": "EUR",
        "minimum_fee_minor": 300_000,
        "ai_revenue_share_bp": None,
        "tiers": [
            {"name": "Up to 1M items", "price_minor": 400_000, "volume_to": 1_000_000},
            {"name": "Over 1M items", "price_minor": 1_200_000, "volume_from": 1_000_000},
        ],
    },
)

# licensee name -> (product code, annual revenue, training volume, AI revenue, how it pays)
PURCHASES = {
    "Aleph AI Ltd": ("ai-training-2026", 450_000_000, 2_000_000, 150_000_000, "checkout"),
    "Corvid Labs": ("rag-eu-2026", 80_000_000, 250_000, 0, "invoice"),
}


def demo_stripe_start(*, site_url: str):
    """Start the local Stripe in this process where `STRIPE_API_BASE` points, with one webhook
    endpoint (`site_url` + /stripe/webhook/, signed with `STRIPE_WEBHOOK_SECRET`) held while
    seeding. Returns the `LocalStripe`; the caller stops it when the demo ends."""
    from stripe_local import LocalStripe  # dev-only package: never imported in production

    base = urlsplit(settings.STRIPE_API_BASE)
    server = LocalStripe(host=base.hostname or "127.0.0.1", port=base.port or 12111)
    server.start()
    server.control.webhook_endpoint_create(
        site_url.rstrip("/") + "/stripe/webhook/", secret=settings.STRIPE_WEBHOOK_SECRET
    )
    server.control.webhooks_hold()
    return server


def demo_webhooks_deliver(stripe_control: Any) -> int:
    """Deliver every held webhook through the same path as `POST /stripe/webhook/`: verify
    the signature, store once, process (eagerly, or on a worker). Returns how many."""
    held = stripe_control.webhooks_held()
    stripe_control.webhooks_discard()
    for item in held:
        event = webhook_event_construct(
            item["payload"].encode("utf-8"), item["headers"]["Stripe-Signature"]
        )
        stripe_event_receive(event=event)
    return len(held)


def demo_products_seed(*, staff: User) -> dict[str, LicenceProduct]:
    caller = Caller(user=staff, organisation=None)
    made = {}
    for spec in PRODUCTS:
        product = LicenceProduct.objects.filter(code=spec["code"]).first()
        made[spec["code"]] = product or products.product_create(caller=caller, **spec)
    return made


def demo_licences_seed(
    *,
    staff: User,
    licensees: dict[str, tuple[Organisation, User]],
    stripe_control: Any,
    webhook_deliver: Callable[[Any], int] = demo_webhooks_deliver,
) -> list[Licence]:
    """Products, then each named licensee buys its licence through the local Stripe."""
    catalogue = demo_products_seed(staff=staff)
    sold = []
    for name, (organisation, owner) in licensees.items():
        if name not in PURCHASES:
            continue
        code, revenue, volume, ai_revenue, method = PURCHASES[name]
        product = catalogue[code]
        existing = Licence.objects.filter(
            licensee=organisation, product=product, status=LicenceStatus.ACTIVE
        ).first()
        if existing is not None:
            sold.append(existing)
            continue
        caller = caller_for_user(owner, organisation)
        quote = licences.quote_create(
            caller=caller,
            product=product,
            annual_revenue_minor=revenue,
            training_volume=volume,
            ai_revenue_minor=ai_revenue,
        )
        licence = licences.licence_from_quote(caller=caller, quote=quote)
        if method == "checkout":
            payment = licences.licence_checkout_start(caller=caller, licence=licence)
            stripe_control.checkout_session_pay(payment.checkout_session_id, email=owner.email)
        else:
            payment = licences.licence_invoice_start(caller=caller, licence=licence)
            webhook_deliver(stripe_control)  # invoice.sent etc.: stored, ignored
            stripe_control.invoice_mark_overdue(payment.invoice_id)
            stripe_control.invoice_pay(payment.invoice_id)  # paid late
        webhook_deliver(stripe_control)
        licence.refresh_from_db()
        sold.append(licence)
    return sold
