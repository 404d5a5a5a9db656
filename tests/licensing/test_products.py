"""Products and tariffs through the services: staff only, tiers replaced as a set, prices to
the minor unit."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from config.errors import PermissionError_
from licensing.errors import LicensingError
from licensing.services import products
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import quote_for


@pytest.mark.parametrize(
    ("revenue", "volume", "ai_revenue", "expected", "tier"),
    [
        # 5,000.00 tier is below the 7,500.00 minimum fee
        (50_000_000, 1_000, 0, 750_000, "Start-up"),
        # Scale-up tier: 25,000.00
        (100_000_000, 1_000, 0, 2_500_000, "Scale-up"),
        # 2.5 % of 1,234,567.89 AI revenue = 30,864.19725 -> 30,864.20 beats the tier
        (500_000_000, 1_000, 123_456_789, 3_086_420, "Scale-up"),
        # 2.5 % of 0.20 = 0.005 -> rounds half up to 0.01, far below the tier
        (2_000_000_000, 1, 20, 10_000_000, "Enterprise"),
    ],
)
def test_quotes_match_hand_computed_prices(
    licensee, product, revenue, volume, ai_revenue, expected, tier
):
    quote = quote_for(licensee, product, revenue=revenue, volume=volume, ai_revenue=ai_revenue)
    assert (quote.amount_minor, quote.currency, quote.tier) == (expected, "EUR", tier)
    assert quote.breakdown[-1] == {
        "item": "price: the highest of the above",
        "amount_minor": expected,
    }


def test_tiers_are_replaced_as_a_set_and_audited(operator, product):
    products.product_update(
        caller=caller_of(operator),
        product=product,
        name="AI training (2027)",
        tiers=[{"name": "Flat", "price_minor": 1_000_000}],
    )
    product.refresh_from_db()
    assert product.name == "AI training (2027)"
    assert list(product.tiers.values_list("name", "price_minor")) == [("Flat", 1_000_000)]
    assert products.product_tariff(product).tiers[0].price_minor == 1_000_000
    assert AuditEvent.objects.filter(action="product.update", object_id=str(product.pk)).exists()


def test_only_staff_manage_products(licensee, product):
    with pytest.raises(PermissionError_):
        products.product_create(caller=caller_of(licensee), code="x", name="X")
    with pytest.raises(PermissionError_):
        products.product_update(caller=caller_of(licensee), product=product, name="Mine")


def test_bad_tiers_are_refused(operator):
    with pytest.raises(LicensingError):
        products.product_create(
            caller=caller_of(operator),
            code="bad",
            name="Bad",
            tiers=[
                {
                    "name": "Upside down",
                    "price_minor": 1,
                    "revenue_from_minor": 10,
                    "revenue_to_minor": 5,
                }
            ],
        )


def test_no_tier_covers_the_revenue(operator, licensee):
    product = products.product_create(
        caller=caller_of(operator),
        code="narrow",
        name="Narrow",
        tiers=[{"name": "Small", "price_minor": 100, "revenue_to_minor": 1000}],
    )
    with pytest.raises(LicensingError, match="no tier"):
        quote_for(licensee, product, revenue=5000)
