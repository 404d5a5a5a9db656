"""Reads of usage declarations: the match report."""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Q, Sum

from licensing.models import (
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationUnmatched,
    UnmatchedDismissal,
    UsageDeclaration,
)

TOP_UNMATCHED = 20


def _percent(part: int, whole: int) -> str:
    """Exact integer arithmetic, rounded half up to two places, as text."""
    if whole <= 0:
        return "0.00"
    hundredths = (part * 10_000 * 2 + whole) // (2 * whole)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def declaration_match_report(*, declaration: UsageDeclaration, top: int = TOP_UNMATCHED) -> dict:
    """Matched / unmatched / reserved lines and quantities, and the top unmatched identifiers."""

    def figures(lines: int, quantity: int) -> dict:
        return {
            "lines": lines,
            "quantity": quantity,
            "lines_percent": _percent(lines, declaration.lines),
            "quantity_percent": _percent(quantity, declaration.declared_quantity),
        }

    top_rows = DeclarationUnmatched.objects.filter(declaration=declaration).order_by(
        "-quantity", "scheme", "identifier"
    )[:top]
    held_rows = (
        DeclarationReservedIdentifier.objects.filter(declaration=declaration)
        .select_related("reservation")
        .order_by("-quantity", "scheme", "identifier")[:top]
    )
    return {
        "declaration": declaration.pk,
        "status": declaration.status,
        "unit": declaration.unit,
        "lines": declaration.lines,
        "declared_quantity": declaration.declared_quantity,
        "works_matched": declaration.works_matched,
        "matched": figures(declaration.matched_lines, declaration.matched_quantity),
        "unmatched": figures(declaration.unmatched_lines, declaration.unmatched_quantity),
        "reserved": figures(declaration.reserved_lines, declaration.reserved_quantity),
        "top_unmatched": [
            {
                "scheme": row.scheme,
                "identifier": row.identifier,
                "valid": row.valid,
                "note": row.note,
                "quantity": row.quantity,
                "lines": row.lines,
                "title": row.title,
            }
            for row in top_rows
        ],
        # Usage held by a registered reservation (identifier, URL prefix, domain) that named
        # no work: part of "reserved", flagged for compliance.
        "top_reserved_identifiers": [
            {
                "scheme": row.scheme,
                "identifier": row.identifier,
                "quantity": row.quantity,
                "lines": row.lines,
                "title": row.title,
                "reservation": (
                    {
                        "id": row.reservation.pk,
                        "kind": row.reservation.kind,
                        "value": row.reservation.value,
                    }
                    if row.reservation is not None
                    else None
                ),
            }
            for row in held_rows
        ],
    }


def unmatched_pool_list(*, scheme: str = "", q: str = "", valid_only: bool = False):
    """Unmatched identifiers of accepted declarations, grouped, most used first; identifiers
    staff dismissed are left out."""
    dismissed = UnmatchedDismissal.objects.filter(
        scheme=OuterRef("scheme"), identifier=OuterRef("identifier")
    )
    rows = DeclarationUnmatched.objects.filter(
        declaration__status=DeclarationStatus.ACCEPTED
    ).exclude(Exists(dismissed))
    if valid_only:
        rows = rows.filter(valid=True)
    if scheme:
        rows = rows.filter(scheme=scheme)
    if term := q.strip():
        rows = rows.filter(Q(identifier__icontains=term) | Q(title__icontains=term))
    return (
        rows.values("scheme", "identifier", "valid")
        .annotate(quantity=Sum("quantity"), lines=Sum("lines"), declarations=Count("declaration"))
        .order_by("-quantity", "scheme", "identifier")
    )
