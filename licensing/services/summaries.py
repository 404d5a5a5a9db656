"""The licensee's public training-content summary (EU AI Act Art. 53(1)(d)): generate a draft
from the accepted declarations, edit its free text, publish it.

A draft is one row per (licensee, model name, model version); generating again refreshes its
figures and keeps the text. Publishing freezes the row for good (no service changes a published
summary); generating after a publication opens the next version as a new draft, starting from
the published text.
"""

from __future__ import annotations

import re
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import OrganisationKind
from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import ConflictError, PermissionError_
from licensing.errors import LicensingError
from licensing.models import TrainingSummary, TrainingSummaryStatus
from licensing.selectors_summaries import training_summary_figures

TEXT_FIELDS = ("model_description", "other_sources", "processing_narrative")
EDITABLE_FIELDS = ("contact", "placed_on_market", *TEXT_FIELDS)
TEXT_LIMITS = {"model_description": 5_000, "other_sources": 20_000, "processing_narrative": 20_000}
CONTACT_LIMIT = 300
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https://[^\s/]+\.[^\s]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class SummaryError(LicensingError):
    code = "invalid_summary"


def _require_licensee(caller: Caller):
    caller.require_write()
    organisation = caller.require_organisation()
    if organisation.kind != OrganisationKind.LICENSEE:
        raise PermissionError_(
            "Only a licensee publishes a training-content summary for its models.",
            code="not_a_licensee",
        )
    return organisation


