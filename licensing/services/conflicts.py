"""Conflicting claims: the same normalised identifier claimed by holders whose shares add up
to more than 100%.

A holder's claim on an identifier is the largest share it holds (summed over its roles) on any
work carrying that identifier; the claims of all holders are added up. Over 100% is a conflict:
its works are `disputed` (their money goes to suspense) until staff resolve it.
Detection is one set-based query, so it runs after a million-row import as well as after one
edit.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record, audit_record_many
from licensing.errors import LicensingError
from licensing.models import (
    FULL_SHARE_PPM,
    Conflict,
    ConflictStatus,
    Share,
    Work,
    WorkIdentifier,
    WorkStatus,
)

_CLAIMS_SQL = """
WITH keys AS (
    SELECT DISTINCT wi.scheme, wi.value
      FROM licensing_workidentifier wi
      JOIN licensing_work w ON w.id = wi.work_id
     WHERE {where}
),
per_work AS (
    SELECT wi.scheme, wi.value, wi.work_id, s.holder_id, SUM(s.share_ppm) AS ppm
      FROM keys k
      JOIN licensing_workidentifier wi ON wi.scheme = k.scheme AND wi.value = k.value
      JOIN licensing_share s ON s.work_id = wi.work_id
     GROUP BY wi.scheme, wi.value, wi.work_id, s.holder_id
),
per_holder AS (
    SELECT scheme, value, holder_id, MAX(ppm) AS ppm
      FROM per_work GROUP BY scheme, value, holder_id
)
SELECT scheme, value, SUM(ppm) AS claimed
  FROM per_holder
 GROUP BY scheme, value
