"""Training-content summary API (EU AI Act Art. 53(1)(d)).

- ``GET /training-summaries/``: the caller's summaries (drafts included; staff: all).
- ``POST /training-summaries/`` {model_name, model_version}: generate the draft (201 when a
  new draft, 200 when the open draft was regenerated).
- ``GET /training-summaries/<id>/``: public once published (no authentication needed); a draft
  only for its licensee (and staff), anyone else gets 404.
- ``PATCH /training-summaries/<id>/``: edit the draft's free text; ``POST .../publish/``.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, caller_from_request, get_scoped_or_404
from licensing.models import TrainingSummary
from licensing.selectors_summaries import (
    training_summary_document,
    training_summary_list,
    training_summary_visible,
)
from licensing.services import summaries


class TrainingSummaryGenerateSerializer(serializers.Serializer):
    model_name = serializers.CharField(max_length=200)
    model_version = serializers.CharField(max_length=100)


class TrainingSummaryEditSerializer(serializers.Serializer):
    """The licensee's text; only these fields may be sent (others are refused by name)."""

    contact = serializers.CharField(required=False, allow_blank=True)
    placed_on_market = serializers.DateField(required=False, allow_null=True)
    model_description = serializers.CharField(required=False, allow_blank=True)
    other_sources = serializers.CharField(required=False, allow_blank=True)
    processing_narrative = serializers.CharField(required=False, allow_blank=True)


class TrainingSummarySerializer(serializers.ModelSerializer):
    licensee = serializers.CharField(source="licensee.code", read_only=True)
    licensee_name = serializers.CharField(source="licensee.name", read_only=True)
    document = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()

    class Meta:
        model = TrainingSummary
        fields = [
            "id",
            "licensee",
            "licensee_name",
            "model_name",
            "model_version",
            "version",
            "status",
            "generated_at",
            "published_at",
            "contact",
            "placed_on_market",
            "model_description",
            "other_sources",
            "processing_narrative",
            "html_url",
            "document",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_document(self, summary: TrainingSummary) -> dict:
        return training_summary_document(summary)

    def get_html_url(self, summary: TrainingSummary) -> str:
        from django.urls import reverse

        return reverse("training_summary_public", kwargs={"pk": summary.pk})


class TrainingSummaryListView(ScopedViewMixin, generics.ListAPIView):
    """The caller's training-content summaries. POST generates (or regenerates) a draft."""

    serializer_class = TrainingSummarySerializer
    filterset_fields = ["status", "model_name", "model_version"]
    ordering_fields = ["model_name", "version", "published_at"]

    def get_queryset(self):
        return training_summary_list(caller=self.caller)

    @extend_schema(
        request=TrainingSummaryGenerateSerializer,
        responses={201: TrainingSummarySerializer, 200: TrainingSummarySerializer},
        description="Generate the draft summary of a model from the licensee's accepted "
        "declarations naming it (model_name, model_version). 201: a new draft (the next "
        "version); 200: the open draft's figures were regenerated (its text is kept).",
    )
    def post(self, request, *args, **kwargs):
        data = TrainingSummaryGenerateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        summary = summaries.training_summary_generate(caller=self.caller, **data.validated_data)
        # A new draft was generated when it was created; a regenerated one is older.
        new = summary.generated_at == summary.created_at
        code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
        return Response(TrainingSummarySerializer(summary).data, status=code)


class TrainingSummaryDetailView(APIView):
    """One summary: public once published; a draft only for its licensee and staff."""

    def get_permissions(self):
        if self.request.method == "GET":
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated()]

    def _own(self, pk) -> TrainingSummary:
        caller = caller_from_request(self.request)
        return get_scoped_or_404(TrainingSummary.objects.select_related("licensee"), caller, pk=pk)

    @extend_schema(responses={200: TrainingSummarySerializer})
    def get(self, request, pk: int):
        caller = caller_from_request(request)
        caller = caller if caller.user is not None or caller.api_key is not None else None
        summary = training_summary_visible(caller=caller).filter(pk=pk).first()
        if summary is None:
            raise Http404
        return Response(TrainingSummarySerializer(summary).data)

    @extend_schema(
        request=TrainingSummaryEditSerializer,
        responses={200: TrainingSummarySerializer},
        description="Edit the draft's text: contact, placed_on_market, model_description, "
        "other_sources, processing_narrative. A published version is final (409).",
    )
    def patch(self, request, pk: int):
        summary = self._own(pk)
        body = request.data if hasattr(request.data, "keys") else {}
        updated = summaries.training_summary_update(
            caller=caller_from_request(request), summary=summary, data=dict(body.items())
        )
        return Response(TrainingSummarySerializer(updated).data)


class TrainingSummaryPublishView(APIView):
    """Publish the draft: public from now on, and final."""

    @extend_schema(request=None, responses={200: TrainingSummarySerializer})
    def post(self, request, pk: int):
        caller = caller_from_request(request)
        summary = get_scoped_or_404(
            TrainingSummary.objects.select_related("licensee"), caller, pk=pk
        )
        published = summaries.training_summary_publish(caller=caller, summary=summary)
        return Response(TrainingSummarySerializer(published).data)
