"""Serializers of claims on the unmatched pool."""

from __future__ import annotations

from rest_framework import serializers

from licensing.models import IdentifierScheme, UnmatchedClaim


class NewWorkSerializer(serializers.Serializer):
    catalogue = serializers.IntegerField(help_text="One of your catalogues.")
    work_ref = serializers.CharField(max_length=200)
    title = serializers.CharField(max_length=500)
    identifiers = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text="The work's own identifiers ({scheme, value}), at least one.",
    )


class UnmatchedClaimCreateSerializer(serializers.Serializer):
    scheme = serializers.ChoiceField(choices=IdentifierScheme.choices)
    identifier = serializers.CharField(max_length=2000)
    work = serializers.IntegerField(
        required=False, help_text="One of your works (or give new_work instead)."
    )
    new_work = NewWorkSerializer(required=False, help_text="Register a new work for the claim.")
    note = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if ("work" in attrs) == ("new_work" in attrs):
            raise serializers.ValidationError({"work": ["Give work or new_work, not both."]})
        return attrs


class UnmatchedClaimRejectSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the claim is rejected; the claimant reads it.")


class UnmatchedClaimSerializer(serializers.ModelSerializer):
    claimant = serializers.CharField(source="claimant.code", read_only=True)
    work_title = serializers.CharField(source="work.title", read_only=True)

    class Meta:
        model = UnmatchedClaim
        fields = [
            "id",
            "claimant",
            "work",
            "work_title",
            "scheme",
            "identifier",
            "status",
            "note",
            "created_at",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields
