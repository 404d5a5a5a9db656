"""Serializers of cycles, policies and statements (read shapes; writes go through services)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from royalties.models import (
    Allocation,
    Cycle,
    DistributionPolicy,
    Payout,
    PayoutAccount,
    PayoutReconciliation,
    PayoutRun,
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


# --- payouts ----------------------------------------------------------------------------------


class PayoutAccountSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True, help_text="onboarding | restricted | active")
    can_receive = serializers.BooleanField(read_only=True)
    why_not = serializers.CharField(
        read_only=True, help_text="Why transfers cannot reach the account now; empty when they can."
    )

    class Meta:
        model = PayoutAccount
        fields = [
            "stripe_account_id",
            "country",
            "state",
            "can_receive",
            "why_not",
            "details_submitted",
            "payouts_enabled",
            "transfers_active",
            "requirements_due",
            "disabled_reason",
            "payout_currency",
            "threshold_minor",
            "updated_at",
        ]
        read_only_fields = fields


class PayoutAccountSettingsSerializer(serializers.Serializer):
    """Fields left out keep their current value."""

    threshold_minor = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=10**12,
        help_text="Your own minimum payout in minor units; the society's minimum applies when "
        "higher.",
    )
    payout_currency = serializers.ChoiceField(
        required=False, choices=[(c, c) for c in settings.PAYOUT_CURRENCIES]
    )


class PayoutAccountConnectSerializer(serializers.Serializer):
    return_url = serializers.URLField(
        required=False,
        max_length=2000,
        help_text="Where Stripe sends the browser after onboarding (default: the Payouts page, "
        "which re-reads the account from Stripe).",
    )
    refresh_url = serializers.URLField(
        required=False,
        max_length=2000,
        help_text="Where Stripe sends the browser when the link has expired or was used "
        "(default: a page that makes a fresh link).",
    )


class PayoutAccountLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Stripe's hosted onboarding; single use, short-lived.")


class PayoutSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="cycle.period", read_only=True)
    holder_code = serializers.CharField(source="holder.code", read_only=True)

    class Meta:
        model = Payout
        fields = [
            "id",
            "cycle",
            "period",
            "run",
            "statement",
            "holder",
            "holder_code",
            "amount_minor",
            "currency",
            "status",
            "held_reason",
            "transfer_id",
            "amount_reversed_minor",
            "created_at",
            "sent_at",
            "settled_at",
        ]
        read_only_fields = fields


class PayoutProblemSerializer(PayoutSerializer):
    """A payout in a run's failures (with Stripe's last error) or holds."""

    class Meta(PayoutSerializer.Meta):
        fields = [*PayoutSerializer.Meta.fields, "attempts", "last_error"]
        read_only_fields = fields


class StatusTotalSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    amount_minor = serializers.IntegerField()


class PayoutRunCountsSerializer(serializers.Serializer):
    pending = StatusTotalSerializer()
    submitting = StatusTotalSerializer()
    sent = StatusTotalSerializer()
    paid = StatusTotalSerializer()
    held = StatusTotalSerializer()
    failed = StatusTotalSerializer()
    reversed = StatusTotalSerializer()


class PayoutRunSerializer(serializers.ModelSerializer):
    """A run and its progress: counts and amounts by payout status, and the percent of its
    payouts done for this run (settled, i.e. paid, failed or reversed, or held)."""

    period = serializers.CharField(source="cycle.period", read_only=True)
    currency = serializers.CharField(source="cycle.currency", read_only=True)
    cycle_status = serializers.CharField(source="cycle.status", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    counts = serializers.SerializerMethodField()
    total_count = serializers.SerializerMethodField()
    total_minor = serializers.SerializerMethodField()
    percent_settled = serializers.SerializerMethodField()

    class Meta:
        model = PayoutRun
        fields = [
            "id",
            "cycle",
            "period",
            "currency",
            "cycle_status",
            "status",
            "pause_reason",
            "started_by",
            "started_at",
            "paused_at",
            "finished_at",
            "counts",
            "total_count",
            "total_minor",
            "percent_settled",
        ]
        read_only_fields = fields

    def _progress(self, run) -> dict:
        from royalties.selectors.payouts import payout_run_progress

        cached = getattr(run, "_progress", None)
        if cached is None:
            cached = run._progress = payout_run_progress(run=run)
        return cached

    @extend_schema_field(PayoutRunCountsSerializer)
    def get_counts(self, run) -> dict:
        return self._progress(run)["counts"]

    def get_total_count(self, run) -> int:
        return self._progress(run)["total_count"]

    def get_total_minor(self, run) -> int:
        return self._progress(run)["total_minor"]

    def get_percent_settled(self, run) -> int:
        return self._progress(run)["percent_settled"]


class PayoutReconciliationSerializer(serializers.ModelSerializer):
    period = serializers.CharField(source="cycle.period", read_only=True)
    cycle_status = serializers.CharField(source="cycle.status", read_only=True)
    checked = serializers.DictField(
        read_only=True,
        help_text="What was compared: payouts, transfers, sent/reversed in the ledger and at "
        "Stripe (minor units), held payouts.",
    )
    mismatches = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="Every difference found: `kind` (transfer_unknown, transfer_missing, "
        "amount_differs, destination_differs, not_booked, booked_without_transfer, "
        "reversal_differs, balance_transaction_differs, unsettled, ledger_unbalanced), the "
        "payout and transfer it concerns and both sides' figures. Empty when clean.",
    )

    class Meta:
        model = PayoutReconciliation
        fields = [
            "id",
            "cycle",
            "period",
            "cycle_status",
            "ran_at",
            "clean",
            "checked",
            "mismatches",
        ]
        read_only_fields = fields
