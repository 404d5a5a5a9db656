"""Thin API views: parse, call one service or selector, render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.api import serializers as s
from accounts.errors import AccountsError
from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organisation
from accounts.scoping import ScopedViewMixin, caller_from_request


class OrganisationViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Organisations the caller acts for (staff: all). Looked up by registry code."""

    serializer_class = s.OrganisationSerializer
    lookup_field = "code"
    filterset_fields = ["kind", "country"]
    ordering_fields = ["code", "name", "created_at"]

    def base_queryset(self):
        return Organisation.objects.all()

    def get_serializer_class(self):
        return (
            s.OrganisationCreateSerializer if self.action == "create" else s.OrganisationSerializer
        )

    @extend_schema(
        request=s.OrganisationCreateSerializer, responses={201: s.OrganisationSerializer}
    )
    def create(self, request, *args, **kwargs):
        if self.caller.user is None:
            raise AccountsError(
                "Organisations are created by people, not API keys.", code="forbidden"
            )
        data = s.OrganisationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = services.organisation_create(creator=self.caller.user, **data.validated_data)
        return Response(s.OrganisationSerializer(organisation).data, status=status.HTTP_201_CREATED)


class MembershipViewSet(ScopedViewMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.MembershipSerializer
    filterset_fields = ["role"]

    def base_queryset(self):
        return Membership.objects.select_related("user", "organisation")

    def perform_destroy(self, instance: Membership) -> None:
        services.membership_remove(caller=self.caller, membership=instance)


class InvitationViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.InvitationSerializer
    filterset_fields = ["role", "email"]

    def base_queryset(self):
        return Invitation.objects.select_related("organisation", "invited_by")

    @extend_schema(request=s.InvitationCreateSerializer, responses={201: s.InvitationSerializer})
    def create(self, request, *args, **kwargs):
        if self.caller.user is None:
            raise AccountsError("Invitations are sent by people, not API keys.", code="forbidden")
        data = s.InvitationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = services.invitation_create(caller=self.caller, **data.validated_data)
        return Response(s.InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, *args, **kwargs):
        services.invitation_revoke(caller=self.caller, invitation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ApiKeyViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """API keys of the caller's organisation. The full key is returned once, on creation."""

    serializer_class = s.ApiKeySerializer
    filterset_fields = ["name"]

    def base_queryset(self):
        return ApiKey.objects.select_related("organisation", "created_by")

    @extend_schema(request=s.ApiKeyCreateSerializer, responses={201: s.ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = s.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = self.caller.require_organisation()
        api_key, raw_key = services.api_key_create(
            organisation=organisation, name=data.validated_data["name"], caller=self.caller
        )
        body = s.ApiKeyCreatedSerializer(api_key).data | {"key": raw_key}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.ApiKeySerializer})
    def destroy(self, request, *args, **kwargs):
        """Revoke the key. It stops working at once; the row stays for the audit trail."""
        api_key = services.api_key_revoke(caller=self.caller, api_key=self.get_object())
        return Response(s.ApiKeySerializer(api_key).data)


class AuditEventViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.AuditEventSerializer
    filterset_fields = ["action", "object_type", "object_id", "request_id"]
    ordering_fields = ["at"]

    def base_queryset(self):
        return AuditEvent.objects.select_related("actor", "organisation", "api_key")


class MeView(APIView):
    @extend_schema(responses=s.MeSerializer)
    def get(self, request):
        caller = caller_from_request(request)
        body = {
            "email": caller.user.email if caller.user else None,
            "is_staff": caller.is_staff,
            "organisation": (
                s.OrganisationSerializer(caller.organisation).data if caller.organisation else None
            ),
            "role": caller.role,
            "api_key": caller.api_key.prefix if caller.api_key else None,
        }
        return Response(body)
