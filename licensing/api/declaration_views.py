"""Usage declaration API: file one (202 with the job), follow it, read the match report, fetch
the unmatched pool and the errors as CSV.

Thin: the licence and its declarations are found through the caller's scope (another
organisation's licence is a 404, never a 403), and the service does the rest.
"""

from __future__ import annotations

from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, get_scoped_or_404
from config.errors import ConflictError
from licensing.api import declaration_serializers as s
from licensing.errors import ImportFileError
from licensing.models import Licence, UsageDeclaration
from licensing.selectors_declarations import declaration_match_report
from licensing.services import declarations

_CHUNK = 1024 * 1024


class JsonLinesParser(BaseParser):
    """``application/x-ndjson``: the body, one declaration line per JSON object, streamed to a
    temporary file (never held whole in memory)."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        upload = TemporaryUploadedFile("declaration.jsonl", self.media_type, 0, "utf-8")
        size, limit = 0, declarations.declaration_max_bytes()
        while stream is not None and (chunk := stream.read(_CHUNK)):
            size += len(chunk)
            if size > limit:
                upload.close()
                raise ImportFileError(
                    f"The body is larger than the limit of {limit:,} bytes; split the declaration.",
                    code="file_too_large",
                )
            upload.write(chunk)
        upload.size = size
        upload.seek(0)
        return {"file": upload}


class _LicenceDeclarationsMixin(ScopedViewMixin):
    """Declarations of the licence in the URL, which must be visible to the caller."""

    def licence(self) -> Licence:
        if not hasattr(self, "_licence"):
            self._licence = get_scoped_or_404(
                Licence.objects.select_related("licensee"),
                self.caller,
                pk=self.kwargs["licence_id"],
            )
        return self._licence

    def base_queryset(self):
        return UsageDeclaration.objects.all()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no URL kwargs
            return UsageDeclaration.objects.none()
        return super().get_queryset().filter(licence=self.licence())

    def declaration(self) -> UsageDeclaration:
        return get_scoped_or_404(self.get_queryset(), self.caller, pk=self.kwargs["pk"])


_NDJSON_PARAMS = [
    OpenApiParameter(name, str, description=f"With an application/x-ndjson body: {name}.")
    for name in ("period", "model_name", "model_version", "unit")
]


class DeclarationListView(_LicenceDeclarationsMixin, generics.ListAPIView):
    """Declarations of one licence, newest first. POST files one and starts its job."""

    serializer_class = s.DeclarationSerializer
    parser_classes = [MultiPartParser, FormParser, JsonLinesParser]
    filterset_fields = ["status", "period", "model_name", "model_version"]
    ordering_fields = ["created_at", "period_start"]

    @extend_schema(
        request={
            "multipart/form-data": s.DeclarationCreateSerializer,
            "application/x-ndjson": OpenApiTypes.BINARY,
        },
        parameters=_NDJSON_PARAMS,
        responses={202: s.DeclarationSerializer, 201: s.DeclarationSerializer},
        description="File a usage declaration: a CSV file (multipart), or JSON Lines as the "
        "body with period, model_name and model_version as query parameters. Processing runs "
        "in the background: follow the returned declaration (status, stage, percent). A nil "
        "declaration (nil=true, no file) is accepted at once (201).",
    )
    def post(self, request, *args, **kwargs):
        licence = self.licence()  # another organisation's licence: 404 before parsing
        jsonl = request.content_type.startswith(JsonLinesParser.media_type)
        fields = {**request.query_params.dict(), **request.data} if jsonl else request.data
        data = s.DeclarationCreateSerializer(data=fields)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        common = {
            "caller": self.caller,
            "licence": licence,
            "period": values["period"],
            "model_name": values["model_name"],
            "model_version": values["model_version"],
        }
        if values["nil"]:
            declaration = declarations.declaration_nil_file(**common)
            code = status.HTTP_201_CREATED
        else:
            try:
                declaration = declarations.declaration_file_start(
                    **common,
                    uploaded_file=values["file"],
                    unit=values.get("unit") or None,
                    file_format="jsonl" if jsonl else None,
                )
            finally:
                if jsonl:  # ours, not in request.FILES, so Django would not close it
                    values["file"].close()
            declaration.refresh_from_db()  # an eager (in-process) run may have finished
            code = status.HTTP_202_ACCEPTED
        body = s.DeclarationSerializer(declaration, context=self.get_serializer_context()).data
        return Response(body, status=code)


class DeclarationDetailView(_LicenceDeclarationsMixin, generics.RetrieveAPIView):
    """One declaration: status, stage, percent, totals and the first errors."""

    serializer_class = s.DeclarationSerializer

    def get_object(self) -> UsageDeclaration:
        # One query (what pipelines poll): a declaration is in the caller's scope exactly when
        # its licence is (both by the licensee), so this 404s when finding the licence first
        # would, and when the declaration is not of that licence.
        declaration = get_scoped_or_404(
            self.base_queryset(),
            self.caller,
            pk=self.kwargs["pk"],
            licence_id=self.kwargs["licence_id"],
        )
        self.check_object_permissions(self.request, declaration)
        return declaration


class DeclarationReportView(_LicenceDeclarationsMixin, APIView):
    """The match report: matched, unmatched and reserved lines and quantities, and the
    identifiers with the most unmatched usage."""

    @extend_schema(responses={200: s.MatchReportSerializer})
    def get(self, request, licence_id: int, pk: int):
        report = declaration_match_report(declaration=self.declaration())
        return Response(s.MatchReportSerializer(report).data)


class DeclarationUnmatchedView(_LicenceDeclarationsMixin, APIView):
    """The unmatched pool as CSV: scheme, identifier, valid, note, quantity, lines, title."""

    @extend_schema(
        operation_id="v1_licences_declarations_unmatched_csv",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV")},
    )
    def get(self, request, licence_id: int, pk: int):
        declaration = self.declaration()
        response = StreamingHttpResponse(
            declarations.declaration_unmatched_csv_chunks(declaration=declaration),
            content_type="text/csv; charset=utf-8",
        )
        filename = f"declaration-{declaration.pk}-unmatched.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class DeclarationErrorsView(_LicenceDeclarationsMixin, APIView):
    """Every error of a rejected declaration as CSV: row, column, value, message."""

    @extend_schema(
        operation_id="v1_licences_declarations_errors_csv",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV")},
    )
    def get(self, request, licence_id: int, pk: int):
        declaration = self.declaration()
        if declaration.is_running:
            raise ConflictError(
                "The declaration is still being processed.", code="declaration_running"
            )
        filename = f"declaration-{declaration.pk}-errors.csv"
        if declaration.error_report:
            return FileResponse(
                declaration.error_report.open("rb"),
                as_attachment=True,
                filename=filename,
                content_type="text/csv; charset=utf-8",
            )
        header = ",".join(declarations.ERROR_REPORT_COLUMNS) + "\n"
        response = HttpResponse(header, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
