"""Serializers of catalogue import jobs: the upload form and the job as clients see it."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from licensing.models import CatalogueImport, ImportMode


class CatalogueImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="The catalogue file: CSV (UTF-8, header row) or XLSX with the same columns."
    )
    mode = serializers.ChoiceField(
        choices=ImportMode.choices,
        default=ImportMode.ALL_OR_NOTHING,
        help_text="all_or_nothing: any error writes nothing. valid_only: works with errors "
        "are skipped, the others written.",
    )


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Spreadsheet row: the header is row 1.")
    column = serializers.CharField()
    message = serializers.CharField()


class CatalogueImportSerializer(serializers.ModelSerializer):
    created_by = serializers.SerializerMethodField()
    errors = ImportErrorSerializer(many=True, read_only=True, help_text="The first 100 errors.")
    errors_url = serializers.SerializerMethodField(
        help_text="Every error as CSV (row, column, value, message)."
    )

    class Meta:
        model = CatalogueImport
        fields = [
            "id",
            "catalogue",
            "created_by",
            "original_name",
            "file_size",
            "file_sha256",
            "mode",
            "status",
            "stage",
            "percent",
            "rows_total",
            "rows_done",
            "works_created",
            "works_updated",
            "works_unchanged",
            "works_skipped",
            "error_count",
            "errors",
            "errors_url",
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.EMAIL)
    def get_created_by(self, job: CatalogueImport) -> str | None:
        return job.created_by.email if job.created_by_id else None

    @extend_schema_field(OpenApiTypes.URI)
    def get_errors_url(self, job: CatalogueImport) -> str:
        path = reverse(
            "catalogue-import-errors",
            kwargs={"catalogue_id": job.catalogue_id, "pk": job.pk},
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
