"""Disclosure API for rights holders: for each of the holder's works, which licensees declared
it, in which periods, how much, and what it earned.

- ``GET /disclosures/works/``: the holder's works (paginated; ``q`` searches title and
  reference) with usage totals by unit, number of licensees and earnings by currency.
- ``GET /disclosures/works/<work_id>/``: one work: a row per accepted declaration (licensee,
  model, period, quantity, unit) and a row per published statement (earnings).

The holder is the caller's organisation (staff: ``?holder=<registry code>``). A work the
holder has no share in is a 404. Earnings are the holder's own, after the administration fee,
from its published statements; statement lines by work are not split by licensee.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import caller_from_request
from licensing.models import Work
from licensing.selectors_disclosures import (
    disclosure_holder,
    disclosure_work_earnings,
    disclosure_work_get,
    disclosure_work_list,
    disclosure_work_totals,
    disclosure_work_usage,
)


class _UsageTotalSerializer(serializers.Serializer):
    unit = serializers.CharField()
    quantity = serializers.IntegerField()
    lines = serializers.IntegerField()


class _EarningTotalSerializer(serializers.Serializer):
    currency = serializers.CharField()
    amount_minor = serializers.IntegerField()


class DisclosureWorkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    work_ref = serializers.CharField()
    title = serializers.CharField()
    media_type = serializers.CharField()
    holder_share_ppm = serializers.IntegerField(help_text="The holder's share, ppm of the work")
    licensees = serializers.IntegerField(help_text="Licensees with accepted declarations of it")
    usage = _UsageTotalSerializer(many=True, help_text="Declared quantity by unit")
    earnings = _EarningTotalSerializer(many=True, help_text="The holder's earnings by currency")


class DisclosureUsageSerializer(serializers.Serializer):
    declaration = serializers.IntegerField()
    licensee_code = serializers.CharField()
    licensee_name = serializers.CharField()
    model_name = serializers.CharField()
    model_version = serializers.CharField()
    period = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    unit = serializers.CharField()
    quantity = serializers.IntegerField()
    lines = serializers.IntegerField()
    reserved = serializers.BooleanField(help_text="Used while reserved: flagged, not paid")


class DisclosureEarningSerializer(serializers.Serializer):
    statement_id = serializers.IntegerField()
    period = serializers.CharField()
    period_start = serializers.DateField()
    currency = serializers.CharField()
    published_at = serializers.DateTimeField()
    quantity = serializers.IntegerField()
    amount_minor = serializers.IntegerField()


class DisclosureWorkDetailSerializer(DisclosureWorkSerializer):
    declarations = DisclosureUsageSerializer(many=True)
    statements = DisclosureEarningSerializer(many=True)


_HOLDER = OpenApiParameter(
    "holder", str, description="Staff only: the rights holder's registry code."
)


def _work_body(work, totals: dict) -> dict:
    return {
        "id": work.pk,
        "work_ref": work.work_ref,
        "title": work.title,
        "media_type": work.media_type,
        "holder_share_ppm": work.holder_share_ppm or 0,
        **totals,
    }


class DisclosureWorkListView(generics.ListAPIView):
    """The holder's works with who declared them and what they earned (totals)."""

    serializer_class = DisclosureWorkSerializer
    filter_backends: list = []  # ``q`` only: the totals are computed per page

    def holder(self):
        return disclosure_holder(
            caller=caller_from_request(self.request),
            holder_code=self.request.query_params.get("holder", ""),
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Work.objects.none()
        self._holder = self.holder()
        return disclosure_work_list(holder=self._holder, q=self.request.query_params.get("q", ""))

    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="Search title or reference"), _HOLDER]
    )
    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        totals = disclosure_work_totals(holder=self._holder, work_ids=[w.pk for w in page])
        body = [_work_body(work, totals[work.pk]) for work in page]
        return self.get_paginated_response(DisclosureWorkSerializer(body, many=True).data)


class DisclosureWorkDetailView(APIView):
    """One of the holder's works: each accepted declaration and each published statement."""

    @extend_schema(parameters=[_HOLDER], responses={200: DisclosureWorkDetailSerializer})
    def get(self, request, work_id: int):
        caller = caller_from_request(request)
        holder = disclosure_holder(
            caller=caller, holder_code=request.query_params.get("holder", "")
        )
        work = disclosure_work_get(holder=holder, work_id=work_id)
        totals = disclosure_work_totals(holder=holder, work_ids=[work.pk])[work.pk]
        body = {
            **_work_body(work, totals),
            "declarations": disclosure_work_usage(work=work),
            "statements": disclosure_work_earnings(holder=holder, work=work),
        }
        return Response(DisclosureWorkDetailSerializer(body).data)
