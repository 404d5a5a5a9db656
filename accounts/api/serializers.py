from __future__ import annotations

from rest_framework import serializers

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, Organisation, Role


class OrganisationSerializer(serializers.ModelSerializer):
    country = serializers.CharField(source="country.code", read_only=True)
    # Optional: an empty string when not given, so not documented as format=email.
    contact_email = serializers.CharField(read_only=True)

    class Meta:
        model = Organisation
        fields = [
            "code",
            "name",
            "kind",
            "country",
            "isni",
            "ipi_name_number",
            "company_number",
            "contact_email",
            "created_at",
        ]
        read_only_fields = fields


class OrganisationCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=["rights_holder", "licensee"])
    country = serializers.CharField(max_length=2)
    isni = serializers.CharField(required=False, allow_blank=True, default="")
    ipi_name_number = serializers.CharField(required=False, allow_blank=True, default="")
    company_number = serializers.CharField(required=False, allow_blank=True, default="")
    contact_email = serializers.EmailField(required=False, allow_blank=True, default="")


class MembershipSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)
    organisation = serializers.CharField(source="organisation.code", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "organisation", "email", "full_name", "role", "created_at"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.code", read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "organisation",
            "email",
            "role",
            "invited_by",
            "created_at",
            "expires_at",
            "sent_at",
            "accepted_at",
            "revoked_at",
            "status",
        ]
        read_only_fields = fields

    def get_status(self, obj: Invitation) -> str:
        if obj.accepted_at:
            return "accepted"
        if obj.revoked_at:
            return "revoked"
        return "open" if obj.is_open else "expired"


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class ApiKeySerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.code", read_only=True)
    created_by = serializers.EmailField(
        source="created_by.email", read_only=True, default=None, allow_null=True
    )
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "organisation",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.EmailField(
        source="actor.email", read_only=True, default=None, allow_null=True
    )
    api_key = serializers.CharField(
        source="api_key.prefix", read_only=True, default=None, allow_null=True
    )
    organisation = serializers.CharField(
        source="organisation.code", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "api_key",
            "organisation",
            "action",
            "object_type",
            "object_id",
            "request_id",
            "details",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    email = serializers.EmailField(allow_null=True)
    is_staff = serializers.BooleanField()
    organisation = OrganisationSerializer(allow_null=True)
    role = serializers.CharField(allow_null=True)
    api_key = serializers.CharField(allow_null=True)
