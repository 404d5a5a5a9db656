"""`{{ amount_minor|money:currency }}` → "7,500.00 EUR". Display only: integers in, text out."""

from __future__ import annotations

from django import template

register = template.Library()

ZERO_DECIMAL = {"JPY", "KRW", "CLP", "VND", "ISK", "HUF", "TWD", "UGX"}


def money_text(amount_minor: int | None, currency: str = "EUR") -> str:
    if amount_minor is None:
        return "—"
    currency = (currency or "").upper()
    sign = "-" if amount_minor < 0 else ""
    value = abs(int(amount_minor))
    if currency in ZERO_DECIMAL:
        return f"{sign}{value:,} {currency}"
    major, minor = divmod(value, 100)
    return f"{sign}{major:,}.{minor:02d} {currency}"


@register.filter
def money(amount_minor: int | None, currency: str = "EUR") -> str:
    return money_text(amount_minor, currency)


@register.filter
def negate(amount_minor: int) -> int:
    return -int(amount_minor)