HAVING SUM(ppm) > %s
"""


def _over_claimed(*, where: str, params: list) -> list[tuple[str, str, int]]:
    with connection.cursor() as cursor:
        cursor.execute(_CLAIMS_SQL.format(where=where), [*params, FULL_SHARE_PPM])
        return [(scheme, value, int(claimed)) for scheme, value, claimed in cursor.fetchall()]


def conflict_detect(
    *, catalogue_id: int | None = None, work_ids: Iterable[int] | None = None
) -> list[Conflict]:
    """Open a conflict for every over-claimed identifier on the given catalogue's (or works')
    works, and mark the works involved disputed. Returns the conflicts opened now.

    Set-based whatever the number of conflicts: the over-claimed identifiers in one query,
    then their works, their claimants and the conflicts already open in one query each, the
    new conflicts, their audit rows and their links in one INSERT each (an import that
    opens hundreds of conflicts used to spend seconds on a dozen queries per conflict)."""
    if catalogue_id is not None:
        where, params = "w.catalogue_id = %s", [catalogue_id]
    elif work_ids is not None:
        ids = sorted(set(work_ids))
        if not ids:
            return []
        if connection.vendor == "postgresql":  # one array parameter, not thousands
            where, params = "w.id = ANY(%s)", [ids]
        else:
            where, params = f"w.id IN ({', '.join(['%s'] * len(ids))})", ids
    else:
        raise ValueError("conflict_detect needs a catalogue_id or work_ids")

    with transaction.atomic():
        claimed = {
            (scheme, value): ppm for scheme, value, ppm in _over_claimed(where=where, params=params)
        }
        if not claimed:
            return []
        values = sorted({value for _, value in claimed})
        works_of: dict[tuple[str, str], list[int]] = {key: [] for key in claimed}
        for scheme, value, work_id in WorkIdentifier.objects.filter(value__in=values).values_list(
            "scheme", "value", "work_id"
        ):
            if (scheme, value) in works_of:
                works_of[(scheme, value)].append(work_id)
        all_works = sorted({w for ids_ in works_of.values() for w in ids_})
        holders_of: dict[int, set[int]] = {}
        for work_id, holder_id in Share.objects.filter(work_id__in=all_works).values_list(
            "work_id", "holder_id"
        ):
            holders_of.setdefault(work_id, set()).add(holder_id)
        conflicts = {
            (c.scheme, c.value): c
            for c in Conflict.objects.filter(status=ConflictStatus.OPEN, value__in=values)
            if (c.scheme, c.value) in claimed
        }
        new = [
            Conflict(scheme=scheme, value=value, claimed_ppm=ppm)
            for (scheme, value), ppm in sorted(claimed.items())
            if (scheme, value) not in conflicts
        ]
        if new:
            Conflict.objects.bulk_create(new)
            if any(c.pk is None for c in new):  # a backend that returns no ids
                keys = {(c.scheme, c.value) for c in new}
                new = [
                    c
                    for c in Conflict.objects.filter(status=ConflictStatus.OPEN, value__in=values)
                    if (c.scheme, c.value) in keys
                ]
            conflicts.update({(c.scheme, c.value): c for c in new})
            audit_record_many(
                action="conflict.open",
                entries=[
                    (c, {"scheme": c.scheme, "value": c.value, "claimed_ppm": c.claimed_ppm})
                    for c in sorted(new, key=lambda c: (c.scheme, c.value))
                ],
            )
        work_links, claimant_links = [], []
        for key, conflict in conflicts.items():
            for work_id in works_of[key]:
                work_links.append(Conflict.works.through(conflict_id=conflict.pk, work_id=work_id))
                for holder_id in holders_of.get(work_id, ()):
                    claimant_links.append((conflict.pk, holder_id))
        Conflict.works.through.objects.bulk_create(work_links, ignore_conflicts=True)
        Conflict.claimants.through.objects.bulk_create(
            [
                Conflict.claimants.through(conflict_id=c, organisation_id=h)
                for c, h in sorted(set(claimant_links))
            ],
            ignore_conflicts=True,
        )
        Work.objects.filter(pk__in=all_works).update(
            status=WorkStatus.DISPUTED, updated_at=timezone.now()
        )
    return sorted(new, key=lambda c: c.pk)


def _works_release(work_ids: Iterable[int]) -> None:
    """Works in no open conflict any more become active again."""
    still_disputed = set(
        Conflict.works.through.objects.filter(
            work_id__in=list(work_ids), conflict__status=ConflictStatus.OPEN
        ).values_list("work_id", flat=True)
    )
    Work.objects.filter(pk__in=set(work_ids) - still_disputed).update(
        status=WorkStatus.ACTIVE, updated_at=timezone.now()
    )


def conflict_resolve(
    *,
    caller: Caller,
    conflict: Conflict,
    resolution: str,
    reject_work_ids: Iterable[int] = (),
) -> Conflict:
    """Staff close a conflict, by rejecting the claims of some works (their copy of the
    identifier is removed) and/or after adjusting shares. Refused while still over-claimed."""
    if not caller.is_staff:
        raise LicensingError("Only society staff resolve conflicts.", code="forbidden")
    resolution = resolution.strip()
    if not resolution:
        raise LicensingError(
            "Say how the conflict was resolved.",
            code="invalid",
            details={"resolution": ["Required."]},
        )
    reject = set(reject_work_ids)
    with transaction.atomic():
        conflict = Conflict.objects.select_for_update().get(pk=conflict.pk)
        if conflict.status != ConflictStatus.OPEN:
            raise LicensingError("This conflict is resolved already.", code="conflict_closed")
        work_ids = set(conflict.works.values_list("id", flat=True))
        unknown = reject - work_ids
        if unknown:
            raise LicensingError(
                "Only works in this conflict can be rejected.",
                code="invalid",
                details={"reject_work_ids": sorted(unknown)},
            )
        if reject:
            WorkIdentifier.objects.filter(
                work_id__in=reject, scheme=conflict.scheme, value=conflict.value
            ).delete()
        remaining = _over_claimed(
            where="wi.scheme = %s AND wi.value = %s", params=[conflict.scheme, conflict.value]
        )
        if remaining:
            raise LicensingError(
                "The claims still add up to "
                f"{remaining[0][2] / 10_000:.4f}%: adjust shares or reject a claim first.",
                code="still_over_claimed",
                details={"claimed_ppm": remaining[0][2]},
            )
        conflict.status = ConflictStatus.RESOLVED
        conflict.resolved_at = timezone.now()
        conflict.resolved_by = caller.user
        conflict.resolution = resolution
        conflict.save(update_fields=["status", "resolved_at", "resolved_by", "resolution"])
        _works_release(work_ids)
        audit_record(
            action="conflict.resolve",
            caller=caller,
            obj=conflict,
            details={"resolution": resolution, "rejected_work_ids": sorted(reject)},
        )
    return conflict
