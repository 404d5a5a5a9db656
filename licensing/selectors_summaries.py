"""Reads for the EU AI Act training-content summary (Art. 53(1)(d)).

``training_summary_figures`` computes the sections Blanket can state from its own records,
following the structure of the Commission's template (July 2025): 1. general information,
2. list of data sources (here the category "data licensed from rights holders": the collective
licence), 3. relevant data-processing aspects (here: rights reservations). Only ACCEPTED
declarations of the licensee for the model (name and version) count: a draft, a declaration
still processing, a rejected one and one superseded by a correction change nothing.

Every figure is an aggregate in the database (``Sum``/``Count`` over the declarations and
their per-work usage), never a Python loop over lines. ``training_summary_document`` merges
the stored figures with the licensee's free text into the public document.
"""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import Organisation, OrganisationKind
from accounts.scoping import Caller, scope
from licensing.models import (
    Consent,
    DeclarationReservedIdentifier,
    DeclarationStatus,
    DeclarationWorkUsage,
    MediaType,
    Reservation,
    ReservationKind,
    TrainingSummary,
    TrainingSummaryStatus,
    UsageDeclaration,
    Work,
)

SCHEMA = "blanket.training-summary/1"
TEMPLATE = (
    "European Commission, template for the public summary of training content for "
    "general-purpose AI models (AI Act Art. 53(1)(d)), July 2025"
)
SOURCE_CATEGORY = "Commercial / private data licensed from rights holders"

# The template's modalities; a media type of the repertoire maps to one of them.
MODALITY_OF_MEDIA = {
    MediaType.TEXT: "text",
    MediaType.CODE: "text",
    MediaType.IMAGE: "image",
    MediaType.AUDIO: "audio",
    MediaType.VIDEO: "video",
    MediaType.DATASET: "other",
}
MODALITIES = ("text", "image", "audio", "video", "other")

# The template asks for the training data size per modality in broad ranges. A range is given
# only where the declarations' unit measures that modality (tokens of text, images as items,
# seconds of audio and video, shown in hours); otherwise the quantity is given as declared.
_SIZE_RANGES = {
    ("text", "tokens"): (1_000_000_000, 10_000_000_000_000, "tokens"),
    ("image", "items"): (1_000_000, 1_000_000_000, "images"),
    ("video", "seconds"): (1_000 * 3600, 1_000_000 * 3600, "hours"),
    ("audio", "seconds"): (10_000 * 3600, 1_000_000 * 3600, "hours"),
}


def percent_text(part: int, whole: int) -> str:
    """Exact integer arithmetic, rounded half up to two places, as text."""
    if whole <= 0:
        return "0.00"
    hundredths = (part * 20_000 + whole) // (2 * whole)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def _compact(number: int) -> str:
    for size, suffix in ((10**12, " trillion"), (10**9, " billion"), (10**6, " million")):
        if number >= size and number % size == 0:
            return f"{number // size:,}{suffix}"
    return f"{number:,}"


