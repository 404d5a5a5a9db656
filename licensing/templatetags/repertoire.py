"""Presentation helpers for the repertoire pages (no queries except the dashboard card)."""

from __future__ import annotations

from django import template
from django.db.models import Count, Q

from licensing import selectors
from licensing.models import ConflictStatus, Use, WorkStatus
from licensing.services.repertoire import share_percent_from_ppm

register = template.Library()


@register.filter
def consents(work) -> list[dict]:
    """Per use: the effective consent of the work and whether it follows the catalogue."""
    rows = []
    for use, label in Use.choices:
        own = getattr(work, f"consent_{use}")
        rows.append(
            {
                "use": use,
                "label": label,
                "value": own or work.catalogue.default_consent,
                "inherited": not own,
            }
        )
    return rows


@register.filter
def percent(ppm: int) -> str:
    """333333 -> '33.3333', 1000000 -> '100'."""
    text = format(share_percent_from_ppm(ppm), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.inclusion_tag("licensing/_dashboard_card.html", takes_context=True)
def catalogue_summary(context) -> dict:
    caller = context.get("caller")
    if caller is None or caller.organisation is None:
        return {"show": False}
    mine = selectors.catalogue_list(caller=caller).filter(owner=caller.organisation)
    totals = (
        selectors.work_list(caller=caller)
        .filter(catalogue__owner=caller.organisation)
        .aggregate(works=Count("pk"), disputed=Count("pk", filter=Q(status=WorkStatus.DISPUTED)))
    )
    return {
        "show": True,
        "catalogues": mine.count(),
        "works": totals["works"],
        "disputed": totals["disputed"],
        "open_conflicts": selectors.conflict_list(
            caller=caller, status=ConflictStatus.OPEN
        ).count(),
    }
