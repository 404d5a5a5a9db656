"""Serializers of cycles, policies and statements (read shapes; writes go through services)."""

from __future__ import annotations

from rest_framework import serializers

from royalties.models import (
    Allocation,
    Cycle,
    DistributionPolicy,
    Statement,
    StatementSourceLine,
    StatementWorkLine,
    SuspenseItem,
)


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = DistributionPolicy
        exclude = ["created_by"]
        read_only_fields = ["version", "created_at"]


class AllocationSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = Allocation
        fields = [
            "id",
            "number",
            "policy",
            "checksum",
            "totals",
            "timings",
            "releases",
            "created_by",
            "created_at",
        ]


class CycleSerializer(serializers.ModelSerializer):
    allocated_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    current_allocation = AllocationSerializer(read_only=True)
    policy_version = serializers.IntegerField(source="policy.version", read_only=True)

    class Meta:
        model = Cycle
        fields = [
            "id",
            "period",
            "period_start",
            "period_end",
            "currency",
            "status",
            "stage",
            "percent",
            "message",
            "policy_version",
            "current_allocation",
            "allocated_by",
            "allocated_at",
            "approved_by",
            "approved_at",
            "created_at",
        ]
        read_only_fields = fields


class CycleCreateSerializer(serializers.Serializer):
    period = serializers.CharField(help_text="A calendar quarter, e.g. 2026-Q3.")
    currency = serializers.CharField(default="EUR", max_length=3)


class StatementWorkLineSerializer(serializers.ModelSerializer):
    title = serializers.CharField(source="work.title", default="", read_only=True)

    class Meta:
        model = StatementWorkLine
        fields = ["work", "title", "quantity", "amount_minor"]


class StatementSourceLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = StatementSourceLine
        fields = ["licence", "product_code", "release_ref", "amount_minor"]


class StatementSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="cycle.period", read_only=True)
    holder_code = serializers.CharField(source="holder.code", read_only=True)

    class Meta:
        model = Statement
        fields = [
            "id",
            "period",
            "cycle",
            "holder",
            "holder_code",
            "currency",
            "brought_forward_minor",
            "gross_minor",
            "deductions_minor",
            "earned_minor",
            "total_minor",
            "payable_minor",
            "carried_forward_minor",
            "published_at",
        ]
        read_only_fields = fields


class StatementDetailSerializer(StatementSerializer):
    sources = StatementSourceLineSerializer(source="source_lines", many=True, read_only=True)

    class Meta(StatementSerializer.Meta):
        fields = [*StatementSerializer.Meta.fields, "sources"]
        read_only_fields = fields


class SuspenseItemSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="cycle.period", read_only=True)
    released = serializers.SerializerMethodField()

    class Meta:
        model = SuspenseItem
        fields = ["id", "period", "cycle", "currency", "reason", "ref", "amount_minor", "released"]
        read_only_fields = fields

    def get_released(self, item) -> str | None:
        release = getattr(item, "release", None)
        return release.kind if release is not None else None


class SuspenseReleaseSerializer(serializers.Serializer):
    work = serializers.IntegerField(help_text="The work whose holders receive the money.")
    reason = serializers.CharField(max_length=300)