def size_range(modality: str, unit: str, quantity: int) -> str:
    """The template's broad range for ``quantity`` of ``unit`` in ``modality``."""
    bounds = _SIZE_RANGES.get((modality, unit))
    if bounds is None:
        return f"{quantity:,} {unit or 'units'} (no range in the template for this unit)"
    low, high, label = bounds
    scale = 3600 if label == "hours" else 1
    low_text, high_text = _compact(low // scale), _compact(high // scale)
    if quantity < low:
        return f"Less than {low_text} {label}"
    if quantity <= high:
        return f"{low_text} to {high_text} {label}"
    return f"More than {high_text} {label}"


def training_summary_declarations(
    *, licensee: Organisation, model_name: str, model_version: str
) -> QuerySet[UsageDeclaration]:
    """The declarations a summary counts: the licensee's ACCEPTED ones for the model."""
    return UsageDeclaration.objects.filter(
        licence__licensee=licensee,
        model_name=model_name,
        model_version=model_version,
        status=DeclarationStatus.ACCEPTED,
    )


def _society_reservations() -> dict:
    """Reservations registered at the society now: in force (not withdrawn, and a member's or
    a verified one), by kind; and works their holders reserved for training."""
    in_force = Reservation.objects.filter(withdrawn_at__isnull=True).exclude(
        organisation__isnull=True, verified_at__isnull=True
    )
    by_kind = dict(in_force.values_list("kind").annotate(n=Count("pk")).order_by())
    reserved_works = Work.objects.filter(
        Q(consent_training=Consent.RESERVED)
        | Q(consent_training="", catalogue__default_consent=Consent.RESERVED)
    ).count()
    kinds = {kind: by_kind.get(kind, 0) for kind in ReservationKind.values}
    return {
        "reservations": {**kinds, "total": sum(kinds.values())},
        "reserved_works": reserved_works,
        "as_of": timezone.now().isoformat(),
    }


def _reservation_statement(reserved_lines: int) -> str:
    base = (
        "Works reserved by their rights holders (opt-out) and identifiers covered by a "
        "reservation registered at the society are never licensed. "
    )
    if reserved_lines == 0:
        return base + (
            "None of the declared usage named reserved works or identifiers: the registered "
            "reservations were honoured in the declared training content."
        )
    return base + (
        f"{reserved_lines:,} declared line(s) named reserved works or identifiers; that usage "
        "was flagged for compliance and no licence money was paid for it."
    )


def training_summary_figures(
    *, licensee: Organisation, model_name: str, model_version: str
) -> dict:
    """The generated sections of the summary (JSON-ready). Empty declarations list when the
    licensee has no accepted declaration for the model (the service refuses that)."""
    declarations = training_summary_declarations(
        licensee=licensee, model_name=model_name, model_version=model_version
    ).select_related("licence__product")
    rows = list(declarations.order_by("period_start", "pk"))
    ids = [d.pk for d in rows]

    volumes: dict[str, dict] = {}
    for d in rows:
        unit = d.unit or ("none" if d.nil else "unspecified")
        v = volumes.setdefault(
            unit,
            {
                "unit": unit,
                "declarations": 0,
                "lines": 0,
                "declared_quantity": 0,
                "matched_lines": 0,
                "matched_quantity": 0,
                "unmatched_lines": 0,
                "unmatched_quantity": 0,
                "reserved_lines": 0,
                "reserved_quantity": 0,
            },
        )
        v["declarations"] += 1
        for field in (
            "lines",
            "declared_quantity",
            "matched_lines",
            "matched_quantity",
            "unmatched_lines",
            "unmatched_quantity",
            "reserved_lines",
            "reserved_quantity",
        ):
            v[field] += getattr(d, field)

    usage = DeclarationWorkUsage.objects.filter(declaration_id__in=ids)
    licensed = usage.filter(reserved=False)
    by_media = list(
        licensed.values("declaration__unit", "work__media_type")
        .annotate(
            quantity=Sum("quantity"),
            lines=Sum("lines"),
            works=Count("work_id", distinct=True),
        )
        .order_by("declaration__unit", "work__media_type")
    )
    unit_totals: dict[str, int] = defaultdict(int)
    for row in by_media:
        unit_totals[row["declaration__unit"]] += row["quantity"]
    media_rows = [
        {
            "unit": row["declaration__unit"],
            "media_type": row["work__media_type"],
            "modality": MODALITY_OF_MEDIA.get(row["work__media_type"], "other"),
            "works": row["works"],
            "lines": row["lines"],
            "quantity": row["quantity"],
            "share_percent": percent_text(row["quantity"], unit_totals[row["declaration__unit"]]),
        }
        for row in sorted(by_media, key=lambda r: (r["declaration__unit"], -r["quantity"]))
    ]
    modality_size: dict[tuple[str, str], int] = defaultdict(int)
    for row in media_rows:
        modality_size[(row["modality"], row["unit"])] += row["quantity"]
    modalities = sorted({m for m, _ in modality_size}, key=MODALITIES.index)
    sizes = [
        {
            "modality": modality,
            "unit": unit,
            "quantity": quantity,
            "range": size_range(modality, unit, quantity),
        }
        for (modality, unit), quantity in sorted(
            modality_size.items(), key=lambda item: (MODALITIES.index(item[0][0]), item[0][1])
        )
    ]
    works = licensed.aggregate(n=Count("work_id", distinct=True))["n"] or 0
    reserved_usage = usage.filter(reserved=True).aggregate(
        works=Count("work_id", distinct=True), quantity=Sum("quantity"), lines=Sum("lines")
    )
    held = DeclarationReservedIdentifier.objects.filter(declaration_id__in=ids).aggregate(
        identifiers=Count("pk"), quantity=Sum("quantity"), lines=Sum("lines")
    )
    span = declarations.aggregate(first=Min("period_start"), last=Max("period_end"))
    licences: dict[int, dict] = {}
    for d in rows:
        licence = d.licence
        licences.setdefault(
            licence.pk,
            {
                "id": licence.pk,
                "product": licence.product.code,
                "product_name": licence.product.name,
                "uses": licence.uses,
                "territory": licence.territory,
                "starts_on": licence.starts_on.isoformat() if licence.starts_on else None,
                "ends_on": licence.ends_on.isoformat() if licence.ends_on else None,
            },
        )
    society = Organisation.objects.filter(kind=OrganisationKind.SOCIETY).order_by("pk").first()
    totals = {
        key: sum(getattr(d, key) for d in rows)
        for key in ("lines", "matched_lines", "unmatched_lines", "reserved_lines")
    }
    return {
        "schema": SCHEMA,
        "template": TEMPLATE,
        "generated_at": timezone.now().isoformat(),
        "general": {
            "provider": {"name": licensee.name, "code": licensee.code},
            "model": {"name": model_name, "version": model_version},
            "modalities": modalities,
            "size_by_modality": sizes,
            "size_note": "Licensed repertoire only, from the accepted usage declarations.",
        },
        "data_sources": {
            "licensed": {
                "category": SOURCE_CATEGORY,
                "licensor": society.name if society else "",
                "licence_kind": "Collective (blanket) licence for AI training",
                "licences": list(licences.values()),
                "periods": {
                    "first_day": span["first"].isoformat() if span["first"] else None,
                    "last_day": span["last"].isoformat() if span["last"] else None,
                    "periods": sorted({d.period for d in rows}),
                },
                "declarations": [
                    {
                        "id": d.pk,
                        "licence": d.licence_id,
                        "period": d.period,
                        "period_start": d.period_start.isoformat(),
                        "period_end": d.period_end.isoformat(),
                        "unit": d.unit,
                        "nil": d.nil,
                        "lines": d.lines,
                        "declared_quantity": d.declared_quantity,
                        "matched_lines": d.matched_lines,
                        "matched_quantity": d.matched_quantity,
                        "unmatched_lines": d.unmatched_lines,
                        "unmatched_quantity": d.unmatched_quantity,
                        "reserved_lines": d.reserved_lines,
                        "reserved_quantity": d.reserved_quantity,
                    }
                    for d in rows
                ],
                "volumes": list(volumes.values()),
                "lines": totals,
                "works_matched": works,
                "by_media_type": media_rows,
            },
        },
        "processing": {
            "reservations": {
                # Honoured: no declared line named reserved content. Either way the licence
                # never covers reserved content, and declared use of it is flagged, not paid.
                "honoured": totals["reserved_lines"] == 0,
                "licence_excludes_reserved": True,
                "statement": _reservation_statement(totals["reserved_lines"]),
                "declared_reserved_lines": totals["reserved_lines"],
                "declared_reserved_quantity": [
                    {"unit": v["unit"], "quantity": v["reserved_quantity"]}
                    for v in volumes.values()
                ],
                "reserved_works_declared": reserved_usage["works"] or 0,
                "reserved_work_lines": reserved_usage["lines"] or 0,
                "reserved_identifiers_declared": held["identifiers"] or 0,
                "reserved_identifier_lines": held["lines"] or 0,
                "registered_at_society": _society_reservations(),
            },
        },
    }


def training_summary_document(summary: TrainingSummary) -> dict:
    """The public document: the stored figures with the licensee's text in their sections."""
    data = summary.data or {}
    general = dict(data.get("general", {}))
    general["provider"] = {**general.get("provider", {}), "contact": summary.contact}
    general["model"] = {
        **general.get("model", {}),
        "description": summary.model_description,
        "placed_on_market": (
            summary.placed_on_market.isoformat() if summary.placed_on_market else None
        ),
    }
    sources = dict(data.get("data_sources", {}))
    sources["other_sources"] = summary.other_sources
    processing = dict(data.get("processing", {}))
    processing["narrative"] = summary.processing_narrative
    return {
        "schema": data.get("schema", SCHEMA),
        "template": data.get("template", TEMPLATE),
        "id": summary.pk,
        "version": summary.version,
        "status": summary.status,
        "generated_at": summary.generated_at.isoformat(),
        "published_at": summary.published_at.isoformat() if summary.published_at else None,
        "general": general,
        "data_sources": sources,
        "processing": processing,
    }


def training_summary_list(*, caller: Caller) -> QuerySet[TrainingSummary]:
    """The caller's summaries (staff: every one), drafts included."""
    return scope(TrainingSummary.objects.select_related("licensee"), caller).order_by(
        "model_name", "model_version", "-version", "-pk"
    )


def training_summary_visible(*, caller: Caller | None) -> QuerySet[TrainingSummary]:
    """What a caller may read: every published summary (the public), and its own drafts."""
    summaries = TrainingSummary.objects.select_related("licensee")
    if caller is None:
        return summaries.filter(status=TrainingSummaryStatus.PUBLISHED)
    if caller.is_staff:
        return summaries
    mine = Q(licensee_id=caller.organisation.pk) if caller.organisation else Q(pk__in=[])
    return summaries.filter(Q(status=TrainingSummaryStatus.PUBLISHED) | mine)


def training_summary_models(*, licensee: Organisation) -> list[dict]:
    """The (model name, version) pairs with accepted declarations, for the generate form."""
    return list(
        UsageDeclaration.objects.filter(
            licence__licensee=licensee, status=DeclarationStatus.ACCEPTED
        )
        .values("model_name", "model_version")
        .annotate(declarations=Count("pk"))
        .order_by("model_name", "model_version")
    )
