"""Small builders for repertoire tests (through the services, so invariants apply)."""

from __future__ import annotations

from accounts.scoping import Caller, caller_for_user
from licensing.models import Catalogue
from licensing.services.repertoire import catalogue_create, work_create


def caller_of(persona) -> Caller:
    return caller_for_user(persona.user, persona.organisation)


def catalogue_for(persona, name: str = "Backlist", **kwargs) -> Catalogue:
    kwargs.setdefault("media_type", "text")
    return catalogue_create(caller=caller_of(persona), name=name, **kwargs)


def work_in(
    catalogue: Catalogue,
    persona,
    ref: str,
    *,
    isbn: str | None = None,
    shares=None,
    consent: str = "",
    **identifiers,
):
    ids = [{"scheme": s, "value": v} for s, v in identifiers.items()]
    if isbn:
        ids.append({"scheme": "isbn", "value": isbn})
    return work_create(
        caller=caller_of(persona),
        catalogue=catalogue,
        work_ref=ref,
        title=f"Work {ref}",
        identifiers=ids,
        shares=shares,
        consent=consent,
    )
