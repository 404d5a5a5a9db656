"""Reads of the repertoire, always through the caller's scope."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from accounts.scoping import Caller, scope
from licensing.identifiers import IdentifierError, parse_prefixed
from licensing.models import Catalogue, Conflict, Reservation, Work


def catalogue_list(*, caller: Caller) -> QuerySet[Catalogue]:
    return scope(Catalogue.objects.select_related("owner"), caller).annotate(
        work_count=Count("works")
    )


def work_list(
    *,
    caller: Caller,
    catalogue: Catalogue | None = None,
    identifier: str | None = None,
    search: str | None = None,
    consent: str | None = None,
    use: str = "training",
    disputed: bool | None = None,
) -> QuerySet[Work]:
    """Works visible to the caller, filtered. `identifier` is `scheme:value`, normalised
    before the lookup (so `isbn:0-439-02348-3` finds 9780439023481). `consent` filters on
    the effective consent for `use` (own setting, else the catalogue default)."""
    works = scope(Work.objects.select_related("catalogue", "catalogue__owner"), caller)
    if catalogue is not None:
        works = works.filter(catalogue=catalogue)
    if identifier:
        try:
            scheme, value = parse_prefixed(identifier)
        except IdentifierError:
            return works.none()
        works = works.filter(identifiers__scheme=scheme, identifiers__value=value)
    if search:
        works = works.filter(Q(title__icontains=search) | Q(work_ref__icontains=search))
    if consent in ("licensed", "reserved"):
        field = f"consent_{use}"
        works = works.filter(
            Q(**{field: consent}) | Q(**{field: ""}, catalogue__default_consent=consent)
        )
    if disputed is not None:
        works = works.filter(status="disputed") if disputed else works.exclude(status="disputed")
    return works


def conflict_list(*, caller: Caller, status: str | None = None) -> QuerySet[Conflict]:
    conflicts = scope(Conflict.objects.all(), caller).prefetch_related(
        "works__catalogue__owner", "claimants"
    )
    return conflicts.filter(status=status) if status else conflicts


def reservation_list(*, caller: Caller) -> QuerySet[Reservation]:
    return scope(Reservation.objects.all(), caller)
