"""Serializers of usage declarations: the filing form, the declaration (its job) and the match
report."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.matching import UNITS
from licensing.models import UsageDeclaration


class DeclarationCreateSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="A calendar quarter (2026-Q3) or a month (2026-07).")
    model_name = serializers.CharField(max_length=200)
    model_version = serializers.CharField(max_length=100)
    unit = serializers.ChoiceField(
        choices=UNITS,
        required=False,
        allow_blank=True,
        help_text="The unit, if the file has no unit column.",
    )
    nil = serializers.BooleanField(
        default=False, help_text="Declare that nothing was used in the period (no file)."
    )
    file = serializers.FileField(
        required=False,
        help_text="CSV with a header row (scheme, identifier, quantity, optional unit and "
        "title), optionally gzip-compressed.",
    )

    def validate(self, attrs):
        if attrs.get("nil") and attrs.get("file"):
            raise serializers.ValidationError({"file": ["A nil declaration has no file."]})
        if not attrs.get("nil") and not attrs.get("file"):
            raise serializers.ValidationError({"file": ["Attach the declaration file."]})
        return attrs


class DeclarationErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="The file's row: the header is row 1.")
    column = serializers.CharField()
    message = serializers.CharField()


class DeclarationSerializer(serializers.ModelSerializer):
    errors = DeclarationErrorSerializer(many=True, read_only=True, help_text="The first errors.")
    report_url = serializers.SerializerMethodField()
    unmatched_url = serializers.SerializerMethodField()
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = UsageDeclaration
        fields = [
            "id",
            "licence",
            "period",
            "period_start",
            "period_end",
            "model_name",
            "model_version",
            "unit",
            "status",
            "nil",
            "supersedes",
            "deadline",
            "late",
            "lines",
            "declared_quantity",
            "matched_lines",
            "matched_quantity",
            "unmatched_lines",
            "unmatched_quantity",
            "reserved_lines",
            "reserved_quantity",
            "works_matched",
            "stage",
            "percent",
            "error_count",
            "errors",
            "message",
            "original_name",
            "file_size",
            "created_at",
            "started_at",
            "finished_at",
            "report_url",
            "unmatched_url",
            "errors_url",
        ]
        read_only_fields = fields

    def _url(self, name: str, obj: UsageDeclaration) -> str:
        path = reverse(name, kwargs={"licence_id": obj.licence_id, "pk": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_report_url(self, obj) -> str:
        return self._url("declaration-report", obj)

    @extend_schema_field(OpenApiTypes.URI)
    def get_unmatched_url(self, obj) -> str:
        return self._url("declaration-unmatched", obj)

    @extend_schema_field(OpenApiTypes.URI)
    def get_errors_url(self, obj) -> str:
        return self._url("declaration-errors", obj)


class UnmatchedIdentifierSerializer(serializers.Serializer):
    scheme = serializers.CharField()
    identifier = serializers.CharField()
    valid = serializers.BooleanField()
    note = serializers.CharField()
    quantity = serializers.IntegerField()
    lines = serializers.IntegerField()
    title = serializers.CharField()


class MatchFiguresSerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    quantity = serializers.IntegerField()
    lines_percent = serializers.CharField(help_text="Share of the lines, for display (2 places).")
    quantity_percent = serializers.CharField(help_text="Share of the quantity (2 places).")


class MatchReportSerializer(serializers.Serializer):
    declaration = serializers.IntegerField()
    status = serializers.CharField()
    unit = serializers.CharField()
    lines = serializers.IntegerField()
    declared_quantity = serializers.IntegerField()
    works_matched = serializers.IntegerField()
    matched = MatchFiguresSerializer()
    unmatched = MatchFiguresSerializer()
    reserved = MatchFiguresSerializer()
    top_unmatched = UnmatchedIdentifierSerializer(many=True)
