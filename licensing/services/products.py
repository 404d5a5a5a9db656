"""Licence products and their tariffs: staff-managed writes, and the tariff as pure data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import PermissionError_
from licensing import pricing
from licensing.errors import LicensingError
from licensing.models import LicenceProduct, MediaType, TariffTier

PRODUCT_FIELDS = (
    "code",
    "name",
    "description",
    "uses",
    "media_types",
    "territory",
    "term_months",
    "declaration_period",
    "currency",
    "minimum_fee_minor",
    "ai_revenue_share_bp",
    "active",
)
TIER_FIELDS = (
    "name",
    "price_minor",
    "revenue_from_minor",
    "revenue_to_minor",
    "volume_from",
    "volume_to",
)
USES = ("training", "fine_tuning", "rag")


def _require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise PermissionError_("Only society staff manage licence products.")


def _tiers_check(tiers: Sequence[dict[str, Any]]) -> None:
    for position, tier in enumerate(tiers, start=1):
        if not str(tier.get("name", "")).strip():
            raise LicensingError(f"Tier {position} needs a name.", code="invalid_tariff")
        if int(tier.get("price_minor", -1)) < 0:
            raise LicensingError(
                f"Tier {position}: the price is never negative.", code="invalid_tariff"
            )
        for low, high in (("revenue_from_minor", "revenue_to_minor"), ("volume_from", "volume_to")):
            if tier.get(high) is not None and tier[high] <= tier.get(low, 0):
                raise LicensingError(
                    f"Tier {position}: {high} must be above {low}.", code="invalid_tariff"
                )


def _fields_check(fields: dict[str, Any]) -> None:
    unknown = [use for use in fields.get("uses", []) if use not in USES]
    if unknown:
        raise LicensingError(f"Unknown uses: {', '.join(unknown)}.", code="invalid_product")
    unknown = [m for m in fields.get("media_types", []) if m not in MediaType.values]
    if unknown:
        raise LicensingError(f"Unknown media types: {', '.join(unknown)}.", code="invalid_product")
    if "currency" in fields:
        fields["currency"] = str(fields["currency"]).upper()
    if fields.get("term_months") is not None and not 1 <= fields["term_months"] <= 120:
        raise LicensingError("The term is 1 to 120 months.", code="invalid_product")


def _tiers_replace(product: LicenceProduct, tiers: Sequence[dict[str, Any]]) -> None:
    product.tiers.all().delete()
    TariffTier.objects.bulk_create(
        TariffTier(
            product=product, position=position, **{k: t.get(k) for k in TIER_FIELDS if k in t}
        )
        for position, t in enumerate(tiers)
    )


@transaction.atomic
def product_create(
    *, caller: Caller, tiers: Sequence[dict[str, Any]] = (), **fields: Any
) -> LicenceProduct:
    _require_staff(caller)
    fields = {k: v for k, v in fields.items() if k in PRODUCT_FIELDS}
    _fields_check(fields)
    _tiers_check(tiers)
    if LicenceProduct.objects.filter(code=fields.get("code")).exists():
        raise LicensingError("A product with this code exists already.", code="duplicate_code")
    product = LicenceProduct.objects.create(**fields)
    _tiers_replace(product, tiers)
    audit_record(
        action="product.create",
        caller=caller,
        obj=product,
        details={"code": product.code, "tiers": len(tiers)},
    )
    return product


@transaction.atomic
def product_update(
    *,
    caller: Caller,
    product: LicenceProduct,
    tiers: Sequence[dict[str, Any]] | None = None,
    **fields: Any,
) -> LicenceProduct:
    """Change the product; `tiers`, when given, replace the tariff's tiers as a set. Existing
    quotes and licences keep the price they were given."""
    _require_staff(caller)
    fields = {k: v for k, v in fields.items() if k in PRODUCT_FIELDS and k != "code"}
    _fields_check(fields)
    product = LicenceProduct.objects.select_for_update().get(pk=product.pk)
    for name, value in fields.items():
        setattr(product, name, value)
    product.save()
    if tiers is not None:
        _tiers_check(tiers)
        _tiers_replace(product, tiers)
    audit_record(
        action="product.update",
        caller=caller,
        obj=product,
        details={"fields": sorted(fields), "tiers_replaced": tiers is not None},
    )
    return product


def product_tariff(product: LicenceProduct) -> pricing.Tariff:
    return pricing.Tariff(
        currency=product.currency,
        tiers=tuple(
            pricing.Tier(
                name=t.name,
                price_minor=t.price_minor,
                revenue_from_minor=t.revenue_from_minor,
                revenue_to_minor=t.revenue_to_minor,
                volume_from=t.volume_from,
                volume_to=t.volume_to,
            )
            for t in product.tiers.order_by("position", "pk")
        ),
        minimum_fee_minor=product.minimum_fee_minor,
        ai_revenue_share_bp=product.ai_revenue_share_bp,
    )
