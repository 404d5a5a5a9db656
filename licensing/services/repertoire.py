"""Writes to the repertoire one object at a time: catalogues, works, shares and consent.

Bulk writes (a whole catalogue file) live in `licensing.services.imports`; both keep the same
invariants, which the database enforces too (share sums, unique work_ref, valid enums).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Organisation
from accounts.scoping import Caller, scope
from accounts.services import audit_record
from licensing.errors import LicensingError, ShareError
from licensing.identifiers import IdentifierError, normalise
from licensing.models import (
    FULL_SHARE_PPM,
    Catalogue,
    Consent,
    MediaType,
    Share,
    ShareRole,
    Use,
    Work,
    WorkIdentifier,
)
from licensing.services.conflicts import conflict_detect

CONSENT_FIELDS = {use: f"consent_{use}" for use in Use.values}


def share_ppm_from_percent(value: str | int | Decimal) -> int:
    """'33.3333' -> 333333. Exact: at most four decimals, more than 0 and at most 100."""
    text = str(value).strip().rstrip("%").strip()
    try:
        percent = Decimal(text)
    except InvalidOperation:
        raise ShareError(f"Share {value!r} is not a number.") from None
    if not percent.is_finite():
        raise ShareError(f"Share {value!r} is not a number.")
    ppm = percent * 10_000
    if ppm != ppm.to_integral_value():
        raise ShareError(f"Share {value!r} has more than four decimals.")
    ppm_int = int(ppm)
    if ppm_int <= 0 or ppm_int > FULL_SHARE_PPM:
        raise ShareError(f"Share {value!r} must be more than 0 and at most 100.")
    return ppm_int


def share_percent_from_ppm(ppm: int) -> Decimal:
    return (Decimal(ppm) / 10_000).quantize(Decimal("0.0001"))


# --- catalogues ----------------------------------------------------------------------------


def catalogue_create(
    *, caller: Caller, name: str, media_type: str, default_consent: str = Consent.LICENSED
) -> Catalogue:
    caller.require_write()
    owner = caller.require_organisation()
    if owner.kind != "rights_holder" and not caller.is_staff:
        raise LicensingError("Only rights holders enrol catalogues.", code="forbidden")
    name = name.strip()
    errors = {}
    if not name:
        errors["name"] = ["Required."]
    if media_type not in MediaType.values:
        errors["media_type"] = [f"One of {', '.join(MediaType.values)}."]
    if default_consent not in Consent.values:
        errors["default_consent"] = [f"One of {', '.join(Consent.values)}."]
    if errors:
        raise LicensingError("The catalogue is not valid.", code="invalid", details=errors)
    try:
        with transaction.atomic():
            catalogue = Catalogue.objects.create(
                owner=owner, name=name, media_type=media_type, default_consent=default_consent
            )
            audit_record(
                action="catalogue.create",
                caller=caller,
                organisation=owner,
                obj=catalogue,
                details={"name": name, "default_consent": default_consent},
            )
    except IntegrityError:
        raise LicensingError(
            f"You have a catalogue called {name!r} already.",
            code="duplicate",
            details={"name": ["Already used."]},
        ) from None
    return catalogue


def catalogue_update(
    *,
    caller: Caller,
    catalogue: Catalogue,
    name: str | None = None,
    default_consent: str | None = None,
) -> Catalogue:
    caller.require_write()
    changes = {}
    if name is not None and name.strip() and name.strip() != catalogue.name:
        changes["name"] = name.strip()
    if default_consent is not None and default_consent != catalogue.default_consent:
        if default_consent not in Consent.values:
            raise LicensingError(
                "Unknown consent.", code="invalid", details={"default_consent": ["Unknown."]}
            )
        changes["default_consent"] = default_consent
    if not changes:
        return catalogue
    try:
        with transaction.atomic():
            # The stamp tells the permission feeds that the catalogue's works may have changed.
            Catalogue.objects.filter(pk=catalogue.pk).update(updated_at=timezone.now(), **changes)
            audit_record(
                action="catalogue.update",
                caller=caller,
                organisation=catalogue.owner,
                obj=catalogue,
                details=changes,
            )
    except IntegrityError:
        raise LicensingError(
            "You have a catalogue with that name already.",
            code="duplicate",
            details={"name": ["Already used."]},
        ) from None
    catalogue.refresh_from_db()
    return catalogue


def catalogue_delete(*, caller: Caller, catalogue: Catalogue) -> None:
    """Only an empty catalogue can be deleted: works carry history (usage, money)."""
    caller.require_manage()
    if catalogue.works.exists():
        raise LicensingError(
            "This catalogue has works; withdraw them by reserving them instead.",
            code="not_empty",
        )
    with transaction.atomic():
        audit_record(
            action="catalogue.delete",
            caller=caller,
            organisation=catalogue.owner,
            obj=catalogue,
            details={"name": catalogue.name},
        )
        catalogue.imports.all().delete()
        catalogue.delete()


# --- works ---------------------------------------------------------------------------------


def _identifiers_clean(identifiers: Iterable[dict]) -> list[tuple[str, str]]:
    cleaned, errors = [], {}
    for index, item in enumerate(identifiers):
        try:
            cleaned.append((item["scheme"], normalise(item["scheme"], item["value"])))
        except (IdentifierError, KeyError) as exc:
            errors[str(index)] = [getattr(exc, "reason", None) or str(exc)]
    if errors:
        raise LicensingError("Some identifiers are not valid.", code="invalid", details=errors)
    if not cleaned:
        raise LicensingError(
            "A work needs at least one identifier.",
            code="invalid",
            details={"identifiers": ["At least one."]},
        )
    return sorted(set(cleaned))


def _shares_clean(
    *, shares: Iterable[dict], default_holder: Organisation
) -> list[tuple[int, str, int]]:
    """[(holder_id, role, ppm)]; holders by registry code; sum at most 100%."""
    rows, errors, seen = [], {}, set()
    codes = {s.get("holder") for s in shares if s.get("holder")}
    holders = {o.code: o.pk for o in Organisation.objects.filter(code__in=codes)}
    for index, item in enumerate(shares):
        code = item.get("holder") or default_holder.code
        holder_id = holders.get(code, default_holder.pk if code == default_holder.code else None)
        role = item.get("role") or ShareRole.AUTHOR
        problems = []
        if holder_id is None:
            problems.append(f"No organisation has the registry code {code!r}.")
        if role not in ShareRole.values:
            problems.append(f"Role must be one of {', '.join(ShareRole.values)}.")
        try:
            ppm = share_ppm_from_percent(item.get("share", "100"))
        except ShareError as exc:
            problems.append(exc.message)
            ppm = 0
        if (holder_id, role) in seen:
            problems.append("The same holder and role appear twice.")
        seen.add((holder_id, role))
        if problems:
            errors[str(index)] = problems
        else:
            rows.append((holder_id, role, ppm))
    if errors:
        raise ShareError("Some shares are not valid.", details=errors)
    total = sum(ppm for _, _, ppm in rows)
    if total > FULL_SHARE_PPM:
        raise ShareError(
            f"Shares add up to {share_percent_from_ppm(total)}%, more than 100%.",
            details={"shares": [f"Total {share_percent_from_ppm(total)}%."]},
        )
    return rows


def work_create(
    *,
    caller: Caller,
    catalogue: Catalogue,
    work_ref: str,
    title: str,
    media_type: str | None = None,
    identifiers: list[dict],
    shares: list[dict] | None = None,
    consent: str = "",
) -> Work:
    caller.require_write()
    work_ref, title = work_ref.strip(), title.strip()
    errors = {}
    if not work_ref:
        errors["work_ref"] = ["Required."]
    if not title:
        errors["title"] = ["Required."]
    media_type = media_type or catalogue.media_type
    if media_type not in MediaType.values:
        errors["media_type"] = [f"One of {', '.join(MediaType.values)}."]
    if consent and consent not in Consent.values:
        errors["consent"] = [f"One of {', '.join(Consent.values)}, or empty to inherit."]
    if errors:
        raise LicensingError("The work is not valid.", code="invalid", details=errors)
    clean_ids = _identifiers_clean(identifiers)
    clean_shares = _shares_clean(
        shares=shares or [{"share": "100"}], default_holder=catalogue.owner
    )
    try:
        with transaction.atomic():
            work = Work.objects.create(
                catalogue=catalogue,
                work_ref=work_ref,
                title=title,
                media_type=media_type,
                **{field: consent for field in CONSENT_FIELDS.values()},
            )
            WorkIdentifier.objects.bulk_create(
                WorkIdentifier(work=work, scheme=s, value=v) for s, v in clean_ids
            )
            Share.objects.bulk_create(
                Share(work=work, holder_id=h, role=r, share_ppm=p) for h, r, p in clean_shares
            )
            audit_record(
                action="work.create",
                caller=caller,
                organisation=catalogue.owner,
                obj=work,
                details={"work_ref": work_ref},
            )
            conflict_detect(work_ids=[work.pk])
    except IntegrityError:
        raise LicensingError(
            f"The catalogue has a work {work_ref!r} already.",
            code="duplicate",
            details={"work_ref": ["Already used in this catalogue."]},
        ) from None
    work.refresh_from_db()
    return work


def work_shares_set(*, caller: Caller, work: Work, shares: list[dict]) -> Work:
    """Replace a work's shares. The work row is locked so concurrent edits cannot add up to
    more than 100% between them."""
    caller.require_write()
    clean = _shares_clean(shares=shares, default_holder=work.catalogue.owner)
    with transaction.atomic():
        Work.objects.select_for_update().filter(pk=work.pk).first()
        before = list(work.shares.values_list("holder__code", "role", "share_ppm"))
        work.shares.all().delete()
        Share.objects.bulk_create(
            Share(work=work, holder_id=h, role=r, share_ppm=p) for h, r, p in clean
        )
        Work.objects.filter(pk=work.pk).update(updated_at=timezone.now())
        audit_record(
            action="work.shares_set",
            caller=caller,
            organisation=work.catalogue.owner,
            obj=work,
            details={"before": before, "after": [(h, r, p) for h, r, p in clean]},
        )
        conflict_detect(work_ids=[work.pk])
    return work


def work_consent_set(
    *, caller: Caller, works: QuerySet[Work], consent: str, uses: Iterable[str] | None = None
) -> int:
    """Set consent on one or many works (bulk toggles), for some uses or all. Returns how
    many works changed. `consent=""` returns them to the catalogue default."""
    caller.require_write()
    if consent not in (*Consent.values, ""):
        raise LicensingError(
            "Consent must be licensed, reserved or empty (inherit).",
            code="invalid",
            details={"consent": ["Unknown value."]},
        )
    uses = list(uses or Use.values)
    unknown = [u for u in uses if u not in CONSENT_FIELDS]
    if unknown:
        raise LicensingError(
            f"Unknown use {unknown[0]!r}.", code="invalid", details={"uses": unknown}
        )
    works = scope(works, caller)
    differs = Q()
    for use in uses:
        differs |= ~Q(**{CONSENT_FIELDS[use]: consent})
    with transaction.atomic():
        selected = works.count()
        changed = works.filter(differs).update(
            updated_at=timezone.now(), **{CONSENT_FIELDS[u]: consent for u in uses}
        )
        audit_record(
            action="work.consent_set",
            caller=caller,
            organisation=caller.organisation,
            details={
                "consent": consent or "inherit",
                "uses": uses,
                "selected": selected,
                "changed": changed,
                "work_ids": list(works.values_list("pk", flat=True)[:1000]),
            },
        )
    return changed
