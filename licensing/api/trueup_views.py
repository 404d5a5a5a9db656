"""True-ups: visible to the licensee and staff (others 404); either pays one, by invoice or by
card (Stripe Checkout)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.scoping import ScopedViewMixin
from licensing.models import Payment, TrueUp
from licensing.services.trueups import trueup_checkout_start, trueup_invoice_start, trueup_waive


class TrueUpSerializer(serializers.ModelSerializer):
    invoice_url = serializers.SerializerMethodField()

    class Meta:
        model = TrueUp
        fields = [
            "id",
            "licence",
            "declaration",
            "quote",
            "declared_volume",
            "tier_paid",
            "tier_due",
            "price_paid_minor",
            "price_due_minor",
            "amount_due_minor",
            "currency",
            "status",
            "payment",
            "invoice_url",
            "reason",
            "closed_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_invoice_url(self, obj) -> str:
        return obj.payment.invoice_url if obj.payment_id else ""


class TrueUpPaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id",
            "method",
            "status",
            "amount_minor",
            "currency",
            "invoice_id",
            "invoice_url",
            "checkout_session_id",
            "checkout_url",
        ]
        read_only_fields = fields


class TrueUpCheckoutSerializer(serializers.Serializer):
    payment = TrueUpPaymentSerializer()
    checkout_url = serializers.URLField()


class TrueUpWaiveSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the true-up is waived (audited).")


class TrueUpViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """True-ups owed where accepted token declarations overran the tier paid for."""

    serializer_class = TrueUpSerializer
    filterset_fields = ["licence", "status"]

    def base_queryset(self):
        return TrueUp.objects.select_related("payment")

    @extend_schema(request=None, responses=TrueUpPaymentSerializer)
    @action(detail=True, methods=["post"])
    def invoice(self, request, pk=None):
        payment = trueup_invoice_start(caller=self.caller, trueup=self.get_object())
        return Response(TrueUpPaymentSerializer(payment).data)

    @extend_schema(request=None, responses=TrueUpCheckoutSerializer)
    @action(detail=True, methods=["post"])
    def checkout(self, request, pk=None):
        """Pay by card: a Stripe Checkout Session; send the buyer to ``checkout_url``."""
        payment = trueup_checkout_start(caller=self.caller, trueup=self.get_object())
        return Response(
            {
                "payment": TrueUpPaymentSerializer(payment).data,
                "checkout_url": payment.checkout_url,
            }
        )

    @extend_schema(request=TrueUpWaiveSerializer, responses=TrueUpSerializer)
    @action(detail=True, methods=["post"])
    def waive(self, request, pk=None):
        trueup = self.get_object()
        data = TrueUpWaiveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        trueup_waive(caller=self.caller, trueup=trueup, reason=data.validated_data["reason"])
        return Response(TrueUpSerializer(self.base_queryset().get(pk=trueup.pk)).data)