def _model_clean(model_name: str, model_version: str) -> tuple[str, str]:
    name, version = (model_name or "").strip(), (model_version or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["model_name"] = ["Name the model, as in its usage declarations."]
    elif len(name) > 200:
        errors["model_name"] = ["At most 200 characters."]
    if not version:
        errors["model_version"] = ["Give the model version, as in its usage declarations."]
    elif len(version) > 100:
        errors["model_version"] = ["At most 100 characters."]
    if errors:
        raise SummaryError("The model is not named correctly.", details=errors)
    return name, version


def training_summary_generate(
    *, caller: Caller, model_name: str, model_version: str
) -> TrainingSummary:
    """The draft summary of the caller's model with freshly computed figures: the open draft
    regenerated, or a new draft (the next version, with the last published text)."""
    licensee = _require_licensee(caller)
    name, version = _model_clean(model_name, model_version)
    figures = training_summary_figures(licensee=licensee, model_name=name, model_version=version)
    if not figures["data_sources"]["licensed"]["declarations"]:
        raise SummaryError(
            f"No accepted usage declaration for {name} {version}: a summary is generated from "
            "the accepted declarations of the model.",
            code="no_accepted_declarations",
            details={"model_version": ["No accepted declaration names this model and version."]},
        )
    now = timezone.now()
    key = {"licensee": licensee, "model_name": name, "model_version": version}
    try:
        with transaction.atomic():
            draft = (
                TrainingSummary.objects.select_for_update()
                .filter(**key, status=TrainingSummaryStatus.DRAFT)
                .first()
            )
            if draft is not None:
                draft.data, draft.generated_at, draft.updated_at = figures, now, now
                draft.save(update_fields=["data", "generated_at", "updated_at"])
                action = "training_summary.regenerate"
            else:
                published = TrainingSummary.objects.filter(
                    **key, status=TrainingSummaryStatus.PUBLISHED
                )
                last = published.order_by("-version").first()
                top = published.aggregate(v=Max("version"))["v"] or 0
                text = {field: getattr(last, field) for field in EDITABLE_FIELDS} if last else {}
                draft = TrainingSummary.objects.create(
                    **key,
                    **text,
                    version=top + 1,
                    data=figures,
                    generated_at=now,
                    created_by=caller.user,
                    created_at=now,
                    updated_at=now,
                )
                action = "training_summary.generate"
            audit_record(
                action=action,
                caller=caller,
                obj=draft,
                details={"model": f"{name} {version}", "version": draft.version},
            )
    except IntegrityError:  # another request opened the draft at the same moment
        raise ConflictError(
            "The summary is being generated by another request; try again.",
            code="summary_busy",
        ) from None
    return draft


def _text_clean(field: str, value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SummaryError("Invalid summary text.", details={field: ["Must be text."]})
    value = value.replace("\r\n", "\n").strip()
    limit = TEXT_LIMITS.get(field, CONTACT_LIMIT)
    if len(value) > limit:
        raise SummaryError(
            "Invalid summary text.",
            details={field: [f"At most {limit:,} characters (this is {len(value):,})."]},
        )
    if _CONTROL.search(value):
        raise SummaryError(
            "Invalid summary text.", details={field: ["Remove the control characters."]}
        )
    return value


def training_summary_clean(data: dict) -> dict:
    """The editable fields of ``data``, cleaned; every problem reported per field."""
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    errors: dict[str, list[str]] = {}
    for field in unknown:
        errors[field] = [
            "Cannot be edited: only " + ", ".join(EDITABLE_FIELDS) + " are the licensee's text."
        ]
    cleaned: dict = {}
    for field in EDITABLE_FIELDS:
        if field not in data:
            continue
        value = data[field]
        try:
            if field == "placed_on_market":
                cleaned[field] = _date_clean(value)
            elif field == "contact":
                cleaned[field] = _contact_clean(value)
            else:
                cleaned[field] = _text_clean(field, value)
        except SummaryError as exc:
            errors.update(exc.details)
    if errors:
        raise SummaryError("The summary could not be saved: see the fields.", details=errors)
    return cleaned


def _date_clean(value) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        parsed = value
    else:
        try:
            parsed = date.fromisoformat(str(value))
        except ValueError:
            raise SummaryError(
                "Invalid date.", details={"placed_on_market": ["A date as YYYY-MM-DD."]}
            ) from None
    if parsed < date(2015, 1, 1) or parsed > timezone.localdate().replace(
        year=timezone.localdate().year + 2
    ):
        raise SummaryError(
            "Invalid date.",
            details={"placed_on_market": ["Between 2015 and two years from today."]},
        )
    return parsed


def _contact_clean(value) -> str:
    text = _text_clean("contact", value)
    if text and not (_EMAIL.match(text) or _URL.match(text)):
        raise SummaryError(
            "Invalid contact.",
            details={"contact": ["An email address or an https:// URL."]},
        )
    return text


def training_summary_update(
    *, caller: Caller, summary: TrainingSummary, data: dict
) -> TrainingSummary:
    """Edit a draft's free text (and contact, market date). A published summary is final."""
    _require_licensee_or_staff(caller, summary)
    cleaned = training_summary_clean(data)
    with transaction.atomic():
        locked = TrainingSummary.objects.select_for_update().get(pk=summary.pk)
        if locked.status != TrainingSummaryStatus.DRAFT:
            raise ConflictError(
                f"Version {locked.version} is published and cannot change; generate a new "
                "version to publish a correction.",
                code="summary_published",
            )
        for field, value in cleaned.items():
            setattr(locked, field, value)
        locked.updated_at = timezone.now()
        locked.save(update_fields=[*cleaned, "updated_at"])
        audit_record(
            action="training_summary.update",
            caller=caller,
            obj=locked,
            details={"fields": list(cleaned)},
        )
    return locked


def _require_licensee_or_staff(caller: Caller, summary: TrainingSummary) -> None:
    caller.require_write()
    if not caller.is_staff and (
        caller.organisation is None or caller.organisation.pk != summary.licensee_id
    ):
        raise PermissionError_("Only the licensee edits its summary.")


def training_summary_publish(*, caller: Caller, summary: TrainingSummary) -> TrainingSummary:
    """draft -> published (public, final)."""
    _require_licensee_or_staff(caller, summary)
    with transaction.atomic():
        locked = TrainingSummary.objects.select_for_update().get(pk=summary.pk)
        if locked.status != TrainingSummaryStatus.DRAFT:
            raise ConflictError(
                f"Version {locked.version} is already published.", code="summary_published"
            )
        now = timezone.now()
        locked.status = TrainingSummaryStatus.PUBLISHED
        locked.published_at = now
        locked.published_by = caller.user
        locked.updated_at = now
        locked.save(update_fields=["status", "published_at", "published_by", "updated_at"])
        audit_record(
            action="training_summary.publish",
            caller=caller,
            obj=locked,
            details={
                "model": f"{locked.model_name} {locked.model_version}",
                "version": locked.version,
            },
        )
    return locked
