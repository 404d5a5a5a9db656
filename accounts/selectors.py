"""Reads of accounts data, always through the caller's scope."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organisation, User
from accounts.scoping import Caller, scope


def organisation_list(*, caller: Caller) -> QuerySet[Organisation]:
    return scope(Organisation.objects.all(), caller)


def organisation_list_for_user(*, user: User) -> QuerySet[Organisation]:
    return Organisation.objects.filter(memberships__user=user).order_by("name")


def membership_list(*, caller: Caller) -> QuerySet[Membership]:
    return scope(Membership.objects.select_related("user", "organisation"), caller)


def invitation_list(*, caller: Caller, open_only: bool = False) -> QuerySet[Invitation]:
    qs = scope(Invitation.objects.select_related("organisation", "invited_by"), caller)
    if open_only:
        qs = qs.filter(accepted_at__isnull=True, revoked_at__isnull=True)
    return qs


def api_key_list(*, caller: Caller) -> QuerySet[ApiKey]:
    return scope(ApiKey.objects.select_related("organisation", "created_by"), caller)


def audit_event_list(*, caller: Caller) -> QuerySet[AuditEvent]:
    return scope(AuditEvent.objects.select_related("actor", "organisation", "api_key"), caller)
