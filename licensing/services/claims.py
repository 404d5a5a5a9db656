"""The unmatched pool: rights holders claim unmatched identifiers, staff review the claims;
staff match several identifiers to one work at once, or dismiss them from the queue.

Accepting a claim reuses ``declaration_unmatched_match``: the identifier is added to the work
(conflicts re-checked) and its usage moves, exactly, in every accepted declaration that held it.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.scoping import Caller
from accounts.services import audit_record
from config.errors import ConflictError, PermissionError_
from licensing.errors import LicensingError
from licensing.identifiers import IdentifierError, normalise
from licensing.models import (
    Catalogue,
    ClaimStatus,
    DeclarationStatus,
    DeclarationUnmatched,
    UnmatchedClaim,
    UnmatchedDismissal,
    Work,
)
from licensing.services.declarations import declaration_unmatched_match
from licensing.services.repertoire import work_create


def _normalised(scheme: str, identifier: str) -> str:
    try:
        return normalise(scheme, identifier)
    except IdentifierError as exc:
        raise LicensingError(
            f"{identifier!r} is not a valid {scheme}: {exc.reason}.",
            code="invalid",
            details={"identifier": [exc.reason]},
        ) from None


def _require_staff(caller: Caller) -> None:
    if not caller.is_staff:
        raise PermissionError_("Only society staff review the unmatched pool.")


def unmatched_claim_create(
    *,
    caller: Caller,
    scheme: str,
    identifier: str,
    work: Work | None = None,
    new_work: dict | None = None,
    note: str = "",
) -> UnmatchedClaim:
    """A rights holder claims an unmatched identifier for one of its works, or for a new work
        registered here (``new_work``: catalogue, work_ref, title, identifiers - at least one of
    its own; the claimed one is added only when staff accept) through ``work_create``."""
    caller.require_write()
    organisation = caller.require_organisation()
    if (work is None) == (new_work is None):
        raise LicensingError(
            "Name one of your works, or register a new one.",
            code="invalid",
            details={"work": ["Choose a work or register a new one."]},
        )
    value = _normalised(scheme, identifier)
    in_pool = DeclarationUnmatched.objects.filter(
        scheme=scheme, identifier=value, valid=True, declaration__status=DeclarationStatus.ACCEPTED
    ).exists()
    if not in_pool:
        raise LicensingError(
            f"{scheme}:{value} is not in the unmatched pool.",
            code="not_unmatched",
            details={"identifier": ["Not an unmatched identifier."]},
        )
    with transaction.atomic():
        if new_work is not None:
            catalogue = new_work.get("catalogue")
            if not isinstance(catalogue, Catalogue) or catalogue.owner_id != organisation.pk:
                raise LicensingError(
                    "No such catalogue.", code="invalid", details={"catalogue": ["Not yours."]}
                )
            work = work_create(
                caller=caller,
                catalogue=catalogue,
                work_ref=new_work.get("work_ref", ""),
                title=new_work.get("title", ""),
                identifiers=new_work.get("identifiers") or [],
            )
        elif work.catalogue.owner_id != organisation.pk:
            raise LicensingError("No such work.", code="invalid", details={"work": ["Not yours."]})
        try:
            with transaction.atomic():
                claim = UnmatchedClaim.objects.create(
                    claimant=organisation,
                    work=work,
                    scheme=scheme,
                    identifier=value,
                    note=note.strip(),
                    created_by=caller.user,
                )
        except IntegrityError:
            raise ConflictError(
                "You have a pending claim on this identifier already.", code="duplicate_claim"
            ) from None
        audit_record(
            action="unmatched_claim.create",
            caller=caller,
            obj=claim,
            details={"scheme": scheme, "identifier": value, "work_id": work.pk},
        )
    return claim


def _pending(claim: UnmatchedClaim) -> UnmatchedClaim:
    locked = UnmatchedClaim.objects.select_for_update().select_related("work").get(pk=claim.pk)
    if locked.status != ClaimStatus.PENDING:
        raise ConflictError(f"The claim is {locked.status} already.", code="claim_reviewed")
    return locked


def unmatched_claim_accept(*, caller: Caller, claim: UnmatchedClaim) -> list[int]:
    """Staff accept: the identifier becomes the work's and the usage moves. Returns the ids of
    the declarations re-matched."""
    _require_staff(caller)
    with transaction.atomic():
        claim = _pending(claim)
        moved = declaration_unmatched_match(
            caller=caller, scheme=claim.scheme, identifier=claim.identifier, work=claim.work
        )
        claim.status = ClaimStatus.ACCEPTED
        claim.reviewed_by = caller.user
        claim.reviewed_at = timezone.now()
        claim.save(update_fields=["status", "reviewed_by", "reviewed_at"])
        audit_record(
            action="unmatched_claim.accept",
            caller=caller,
            organisation=claim.claimant,
            obj=claim,
            details={"declarations": moved, "work_id": claim.work_id},
        )
    return moved


def unmatched_claim_reject(*, caller: Caller, claim: UnmatchedClaim, reason: str) -> None:
    """Staff reject, with a reason the claimant reads; nothing moves."""
    _require_staff(caller)
    reason = (reason or "").strip()
    if not reason:
        raise LicensingError(
            "Say why the claim is rejected.", code="invalid", details={"reason": ["Required."]}
        )
    with transaction.atomic():
        claim = _pending(claim)
        claim.status = ClaimStatus.REJECTED
        claim.reviewed_by = caller.user
        claim.reviewed_at = timezone.now()
        claim.review_note = reason
        claim.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note"])
        audit_record(
            action="unmatched_claim.reject",
            caller=caller,
            organisation=claim.claimant,
            obj=claim,
            details={"reason": reason},
        )


def unmatched_bulk_match(
    *, caller: Caller, identifiers: list[tuple[str, str]], work: Work
) -> list[int]:
    """Staff: match several unmatched identifiers to one work, all or none."""
    _require_staff(caller)
    moved: set[int] = set()
    with transaction.atomic():
        for scheme, identifier in identifiers:
            moved.update(
                declaration_unmatched_match(
                    caller=caller, scheme=scheme, identifier=identifier, work=work
                )
            )
    return sorted(moved)


def unmatched_dismiss(
    *, caller: Caller, identifiers: list[tuple[str, str]], reason: str = ""
) -> int:
    """Staff: set identifiers aside (they leave the queue; their usage stays unmatched)."""
    _require_staff(caller)
    count = 0
    with transaction.atomic():
        for scheme, identifier in identifiers:
            _, created = UnmatchedDismissal.objects.get_or_create(
                scheme=scheme,
                identifier=identifier,
                defaults={"reason": reason.strip(), "dismissed_by": caller.user},
            )
            count += created
        audit_record(
            action="declaration.unmatched_dismiss",
            caller=caller,
            details={"identifiers": [f"{s}:{i}" for s, i in identifiers], "reason": reason},
        )
    return count
