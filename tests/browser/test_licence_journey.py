"""A licensee buys a licence in a real browser: product, quote with its breakdown, accept,
pay by card on the local Stripe's hosted Checkout page, return to Blanket's success page, see
the licence active and download the signed certificate. The webhooks Stripe sends meanwhile
are held and delivered afterwards to the live server: duplicates of what the return page
already confirmed, they change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accounts.models import OrganisationKind, Role
from accounts.scoping import Caller
from accounts.services import membership_add
from licensing.models import Licence, LicenceStatus, StripeEvent
from licensing.services.products import product_create
from royalties.models import JournalEntry
from tests.factories import OrganisationFactory, UserFactory
from tests.licensing.payments_support import TIERS, WEBHOOK_SECRET

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def test_licensee_gets_a_quote_pays_by_card_and_downloads_the_certificate(
    page, live_server, artifacts, local_stripe, settings
):
    settings.STRIPE_API_BASE = local_stripe.url
    settings.STRIPE_SECRET_KEY = local_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    control = local_stripe.control
    control.webhook_endpoint_create(live_server.url + "/stripe/webhook/", secret=WEBHOOK_SECRET)
    control.webhooks_hold()
    product_create(
        caller=Caller(user=UserFactory(is_staff=True), organisation=None),
        code="ai-training",
        name="AI training licence",
        uses=["training"],
        currency="EUR",
        minimum_fee_minor=750_000,
        ai_revenue_share_bp=250,
        tiers=TIERS,
    )
    organisation = OrganisationFactory(kind=OrganisationKind.LICENSEE, name="Aleph AI Ltd")
    user = UserFactory(email="buyer@aleph.example")
    membership_add(organisation=organisation, user=user, role=Role.OWNER)

    page.goto("/login/")
    page.fill("#id_username", "buyer@aleph.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")

    page.click("nav >> text=Products")
    assert "AI training licence" in page.locator("main").inner_text()
    page.click("text=Quote this")
    page.fill("#id_annual_revenue", "5000000")
    page.fill("#id_training_volume", "20000")
    page.fill("#id_ai_revenue", "1234567.89")
    page.click("button:has-text('Calculate price')")
    page.wait_for_selector("#quote-price")
    assert page.locator("#quote-price").inner_text() == "30,864.20 EUR"
    assert "tier: Scale-up" in page.locator("#quote-breakdown").inner_text()
    page.screenshot(path=str(artifacts / "quote.png"), full_page=True)

    page.click("button:has-text('Accept and continue to payment')")
    page.wait_for_selector("#pay-card")
    page.click("#pay-card")
    page.wait_for_url(local_stripe.url + "/**")
    assert "30,864.20" in page.locator("body").inner_text()
    page.fill("input[name=card]", "4242 4242 4242 4242")
    page.click("button[name=action][value=pay]")

    page.wait_for_url("**/paid/**")
    assert "your licence is active" in page.locator("main").inner_text()
    page.click("#to-licence")
    page.wait_for_selector("#licence-status[data-status=active]")
    page.screenshot(path=str(artifacts / "licence-active.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#certificate-json")
    document = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    licence = Licence.objects.get(licensee=organisation)
    assert document["certificate"]["serial"] == licence.certificate.serial
    assert document["certificate"]["licensee"]["name"] == "Aleph AI Ltd"
    verdict = page.request.post(
        live_server.url + "/api/v1/certificates/verify",
        data=json.dumps(document),
        headers={"Content-Type": "application/json"},
    ).json()
    assert verdict["status"] == "valid"

    # Stripe's webhooks arrive late, reversed and twice over: nothing changes.
    deliveries = control.webhooks_flush(order="reverse", duplicate=True)
    assert deliveries and {d["status"] for d in deliveries} == {200}
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE
    assert JournalEntry.objects.count() == 1
    assert StripeEvent.objects.filter(type="checkout.session.completed").count() == 1
