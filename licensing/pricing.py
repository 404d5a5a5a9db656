"""Tariff arithmetic: what a licence costs. Pure functions over integers; no ORM, no floats.

A product's tariff has tiers by the licensee's declared annual revenue band and/or training
volume band, each with a price for the product's whole term; a minimum fee; and optionally a
percentage of the licensee's AI revenue for the term ("whichever is higher"). The price is

    max(tier price, minimum fee, AI revenue x share)

where the share amount is rounded half up to the minor unit, once, and every step is shown in
the breakdown so a licensee can check it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

BASIS_POINTS = 10_000


class PricingError(ValueError):
    pass


@dataclass(frozen=True)
class Tier:
    """Applies when revenue_from <= revenue < revenue_to and volume_from <= volume < volume_to.
    A `None` upper bound is open-ended."""

    name: str
    price_minor: int
    revenue_from_minor: int = 0
    revenue_to_minor: int | None = None
    volume_from: int = 0
    volume_to: int | None = None

    def matches(self, *, revenue_minor: int, volume: int) -> bool:
        return (
            self.revenue_from_minor <= revenue_minor
            and (self.revenue_to_minor is None or revenue_minor < self.revenue_to_minor)
            and self.volume_from <= volume
            and (self.volume_to is None or volume < self.volume_to)
        )


@dataclass(frozen=True)
class Tariff:
    currency: str
    tiers: tuple[Tier, ...]
    minimum_fee_minor: int = 0
    ai_revenue_share_bp: int | None = None  # e.g. 250 = 2.5 % of AI revenue


@dataclass(frozen=True)
class Price:
    amount_minor: int
    currency: str
    tier: str | None
    breakdown: list[dict] = field(default_factory=list)


def share_of(amount_minor: int, basis_points: int) -> int:
    """amount x bp / 10,000, rounded half up to the minor unit (integers only)."""
    if amount_minor < 0 or basis_points < 0:
        raise PricingError("amounts and shares are never negative")
    quotient, remainder = divmod(amount_minor * basis_points, BASIS_POINTS)
    return quotient + (1 if remainder * 2 >= BASIS_POINTS else 0)


def tariff_price(
    tariff: Tariff,
    *,
    annual_revenue_minor: int,
    training_volume: int,
    ai_revenue_minor: int = 0,
) -> Price:
    for value, name in (
        (annual_revenue_minor, "annual revenue"),
        (training_volume, "training volume"),
        (ai_revenue_minor, "AI revenue"),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PricingError(f"{name} must be a non-negative whole number")
    tier = next(
        (
            t
            for t in tariff.tiers
            if t.matches(revenue_minor=annual_revenue_minor, volume=training_volume)
        ),
        None,
    )
    if tier is None and tariff.tiers:
        raise PricingError("no tier of this tariff covers that revenue and volume")
    candidates = []
    breakdown = []
    if tier is not None:
        candidates.append(tier.price_minor)
        breakdown.append({"item": f"tier: {tier.name}", "amount_minor": tier.price_minor})
    candidates.append(tariff.minimum_fee_minor)
    breakdown.append({"item": "minimum fee", "amount_minor": tariff.minimum_fee_minor})
    if tariff.ai_revenue_share_bp is not None:
        share = share_of(ai_revenue_minor, tariff.ai_revenue_share_bp)
        candidates.append(share)
        breakdown.append(
            {
                "item": f"{Decimal(tariff.ai_revenue_share_bp) / 100}% of AI revenue "
                f"{ai_revenue_minor} (rounded half up)",
                "amount_minor": share,
            }
        )
    amount = max(candidates)
    breakdown.append({"item": "price: the highest of the above", "amount_minor": amount})
    return Price(
        amount_minor=amount,
        currency=tariff.currency,
        tier=tier.name if tier else None,
        breakdown=breakdown,
    )
