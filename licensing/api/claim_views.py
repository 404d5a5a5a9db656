"""Claims on the unmatched pool: a rights holder claims an unmatched identifier for its work;
staff accept or reject. Scoped: the claimant's organisation and staff see a claim, others 404."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.scoping import ScopedViewMixin, scope
from licensing.api import claim_serializers as s
from licensing.errors import LicensingError
from licensing.models import Catalogue, UnmatchedClaim, Work
from licensing.services import claims


class UnmatchedClaimViewSet(
    ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Claims on unmatched identifiers: your organisation's (staff: everyone's)."""

    serializer_class = s.UnmatchedClaimSerializer
    filterset_fields = ["status", "scheme"]

    def base_queryset(self):
        return UnmatchedClaim.objects.select_related("claimant", "work")

    def _own(self, model, pk: int):
        found = scope(model.objects.all(), self.caller).filter(pk=pk).first()
        if found is None:
            name = model._meta.model_name
            raise LicensingError(f"No such {name}.", code="invalid", details={name: ["Not found."]})
        return found

    @extend_schema(
        request=s.UnmatchedClaimCreateSerializer, responses={201: s.UnmatchedClaimSerializer}
    )
    def create(self, request, *args, **kwargs):
        data = s.UnmatchedClaimCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        new_work = values.get("new_work")
        if new_work is not None:
            new_work = {**new_work, "catalogue": self._own(Catalogue, new_work["catalogue"])}
        claim = claims.unmatched_claim_create(
            caller=self.caller,
            scheme=values["scheme"],
            identifier=values["identifier"],
            work=self._own(Work, values["work"]) if "work" in values else None,
            new_work=new_work,
            note=values["note"],
        )
        return Response(s.UnmatchedClaimSerializer(claim).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.UnmatchedClaimSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        claim = self.get_object()
        claims.unmatched_claim_accept(caller=self.caller, claim=claim)
        return Response(s.UnmatchedClaimSerializer(self.base_queryset().get(pk=claim.pk)).data)

    @extend_schema(request=s.UnmatchedClaimRejectSerializer, responses=s.UnmatchedClaimSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        claim = self.get_object()
        data = s.UnmatchedClaimRejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        claims.unmatched_claim_reject(
            caller=self.caller, claim=claim, reason=data.validated_data["reason"]
        )
        return Response(s.UnmatchedClaimSerializer(self.base_queryset().get(pk=claim.pk)).data)
