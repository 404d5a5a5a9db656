"""Cycles (staff), the distribution policy (staff) and statements (holders and staff).

Thin: objects are found through the caller's scope (another organisation's statement is a
404; cycles and policies are the society's own business, so a non-staff caller finds none), and
services do the work.
"""

from __future__ import annotations

from django.db.models import F
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.scoping import ScopedViewMixin
from licensing.models import Work
from royalties.api import serializers as s
from royalties.models import (
    Cycle,
    DistributionPolicy,
    Statement,
    StatementWorkLine,
    SuspenseItem,
)
from royalties.services import cycles, statement_exports
from royalties.services.suspense import suspense_outstanding, suspense_release_to_work


class PolicyViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Distribution policy versions, newest first. POST publishes the next version (fields not
    given are kept from the current one)."""

    serializer_class = s.PolicySerializer

    def base_queryset(self):
        return DistributionPolicy.objects.all()

    def create(self, request, *args, **kwargs):
        data = s.PolicySerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = cycles.policy_publish(caller=self.caller, **data.validated_data)
        return Response(s.PolicySerializer(policy).data, status=status.HTTP_201_CREATED)


class CycleViewSet(ScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Payout cycles. Actions: `allocate` (operator; a job: follow status, stage, percent),
    `approve` (an approver who did not allocate), `pay` (approver)."""

    serializer_class = s.CycleSerializer
    filterset_fields = ["status", "currency", "period"]

    def base_queryset(self):
        return Cycle.objects.select_related(
            "policy", "current_allocation", "allocated_by", "approved_by"
        )

    @extend_schema(request=s.CycleCreateSerializer, responses={201: s.CycleSerializer})
    def create(self, request, *args, **kwargs):
        data = s.CycleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cycle = cycles.cycle_create(caller=self.caller, **data.validated_data)
        return Response(s.CycleSerializer(cycle).data, status=status.HTTP_201_CREATED)

    def _act(self, service, code=status.HTTP_200_OK):
        cycle = service(caller=self.caller, cycle=self.get_object())
        cycle = self.base_queryset().get(pk=cycle.pk)
        return Response(s.CycleSerializer(cycle).data, status=code)

    @extend_schema(request=None, responses={202: s.CycleSerializer})
    @action(detail=True, methods=["post"])
    def allocate(self, request, pk=None):
        return self._act(cycles.cycle_allocate, status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: s.CycleSerializer})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._act(cycles.cycle_approve)

    @extend_schema(request=None, responses={200: s.CycleSerializer})
    @action(detail=True, methods=["post"])
    def pay(self, request, pk=None):
        return self._act(cycles.cycle_pay)


class StatementViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Statements: a holder sees its own published statements; staff see every statement of
    every allocation (drafts included)."""

    filterset_fields = ["cycle", "currency"]

    def get_serializer_class(self):
        return s.StatementDetailSerializer if self.action == "retrieve" else s.StatementSerializer

    def base_queryset(self):
        statements = Statement.objects.select_related("cycle", "holder")
        if not self.caller.is_staff:
            statements = statements.filter(
                published_at__isnull=False, allocation=F("cycle__current_allocation")
            )
        return statements

    @extend_schema(responses={200: s.StatementWorkLineSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def works(self, request, pk=None):
        """Earnings by work, largest first (paginated)."""
        statement = self.get_object()
        lines = StatementWorkLine.objects.filter(statement=statement).select_related("work")
        lines = lines.order_by("-amount_minor", "work_id")
        page = self.paginate_queryset(lines)
        return self.get_paginated_response(s.StatementWorkLineSerializer(page, many=True).data)

    @extend_schema(
        operation_id="v1_statements_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The statement as CSV: a header block (field, value), then its "
                "lines by licence/product (`source`) and by work (`work`), amounts in minor "
                "units. Formula-injection safe.",
            )
        },
    )
    @action(detail=True, methods=["get"], url_path="statement.csv", url_name="csv")
    def statement_csv(self, request, pk=None):
        """The statement as CSV (streamed)."""
        statement = self.get_object()
        response = StreamingHttpResponse(
            statement_exports.statement_csv_chunks(statement=statement),
            content_type="text/csv; charset=utf-8",
        )
        name = statement_exports.statement_filename(statement, "csv")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    @extend_schema(
        operation_id="v1_statements_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The statement as PDF: summary, earnings by product, top works.",
            )
        },
    )
    @action(detail=True, methods=["get"], url_path="statement.pdf", url_name="pdf")
    def statement_pdf(self, request, pk=None):
        """The statement as PDF."""
        statement = self.get_object()
        response = HttpResponse(
            statement_exports.statement_pdf(statement=statement), content_type="application/pdf"
        )
        name = statement_exports.statement_filename(statement, "pdf")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class SuspenseViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Money held in suspense (staff): what booked cycles hold now, by reason. `release` pays
    an item to a work's holders in the next cycle (after a claim or a resolution)."""

    serializer_class = s.SuspenseItemSerializer
    filterset_fields = ["reason", "currency", "cycle"]

    def base_queryset(self):
        return suspense_outstanding().select_related("cycle").order_by("-amount_minor", "pk")

    @extend_schema(request=s.SuspenseReleaseSerializer, responses={201: s.SuspenseItemSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        item = self.get_object()
        data = s.SuspenseReleaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        work = Work.objects.filter(pk=data.validated_data["work"]).first()
        if work is None:
            raise ValidationError({"work": ["No such work."]})
        suspense_release_to_work(
            caller=self.caller, item=item, work=work, reason=data.validated_data["reason"]
        )
        item = SuspenseItem.objects.select_related("cycle", "release").get(pk=item.pk)
        return Response(s.SuspenseItemSerializer(item).data, status=status.HTTP_201_CREATED)
