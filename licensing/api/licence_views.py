"""Thin API views over products, quotes, licences, payments and certificates."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts.scoping import ScopedViewMixin, caller_from_request, get_scoped_or_404
from licensing import certificates as signing
from licensing.api import licence_serializers as s
from licensing.models import Certificate, Licence, LicenceProduct, Payment, Quote
from licensing.services import licences, products
from licensing.services.certificates import certificate_document, certificate_verify


class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Licence products: everyone logged in reads the ones on sale; staff manage them."""

    serializer_class = s.ProductSerializer
    filterset_fields = ["active", "currency"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        queryset = LicenceProduct.objects.prefetch_related("tiers").order_by("name")
        if not caller_from_request(self.request).is_staff:
            queryset = queryset.filter(active=True)
        return queryset

    @extend_schema(request=s.ProductWriteSerializer, responses={201: s.ProductSerializer})
    def create(self, request, *args, **kwargs):
        data = s.ProductWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        product = products.product_create(
            caller=caller_from_request(request), **data.validated_data
        )
        return Response(s.ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProductUpdateSerializer, responses=s.ProductSerializer)
    def partial_update(self, request, *args, **kwargs):
        data = s.ProductUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        product = products.product_update(
            caller=caller_from_request(request),
            product=self.get_object(),
            **data.validated_data,
        )
        return Response(s.ProductSerializer(product).data)


class QuoteViewSet(
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.QuoteSerializer

    def base_queryset(self):
        return Quote.objects.select_related("product", "licensee").order_by("-created_at")

    @extend_schema(request=s.QuoteCreateSerializer, responses={201: s.QuoteSerializer})
    def create(self, request, *args, **kwargs):
        data = s.QuoteCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        product = LicenceProduct.objects.filter(code=fields.pop("product"), active=True).first()
        if product is None:
            raise Http404
        quote = licences.quote_create(caller=self.caller, product=product, **fields)
        return Response(s.QuoteSerializer(quote).data, status=status.HTTP_201_CREATED)


class LicenceViewSet(
    ScopedViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.LicenceSerializer
    filterset_fields = ["status"]

    def base_queryset(self):
        return Licence.objects.select_related("product", "licensee", "certificate").order_by(
            "-created_at"
        )

    @extend_schema(request=s.LicenceCreateSerializer, responses={201: s.LicenceSerializer})
    def create(self, request, *args, **kwargs):
        data = s.LicenceCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        quote = get_scoped_or_404(Quote.objects.all(), self.caller, pk=data.validated_data["quote"])
        licence = licences.licence_from_quote(caller=self.caller, quote=quote)
        return Response(s.LicenceSerializer(licence).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.CheckoutSerializer)
    @action(detail=True, methods=["post"])
    def checkout(self, request, pk=None):
        payment = licences.licence_checkout_start(
            caller=self.caller,
            licence=self.get_object(),
            return_base_url=request.build_absolute_uri("/"),
        )
        return Response(
            {"payment": s.PaymentSerializer(payment).data, "checkout_url": payment.checkout_url}
        )

    @extend_schema(request=None, responses=s.PaymentSerializer)
    @action(detail=True, methods=["post"])
    def invoice(self, request, pk=None):
        payment = licences.licence_invoice_start(caller=self.caller, licence=self.get_object())
        return Response(s.PaymentSerializer(payment).data)

    @extend_schema(request=s.OfflinePaymentSerializer, responses={201: s.PaymentSerializer})
    @action(detail=True, methods=["post"], url_path="offline-payments")
    def offline_payments(self, request, pk=None):
        licence = self.get_object()
        data = s.OfflinePaymentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment = licences.payment_offline_record(
            caller=self.caller, licence=licence, **data.validated_data
        )
        return Response(s.PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class PaymentViewSet(ScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.PaymentSerializer
    filterset_fields = ["status", "method", "licence"]

    def base_queryset(self):
        return Payment.objects.order_by("-created_at")

    @extend_schema(request=s.RefundCreateSerializer, responses={201: s.PaymentSerializer})
    @action(detail=True, methods=["post"])
    def refunds(self, request, pk=None):
        payment = self.get_object()
        data = s.RefundCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        licences.payment_refund(caller=self.caller, payment=payment, **data.validated_data)
        payment.refresh_from_db()
        return Response(s.PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class LicenceCertificateView(APIView):
    """The signed certificate of one of your licences, as JSON."""

    @extend_schema(responses=s.CertificateDocumentSerializer)
    def get(self, request, pk: int):
        caller = caller_from_request(request)
        certificate = get_scoped_or_404(
            Certificate.objects.select_related("licence"), caller, licence__pk=pk
        )
        return Response(certificate_document(certificate))


class CertificateVerifyThrottle(AnonRateThrottle):
    rate = "120/minute"


class CertificateVerifyView(APIView):
    """Public: is this certificate genuine and in force? Post the certificate JSON as it was
    downloaded."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [CertificateVerifyThrottle]

    @extend_schema(
        request=s.CertificateDocumentSerializer, responses=s.CertificateVerdictSerializer
    )
    def post(self, request):
        return Response(certificate_verify(document=request.data))


class PublicKeyView(APIView):
    """Public: the Ed25519 key that signs licence certificates."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(responses=s.PublicKeySerializer)
    def get(self, request):
        return Response(signing.public_key_document())
