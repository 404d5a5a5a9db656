"""The one object-scoping mechanism: who is calling, and which rows they may see.

Every scoped model names the path to its owning organisation in `organisation_field`
("organisation", "catalogue__owner", "pk" for Organisation itself). `scope()` filters any
queryset of such a model to the caller's organisation; staff see everything. API views use
`ScopedViewMixin`, pages use `get_scoped_or_404`: an object of another organisation is a 404,
never a 403, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Model, QuerySet
from django.http import Http404

from accounts.models import (
    MANAGING_ROLES,
    WRITING_ROLES,
    ApiKey,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    User,
)
from config.errors import PermissionError_

if TYPE_CHECKING:
    from django.http import HttpRequest

# What an API key may do: change its organisation's data, never manage the organisation.
API_KEY_ROLE = Role.MEMBER


@dataclass(frozen=True)
class Caller:
    """The party behind a request: a person acting for an organisation, or an API key."""

    user: User | None
    organisation: Organisation | None
    role: str | None = None
    api_key: ApiKey | None = None

    @property
    def is_staff(self) -> bool:
        if self.user is not None:
            return bool(self.user.is_staff and self.user.is_active)
        return bool(
            self.api_key is not None
            and self.organisation is not None
            and self.organisation.kind == OrganisationKind.SOCIETY
        )

    @property
    def can_manage(self) -> bool:
        return self.is_staff or self.role in MANAGING_ROLES

    @property
    def can_write(self) -> bool:
        return self.is_staff or self.role in WRITING_ROLES

    def require_manage(self) -> None:
        if not self.can_manage:
            raise PermissionError_("Only an owner or admin of the organisation may do this.")

    def require_write(self) -> None:
        if not self.can_write:
            raise PermissionError_("Your role in this organisation is read-only.")

    def in_staff_group(self, *names: str) -> bool:
        """A person on the society's staff in one of the groups (`operator`, `approver`);
        superusers count. API keys never do: these are decisions a named person takes."""
        if self.user is None or not self.is_staff:
            return False
        return self.user.is_superuser or self.user.groups.filter(name__in=names).exists()

    def require_organisation(self) -> Organisation:
        if self.organisation is None:
            raise PermissionError_("Create or join an organisation first.", code="no_organisation")
        return self.organisation


def caller_for_user(user: User, organisation: Organisation | None) -> Caller:
    role = None
    if organisation is not None and user.is_authenticated:
        role = (
            Membership.objects.filter(user=user, organisation=organisation)
            .values_list("role", flat=True)
            .first()
        )
        if role is None and not user.is_staff:
            organisation = None
    return Caller(user=user, organisation=organisation, role=role)


def caller_from_request(request: HttpRequest) -> Caller:
    """Build (once per request) the caller from an API key or the logged-in user's session."""
    cached = getattr(request, "_blanket_caller", None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        caller = Caller(user=None, organisation=auth.organisation, role=API_KEY_ROLE, api_key=auth)
    else:
        user = request.user
        caller = Caller(
            user=user if user.is_authenticated else None,
            organisation=getattr(request, "organisation", None),
            role=getattr(request, "organisation_role", None),
        )
    request._blanket_caller = caller
    return caller


def scope(queryset: QuerySet, caller: Caller) -> QuerySet:
    if caller.is_staff:
        return queryset
    if caller.organisation is None:
        return queryset.none()
    path = queryset.model.organisation_field
    if path is None:  # society business (cycles, policies): staff only
        return queryset.none()
    scoped = queryset.filter(**{path: caller.organisation.pk})
    # A path through a many-to-many (e.g. a conflict's claimants) may repeat rows.
    return scoped.distinct() if getattr(queryset.model, "organisation_many", False) else scoped


def get_scoped_or_404(queryset: QuerySet, caller: Caller, **lookup) -> Model:
    try:
        return scope(queryset, caller).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


class ScopedViewMixin:
    """For DRF views: `base_queryset()` is scoped to the caller before any lookup or filter."""

    def base_queryset(self) -> QuerySet:
        raise NotImplementedError

    @property
    def caller(self) -> Caller:
        return caller_from_request(self.request)

    def get_queryset(self) -> QuerySet:
        return scope(self.base_queryset(), self.caller)
