"""Thin API views over the repertoire: parse, call one service or selector, render."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, caller_from_request, get_scoped_or_404
from accounts.throttling import RegistryBurstThrottle, caller_ident
from licensing import selectors
from licensing.api import serializers as s
from licensing.errors import LicensingError
from licensing.models import Catalogue, Conflict, Reservation, Work
from licensing.services import conflicts, registry, repertoire, reservations
from licensing.services.society import society_settings_get, society_settings_update


class CatalogueViewSet(ScopedViewMixin, viewsets.ModelViewSet):
    serializer_class = s.CatalogueSerializer
    filterset_fields = ["media_type", "default_consent"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def base_queryset(self):
        return Catalogue.objects.all()

    def get_queryset(self):
        return selectors.catalogue_list(caller=self.caller).order_by("name")

    def perform_create(self, serializer):
        serializer.instance = repertoire.catalogue_create(
            caller=self.caller, **serializer.validated_data
        )

    @extend_schema(request=s.CatalogueUpdateSerializer, responses=s.CatalogueSerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.CatalogueUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        catalogue = repertoire.catalogue_update(
            caller=self.caller, catalogue=self.get_object(), **data.validated_data
        )
        return Response(s.CatalogueSerializer(catalogue).data)

    def perform_destroy(self, instance):
        repertoire.catalogue_delete(caller=self.caller, catalogue=instance)


_WORK_FILTERS = [
    OpenApiParameter("catalogue", int, description="Catalogue id"),
    OpenApiParameter("identifier", str, description="scheme:value, e.g. isbn:978-0-439-02348-1"),
    OpenApiParameter("search", str, description="Title or work_ref contains"),
    OpenApiParameter(
        "consent", str, enum=["licensed", "reserved"], description="Effective consent for `use`"
    ),
    OpenApiParameter("use", str, enum=["training", "fine_tuning", "rag"]),
    OpenApiParameter("disputed", bool),
]


class WorkViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.WorkSerializer
    filter_backends: list = []  # filtering is the selector's job

    def base_queryset(self):
        return Work.objects.all()

    def get_queryset(self):
        params = self.request.query_params
        catalogue = None
        if params.get("catalogue"):
            catalogue = get_scoped_or_404(
                Catalogue.objects.all(), self.caller, pk=params["catalogue"]
            )
        disputed = params.get("disputed")
        works = selectors.work_list(
            caller=self.caller,
            catalogue=catalogue,
            identifier=params.get("identifier"),
            search=params.get("search"),
            consent=params.get("consent"),
            use=params.get("use") or "training",
            disputed=None if disputed in (None, "") else disputed.lower() in ("1", "true"),
        )
        return works.prefetch_related("identifiers", "shares__holder").order_by("pk")

    @extend_schema(parameters=_WORK_FILTERS)
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.WorkCreateSerializer, responses={201: s.WorkSerializer})
    def create(self, request, *args, **kwargs):
        data = s.WorkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        catalogue = get_scoped_or_404(
            Catalogue.objects.all(), self.caller, pk=fields.pop("catalogue")
        )
        work = repertoire.work_create(caller=self.caller, catalogue=catalogue, **fields)
        return Response(s.WorkSerializer(work).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SharesSetSerializer, responses=s.WorkSerializer)
    @action(detail=True, methods=["put"])
    def shares(self, request, pk=None):
        work = self.get_object()  # another organisation's work is a 404 before any validation
        data = s.SharesSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        work = repertoire.work_shares_set(
            caller=self.caller, work=work, shares=data.validated_data["shares"]
        )
        return Response(s.WorkSerializer(self.get_queryset().get(pk=work.pk)).data)

    @extend_schema(request=s.ConsentSetSerializer, responses=s.WorkSerializer)
    @action(detail=True, methods=["post"])
    def consent(self, request, pk=None):
        work = self.get_object()
        data = s.ConsentSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repertoire.work_consent_set(
            caller=self.caller, works=Work.objects.filter(pk=work.pk), **data.validated_data
        )
        return Response(s.WorkSerializer(self.get_queryset().get(pk=work.pk)).data)

    @extend_schema(
        request=s.BulkConsentSetSerializer,
        responses=s.ConsentSetResultSerializer,
        operation_id="v1_works_consent_bulk",
    )
    @action(detail=False, methods=["post"], url_path="consent")
    def consent_bulk(self, request):
        data = s.BulkConsentSetSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        works = Work.objects.all()
        if fields.get("catalogue"):
            catalogue = get_scoped_or_404(
                Catalogue.objects.all(), self.caller, pk=fields["catalogue"]
            )
            works = works.filter(catalogue=catalogue)
        if fields.get("work_ids"):
            works = works.filter(pk__in=fields["work_ids"])
        changed = repertoire.work_consent_set(
            caller=self.caller, works=works, consent=fields["consent"], uses=fields.get("uses")
        )
        return Response({"changed": changed})


class ConflictViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Conflicting claims, visible to each claimant and to staff."""

    serializer_class = s.ConflictSerializer
    filterset_fields = ["status", "scheme"]

    def base_queryset(self):
        return Conflict.objects.prefetch_related("works__catalogue__owner", "claimants")

    @extend_schema(request=s.ConflictResolveSerializer, responses=s.ConflictSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        conflict = self.get_object()
        data = s.ConflictResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conflict = conflicts.conflict_resolve(
            caller=self.caller, conflict=conflict, **data.validated_data
        )
        return Response(s.ConflictSerializer(self.base_queryset().get(pk=conflict.pk)).data)


class ReservationViewSet(
    ScopedViewMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """A member organisation's own reservations for works outside its catalogues."""

    serializer_class = s.ReservationSerializer
    filterset_fields = ["kind", "scheme"]

    def base_queryset(self):
        return Reservation.objects.select_related("organisation")

    @extend_schema(request=s.ReservationCreateSerializer, responses={201: s.ReservationSerializer})
    def create(self, request, *args, **kwargs):
        data = s.ReservationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservation = reservations.reservation_create(caller=self.caller, **data.validated_data)
        return Response(s.ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.ReservationSerializer)
    def destroy(self, request, *args, **kwargs):
        reservation = reservations.reservation_withdraw(
            caller=self.caller, reservation=self.get_object()
        )
        return Response(s.ReservationSerializer(reservation).data)


class RegistryThrottle(UserRateThrottle):
    """One budget per caller: per API key, per person when logged in, per address otherwise
    (an API key's user is anonymous, so keying by user would put every key in one bucket)."""

    scope = "registry"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": caller_ident(self, request)}


class RegistryCheckView(APIView):
    """Public: is each identifier licensed, reserved or unknown? Up to 10,000 per call."""

    permission_classes = [AllowAny]
    throttle_classes = [RegistryBurstThrottle, RegistryThrottle]

    @extend_schema(request=s.RegistryCheckSerializer, responses=s.RegistryCheckResultSerializer)
    def post(self, request):
        # Parsed by hand: DRF field-by-field validation of 10,000 nested items costs more
        # than the look-up itself. The schema above documents the same shape.
        body = request.data if isinstance(request.data, dict) else {}
        items, use = body.get("items"), body.get("use", "training")
        if not isinstance(items, list) or not items:
            raise LicensingError(
                'Send {"items": [{"scheme", "identifier"}, ...]}.',
                code="invalid",
                details={"items": ["A non-empty list."]},
            )
        if len(items) > registry.MAX_CHECK_PAIRS:
            raise LicensingError(
                f"At most {registry.MAX_CHECK_PAIRS} items per call; got {len(items)}.",
                code="too_many",
                details={"items": [f"{len(items)} items."]},
            )
        if use not in ("training", "fine_tuning", "rag"):
            raise LicensingError(
                f"Unknown use {use!r}.",
                code="invalid",
                details={"use": ["training, fine_tuning or rag."]},
            )
        bad = [i for i, item in enumerate(items) if not isinstance(item, dict)]
        if bad:
            raise LicensingError(
                "Each item is an object with scheme and identifier.",
                code="invalid",
                details={"items": bad[:20]},
            )
        regime = society_settings_get().consent_regime  # read once: the answer and the body
        results = registry.registry_check(pairs=items, use=use, consent_regime=regime)
        return Response(
            {
                "consent_regime": regime,
                "use": use,
                "results": [r.as_dict() for r in results],
            }
        )


class ReservationFeedView(APIView):
    """Public CSV of everything reserved from AI training, for crawlers."""

    permission_classes = [AllowAny]
    throttle_classes = [RegistryThrottle]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        response = StreamingHttpResponse(
            reservations.reservation_feed_csv(), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = 'attachment; filename="blanket-reservations.csv"'
        return response


class ReservationRequestView(APIView):
    """Public: a non-member reserves a work, URL prefix or domain; confirmed by email."""

    permission_classes = [AllowAny]
    throttle_classes = [RegistryThrottle]

    @extend_schema(request=s.ReservationRequestSerializer, responses={202: None})
    def post(self, request):
        data = s.ReservationRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reservations.reservation_request(**data.validated_data)
        return Response(
            {"detail": "Check your email to confirm the reservation."},
            status=status.HTTP_202_ACCEPTED,
        )


class SocietySettingsView(APIView):
    """The society's consent regime: anyone may read it; staff change it."""

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "GET" else super().get_permissions()

    @extend_schema(responses=s.SocietySettingsSerializer)
    def get(self, request):
        return Response(s.SocietySettingsSerializer(society_settings_get()).data)

    @extend_schema(request=s.SocietySettingsSerializer, responses=s.SocietySettingsSerializer)
    def patch(self, request):
        data = s.SocietySettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        settings = society_settings_update(
            caller=caller_from_request(request), **data.validated_data
        )
        return Response(s.SocietySettingsSerializer(settings).data)
