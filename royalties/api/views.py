"""Cycles (staff), the distribution policy (staff), statements (holders and staff) and payouts
(a holder's payout account and payouts; staff: runs and reconciliations).

Thin: objects are found through the caller's scope (another organisation's statement is a
404; cycles and policies are the society's own business, so a non-staff caller finds none), and
services do the work.
"""

from __future__ import annotations

from django.db.models import F
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, caller_from_request
from config.errors import ConflictError, NotFoundError
from licensing.models import Work
from royalties.api import serializers as s
from royalties.models import (
    Cycle,
    DistributionPolicy,
    Statement,
    StatementWorkLine,
    SuspenseItem,
)
from royalties.selectors import payouts as payout_selectors
from royalties.services import cycles, payouts, reconciliation, statement_exports
from royalties.services.suspense import suspense_outstanding, suspense_release_to_work

STRIPE_502 = OpenApiResponse(description="Stripe refused the request or could not be reached.")


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

    @extend_schema(request=None, responses={201: s.PayoutReconciliationSerializer, 502: STRIPE_502})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk=None):
        """Compare the cycle's payouts in the ledger with Stripe's transfers and balance
        transactions (operator or approver); a clean result closes a paid cycle."""
        cycle = self.get_object()
        result = reconciliation.reconcile_cycle(cycle_id=cycle.pk, caller=self.caller)
        result = payout_selectors.reconciliation_list(caller=self.caller).get(pk=result.pk)
        return Response(
            s.PayoutReconciliationSerializer(result).data, status=status.HTTP_201_CREATED
        )


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


# --- payouts ----------------------------------------------------------------------------------


class StaffOnlyMixin:
    """The society's own business: anyone not on the staff finds nothing here (404)."""

    def check_permissions(self, request):
        super().check_permissions(request)
        if not caller_from_request(request).is_staff:
            raise NotFound()


class PayoutAccountView(APIView):
    """The payout account (Stripe Connect) of the rights holder the caller acts for: its state
    as Stripe last reported it, and the holder's payout settings. 404 until one is connected."""

    def _account(self, request):
        account = payout_selectors.payout_account_get(caller=caller_from_request(request))
        if account is None:
            raise NotFoundError(
                "No payout account is connected for this organisation.",
                code="payout_account_missing",
            )
        return account

    @extend_schema(responses=s.PayoutAccountSerializer)
    def get(self, request):
        return Response(s.PayoutAccountSerializer(self._account(request)).data)

    @extend_schema(request=s.PayoutAccountSettingsSerializer, responses=s.PayoutAccountSerializer)
    def patch(self, request):
        """Change the personal payout threshold (minor units) and the payout currency (owners
        and admins of the rights holder)."""
        account = self._account(request)
        data = s.PayoutAccountSettingsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        account = payouts.payout_account_settings_update(
            caller=caller_from_request(request),
            threshold_minor=values.get("threshold_minor", account.threshold_minor),
            payout_currency=values.get("payout_currency", account.payout_currency),
        )
        return Response(s.PayoutAccountSerializer(account).data)


class PayoutAccountConnectView(APIView):
    """Start or continue Stripe's hosted onboarding: creates the rights holder's Express account
    the first time and answers a single-use onboarding link (owners and admins)."""

    @extend_schema(
        request=s.PayoutAccountConnectSerializer,
        responses={200: s.PayoutAccountLinkSerializer, 502: STRIPE_502},
    )
    def post(self, request):
        data = s.PayoutAccountConnectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        url = payouts.payout_account_connect(
            caller=caller_from_request(request),
            return_url=values.get("return_url")
            or request.build_absolute_uri(reverse("payouts_return")),
            refresh_url=values.get("refresh_url")
            or request.build_absolute_uri(reverse("payouts_refresh")),
        )
        return Response(s.PayoutAccountLinkSerializer({"url": url}).data)


class PayoutViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Payouts: a rights holder sees its own; staff see every payout. Filter by cycle and
    status."""

    serializer_class = s.PayoutSerializer
    filterset_fields = ["cycle", "status", "currency"]

    def get_queryset(self):
        return payout_selectors.payout_list(caller=self.caller)


class PayoutRunViewSet(StaffOnlyMixin, ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Payout runs (staff): status, pause reason, counts and amounts by payout status, percent
    done. `resume` restarts a paused run (approvers)."""

    serializer_class = s.PayoutRunSerializer
    filterset_fields = ["cycle", "status"]

    def get_queryset(self):
        return payout_selectors.payout_run_list(caller=self.caller)

    @extend_schema(request=None, responses={200: s.PayoutRunSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        run = self.get_object()
        if not payouts.payout_run_resume(run_id=run.pk, caller=self.caller):
            raise ConflictError("The payout run is not paused.", code="payout_run_not_paused")
        return Response(s.PayoutRunSerializer(self.get_queryset().get(pk=run.pk)).data)


class PayoutReconciliationViewSet(
    StaffOnlyMixin, ScopedViewMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    """Reconciliations of cycles' payouts with Stripe (staff), newest first; `?cycle=`."""

    serializer_class = s.PayoutReconciliationSerializer
    filterset_fields = ["cycle", "clean"]

    def get_queryset(self):
        return payout_selectors.reconciliation_list(caller=self.caller)
