"""Serializers of products, quotes, licences, payments and certificates (shapes only)."""

from __future__ import annotations

from rest_framework import serializers

from licensing.models import (
    DeclarationPeriod,
    Licence,
    LicenceProduct,
    MediaType,
    Payment,
    Quote,
    TariffTier,
    Use,
)


class TariffTierSerializer(serializers.ModelSerializer):
    class Meta:
        model = TariffTier
        fields = [
            "name",
            "price_minor",
            "revenue_from_minor",
            "revenue_to_minor",
            "volume_from",
            "volume_to",
        ]


class ProductSerializer(serializers.ModelSerializer):
    tiers = TariffTierSerializer(many=True, read_only=True)

    class Meta:
        model = LicenceProduct
        fields = [
            "id",
            "code",
            "name",
            "description",
            "uses",
            "media_types",
            "territory",
            "term_months",
            "declaration_period",
            "currency",
            "minimum_fee_minor",
            "ai_revenue_share_bp",
            "active",
            "tiers",
            "created_at",
        ]
        read_only_fields = fields


class ProductWriteSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=60)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    uses = serializers.ListField(child=serializers.ChoiceField(choices=Use.choices), required=False)
    media_types = serializers.ListField(
        child=serializers.ChoiceField(choices=MediaType.choices), required=False
    )
    territory = serializers.CharField(max_length=200, required=False)
    term_months = serializers.IntegerField(min_value=1, max_value=120, required=False)
    declaration_period = serializers.ChoiceField(choices=DeclarationPeriod.choices, required=False)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)
    minimum_fee_minor = serializers.IntegerField(min_value=0, required=False)
    ai_revenue_share_bp = serializers.IntegerField(
        min_value=0, max_value=10_000, required=False, allow_null=True
    )
    active = serializers.BooleanField(required=False)
    tiers = TariffTierSerializer(many=True, required=False)


class ProductUpdateSerializer(ProductWriteSerializer):
    code = None  # the code is the product's stable key
    name = serializers.CharField(max_length=200, required=False)


class BreakdownItemSerializer(serializers.Serializer):
    item = serializers.CharField()
    amount_minor = serializers.IntegerField()


class QuoteSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="code", read_only=True)
    licensee = serializers.CharField(source="licensee.code", read_only=True)
    breakdown = BreakdownItemSerializer(many=True, read_only=True)

    class Meta:
        model = Quote
        fields = [
            "id",
            "licensee",
            "product",
            "annual_revenue_minor",
            "training_volume",
            "ai_revenue_minor",
            "amount_minor",
            "currency",
            "tier",
            "breakdown",
            "valid_until",
            "created_at",
        ]
        read_only_fields = fields


class QuoteCreateSerializer(serializers.Serializer):
    product = serializers.SlugField(help_text="The product's code.")
    annual_revenue_minor = serializers.IntegerField(min_value=0)
    training_volume = serializers.IntegerField(min_value=0)
    ai_revenue_minor = serializers.IntegerField(min_value=0, default=0)


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id",
            "licence",
            "method",
            "status",
            "amount_minor",
            "fee_minor",
            "refunded_minor",
            "currency",
            "checkout_url",
            "invoice_url",
            "reference",
            "failure_message",
            "created_at",
            "paid_at",
        ]
        read_only_fields = fields


class LicenceSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="code", read_only=True)
    licensee = serializers.CharField(source="licensee.code", read_only=True)
    certificate_serial = serializers.SerializerMethodField()

    class Meta:
        model = Licence
        fields = [
            "id",
            "licensee",
            "product",
            "quote",
            "status",
            "payment_method",
            "amount_minor",
            "currency",
            "uses",
            "media_types",
            "territory",
            "starts_on",
            "ends_on",
            "created_at",
            "activated_at",
            "cancelled_at",
            "certificate_serial",
        ]
        read_only_fields = fields

    def get_certificate_serial(self, licence: Licence) -> str | None:
        certificate = getattr(licence, "certificate", None)
        return certificate.serial if certificate is not None else None


class LicenceCreateSerializer(serializers.Serializer):
    quote = serializers.IntegerField()


class CheckoutSerializer(serializers.Serializer):
    payment = PaymentSerializer()
    checkout_url = serializers.URLField()


class OfflinePaymentSerializer(serializers.Serializer):
    amount_minor = serializers.IntegerField(min_value=1)
    reference = serializers.CharField(max_length=200)


class RefundCreateSerializer(serializers.Serializer):
    amount_minor = serializers.IntegerField(min_value=1)


class CertificateDocumentSerializer(serializers.Serializer):
    certificate = serializers.DictField(help_text="The signed payload.")
    signature = serializers.CharField(help_text="base64url Ed25519 signature")
    key_id = serializers.CharField()
    algorithm = serializers.CharField()


class CertificateVerdictSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["valid", "invalid", "expired", "revoked"])
    reason = serializers.CharField()
    serial = serializers.CharField(allow_null=True)


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    key_id = serializers.CharField()
    public_key = serializers.CharField()
    public_key_pem = serializers.CharField()
    encoding = serializers.CharField()
