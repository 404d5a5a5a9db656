"""Tariff examples computed by hand, to the minor unit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licensing.pricing import PricingError, Tariff, Tier, share_of, tariff_price

# A training licence in EUR: three revenue bands, a volume surcharge tier for the top band.
TRAINING = Tariff(
    currency="EUR",
    minimum_fee_minor=500_000,  # EUR 5,000.00
    ai_revenue_share_bp=250,  # 2.5 %
    tiers=(
        Tier("startup", 500_000, revenue_to_minor=100_000_000),  # < EUR 1M
        Tier("growth", 2_500_000, 100_000_000, 5_000_000_000),  # EUR 1M - 50M
        Tier("enterprise, < 1T tokens", 10_000_000, 5_000_000_000, None, 0, 10**12),
        Tier("enterprise, >= 1T tokens", 25_000_000, 5_000_000_000, None, 10**12, None),
    ),
)


@pytest.mark.parametrize(
    "revenue, volume, ai_revenue, expected, tier",
    [
        # startup: tier 5,000.00 = minimum; 2.5% of 100,000.00 = 2,500.00 -> 5,000.00
        (50_000_000, 10**9, 10_000_000, 500_000, "startup"),
        # growth: 25,000.00; 2.5% of 2,000,000.00 = 50,000.00 -> the share wins
        (2_000_000_000, 10**10, 200_000_000, 5_000_000, "growth"),
        # growth boundary: exactly EUR 1M revenue is growth, not startup
        (100_000_000, 0, 0, 2_500_000, "growth"),
        # enterprise with huge volume: 250,000.00 beats 2.5% of 9,999,999.99 = 250,000.00 (tie)
        (9_000_000_000, 2 * 10**12, 999_999_999, 25_000_000, "enterprise, >= 1T tokens"),
        # 2.5% of 1,234,567.89 = 30,864.19725 -> rounds half up to 30,864.20 (> 25,000.00)
        (2_000_000_000, 10**10, 123_456_789, 3_086_420, "growth"),
    ],
)
def test_hand_computed_tariff_examples(revenue, volume, ai_revenue, expected, tier):
    price = tariff_price(
        TRAINING, annual_revenue_minor=revenue, training_volume=volume, ai_revenue_minor=ai_revenue
    )
    assert (price.amount_minor, price.tier, price.currency) == (expected, tier, "EUR")
    assert price.breakdown[-1]["amount_minor"] == expected


def test_share_rounds_half_up_once():
    assert share_of(2, 2_500) == 1  # 0.5 -> 1
    assert share_of(1, 2_500) == 0  # 0.25 -> 0
    assert share_of(123_456_789, 250) == 3_086_420


@given(st.integers(0, 10**18), st.integers(0, 10_000))
def test_share_is_within_half_a_minor_unit_of_the_exact_value(amount, bp):
    from fractions import Fraction

    exact = Fraction(amount * bp, 10_000)
    assert abs(share_of(amount, bp) - exact) <= Fraction(1, 2)


@given(st.integers(0, 10**14), st.integers(0, 10**14), st.integers(0, 10**14))
def test_the_price_is_never_below_the_minimum_and_never_below_any_component(rev, vol, ai):
    price = tariff_price(
        TRAINING, annual_revenue_minor=rev, training_volume=vol, ai_revenue_minor=ai
    )
    assert price.amount_minor >= TRAINING.minimum_fee_minor
    assert price.amount_minor == max(line["amount_minor"] for line in price.breakdown[:-1])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_negative_or_fractional_inputs_are_refused(bad):
    with pytest.raises(PricingError):
        tariff_price(TRAINING, annual_revenue_minor=bad, training_volume=0)


def test_a_revenue_no_tier_covers_is_refused():
    gap = Tariff(currency="EUR", tiers=(Tier("small", 100, revenue_to_minor=10),))
    with pytest.raises(PricingError, match="no tier"):
        tariff_price(gap, annual_revenue_minor=10, training_volume=0)
