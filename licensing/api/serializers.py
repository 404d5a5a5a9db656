from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.models import (
    Catalogue,
    Conflict,
    Consent,
    IdentifierScheme,
    MediaType,
    Reservation,
    ReservationKind,
    ShareRole,
    Use,
    Work,
)
from licensing.services.repertoire import share_percent_from_ppm


class CatalogueSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.code", read_only=True)
    work_count = serializers.IntegerField(read_only=True, default=None, allow_null=True)

    class Meta:
        model = Catalogue
        fields = [
            "id",
            "owner",
            "name",
            "media_type",
            "default_consent",
            "work_count",
            "created_at",
        ]
        read_only_fields = ["id", "owner", "work_count", "created_at"]


class CatalogueUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    default_consent = serializers.ChoiceField(choices=Consent.choices, required=False)


class IdentifierSerializer(serializers.Serializer):
    scheme = serializers.ChoiceField(choices=IdentifierScheme.choices)
    value = serializers.CharField(max_length=2000)


class ShareInSerializer(serializers.Serializer):
    holder = serializers.CharField(required=False, help_text="Registry code; default the owner.")
    role = serializers.ChoiceField(choices=ShareRole.choices, default=ShareRole.AUTHOR)
    share = serializers.CharField(help_text="Percent, up to 4 decimals, e.g. '33.3333'.")


class ShareOutSerializer(serializers.Serializer):
    holder = serializers.CharField(source="holder.code")
    holder_name = serializers.CharField(source="holder.name")
    role = serializers.CharField()
    share = serializers.SerializerMethodField()
    share_ppm = serializers.IntegerField()

    def get_share(self, obj) -> str:
        return str(share_percent_from_ppm(obj.share_ppm))


class ConsentSerializer(serializers.Serializer):
    training = serializers.CharField()
    fine_tuning = serializers.CharField()
    rag = serializers.CharField()


class WorkSerializer(serializers.ModelSerializer):
    catalogue = serializers.IntegerField(source="catalogue_id", read_only=True)
    owner = serializers.CharField(source="catalogue.owner.code", read_only=True)
    identifiers = IdentifierSerializer(many=True, read_only=True)
    shares = ShareOutSerializer(many=True, read_only=True)
    consent = serializers.SerializerMethodField()
    own_consent = serializers.SerializerMethodField()

    class Meta:
        model = Work
        fields = [
            "id",
            "catalogue",
            "owner",
            "work_ref",
            "title",
            "media_type",
            "status",
            "consent",
            "own_consent",
            "identifiers",
            "shares",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ConsentSerializer)
    def get_consent(self, obj: Work) -> dict:
        """Effective consent per use (the work's own, else the catalogue default)."""
        return {use: obj.consent_for(use) for use in Use.values}

    @extend_schema_field(ConsentSerializer)
    def get_own_consent(self, obj: Work) -> dict:
        """The work's own setting per use; empty means it follows the catalogue."""
        return {use: getattr(obj, f"consent_{use}") for use in Use.values}


class WorkCreateSerializer(serializers.Serializer):
    catalogue = serializers.IntegerField()
    work_ref = serializers.CharField(max_length=200)
    title = serializers.CharField(max_length=500)
    media_type = serializers.ChoiceField(choices=MediaType.choices, required=False)
    identifiers = IdentifierSerializer(many=True)
    shares = ShareInSerializer(many=True, required=False)
    consent = serializers.ChoiceField(choices=[*Consent.choices, ("", "inherit")], default="")


class SharesSetSerializer(serializers.Serializer):
    shares = ShareInSerializer(many=True)


class ConsentSetSerializer(serializers.Serializer):
    consent = serializers.ChoiceField(
        choices=[*Consent.choices, ("", "inherit")],
        help_text="licensed, reserved, or empty to follow the catalogue default.",
    )
    uses = serializers.ListField(
        child=serializers.ChoiceField(choices=Use.choices),
        required=False,
        help_text="Uses to change; all when omitted.",
    )


class BulkConsentSetSerializer(ConsentSetSerializer):
    work_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=100_000
    )
    catalogue = serializers.IntegerField(required=False, help_text="Every work of this catalogue.")

    def validate(self, attrs):
        if not attrs.get("work_ids") and not attrs.get("catalogue"):
            raise serializers.ValidationError("Give work_ids or a catalogue.")
        return attrs


class ConsentSetResultSerializer(serializers.Serializer):
    changed = serializers.IntegerField()


class ConflictWorkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    work_ref = serializers.CharField()
    title = serializers.CharField()
    owner = serializers.CharField(source="catalogue.owner.code")


class ConflictSerializer(serializers.ModelSerializer):
    works = ConflictWorkSerializer(many=True, read_only=True)
    claimants = serializers.SlugRelatedField(many=True, read_only=True, slug_field="code")
    claimed = serializers.SerializerMethodField()

    class Meta:
        model = Conflict
        fields = [
            "id",
            "scheme",
            "value",
            "status",
            "claimed",
            "claimed_ppm",
            "works",
            "claimants",
            "opened_at",
            "resolved_at",
            "resolution",
        ]
        read_only_fields = fields

    def get_claimed(self, obj: Conflict) -> str:
        return str(share_percent_from_ppm(obj.claimed_ppm))


class ConflictResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField()
    reject_work_ids = serializers.ListField(
        child=serializers.IntegerField(), required=False, default=list
    )


class ReservationSerializer(serializers.ModelSerializer):
    organisation = serializers.CharField(source="organisation.code", read_only=True, default=None)
    effective = serializers.BooleanField(source="is_effective", read_only=True)

    class Meta:
        model = Reservation
        fields = [
            "id",
            "kind",
            "scheme",
            "value",
            "uses",
            "organisation",
            "effective",
            "created_at",
            "withdrawn_at",
        ]
        read_only_fields = fields


class ReservationCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReservationKind.choices)
    scheme = serializers.ChoiceField(choices=IdentifierScheme.choices, required=False, default="")
    value = serializers.CharField(max_length=2000)
    uses = serializers.ListField(
        child=serializers.ChoiceField(choices=Use.choices), required=False, default=list
    )


class ReservationRequestSerializer(ReservationCreateSerializer):
    email = serializers.EmailField()


class RegistryPairSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    identifier = serializers.CharField(allow_blank=True)


class RegistryCheckSerializer(serializers.Serializer):
    use = serializers.ChoiceField(choices=Use.choices, default=Use.TRAINING)
    items = RegistryPairSerializer(many=True, max_length=10_000, allow_empty=False)


class RegistryResultSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    identifier = serializers.CharField()
    normalised = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["licensed", "reserved", "unknown", "invalid"])
    registered = serializers.BooleanField()
    reason = serializers.CharField(required=False)


class RegistryCheckResultSerializer(serializers.Serializer):
    consent_regime = serializers.CharField()
    use = serializers.CharField()
    results = RegistryResultSerializer(many=True)


class SocietySettingsSerializer(serializers.Serializer):
    consent_regime = serializers.ChoiceField(choices=[("opt_in", "opt_in"), ("opt_out", "opt_out")])
    updated_at = serializers.DateTimeField(read_only=True)
