"""Catalogue import API: upload a file (202 with the job), follow the job, fetch the errors.

Thin: the catalogue and the jobs are found through the caller's scope (another
organisation's catalogue is a 404, never a 403), and the service does the rest.
"""

from __future__ import annotations

from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, get_scoped_or_404
from config.errors import ConflictError
from licensing.api import import_serializers as s
from licensing.importing.report import ERROR_REPORT_COLUMNS
from licensing.models import Catalogue, CatalogueImport, JobStatus
from licensing.services import imports


class _CatalogueImportsMixin(ScopedViewMixin):
    """Jobs of the catalogue in the URL, which must be visible to the caller."""

    def catalogue(self) -> Catalogue:
        if not hasattr(self, "_catalogue"):
            self._catalogue = get_scoped_or_404(
                Catalogue.objects.select_related("owner"),
                self.caller,
                pk=self.kwargs["catalogue_id"],
            )
        return self._catalogue

    def base_queryset(self):
        return CatalogueImport.objects.select_related("created_by")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return CatalogueImport.objects.none()
        return super().get_queryset().filter(catalogue=self.catalogue())


class CatalogueImportListView(_CatalogueImportsMixin, generics.ListAPIView):
    """Import jobs of one catalogue, newest first. POST uploads a file and starts a job."""

    serializer_class = s.CatalogueImportSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["status", "mode"]
    ordering_fields = ["created_at"]

    @extend_schema(
        request={"multipart/form-data": s.CatalogueImportCreateSerializer},
        responses={202: s.CatalogueImportSerializer},
        description="Upload a catalogue file. The import runs in the background: follow the "
        "returned job (status, percent, counts, errors).",
    )
    def post(self, request, *args, **kwargs):
        catalogue = self.catalogue()  # another organisation's catalogue: 404 before parsing
        data = s.CatalogueImportCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = imports.catalogue_import_start(
            caller=self.caller,
            catalogue=catalogue,
            uploaded_file=data.validated_data["file"],
            mode=data.validated_data["mode"],
        )
        job.refresh_from_db()  # an eager (in-process) run may have finished already
        body = s.CatalogueImportSerializer(job, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class CatalogueImportDetailView(_CatalogueImportsMixin, generics.RetrieveAPIView):
    """One import job: status, stage, percent, rows done, counts and the first errors."""

    serializer_class = s.CatalogueImportSerializer


class CatalogueImportErrorsView(_CatalogueImportsMixin, APIView):
    """Every error of the job as CSV: row, column, value, message."""

    @extend_schema(
        operation_id="v1_catalogues_imports_errors_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="CSV: row, column, value, message"
            )
        },
    )
    def get(self, request, catalogue_id: int, pk: int):
        job = get_scoped_or_404(self.get_queryset(), self.caller, pk=pk)
        if job.status in (JobStatus.PENDING, JobStatus.RUNNING):
            raise ConflictError(
                "The import is still running; its errors are known when it finishes.",
                code="import_running",
            )
        filename = f"import-{job.pk}-errors.csv"
        if job.error_report:
            return FileResponse(
                job.error_report.open("rb"),
                as_attachment=True,
                filename=filename,
                content_type="text/csv; charset=utf-8",
            )
        header = ",".join(ERROR_REPORT_COLUMNS) + "\n"
        response = HttpResponse(header, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
