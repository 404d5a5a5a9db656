"""Shapes of the public permission endpoints, for the OpenAPI schema (the views build the
bodies in the services; these document them)."""

from __future__ import annotations

from rest_framework import serializers

USE_HELP = "training (default), fine_tuning or rag"


class PermissionLookupRequestSerializer(serializers.Serializer):
    urls = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="URLs (http/https), normalised before the look-up.",
    )
    domains = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Domain names, e.g. example.com (a URL's host is taken).",
    )
    use = serializers.CharField(required=False, help_text=USE_HELP)


class PermissionLookupItemSerializer(serializers.Serializer):
    query = serializers.CharField(help_text="As given.")
    type = serializers.CharField(help_text="url or domain")
    normalised = serializers.CharField()
    status = serializers.CharField(
        help_text="licensable, reserved or unknown. A reservation always wins; a domain is "
        "reserved only when reserved as a whole (its counts say what is reserved inside)."
    )
    reason = serializers.CharField(help_text="Why, in one sentence.")
    holder = serializers.CharField(
        allow_null=True,
        help_text="Registry code of the rights holder behind the answer (null when none, "
        "several, or a non-member who reserved by email).",
    )
    holders = serializers.ListField(child=serializers.CharField(), help_text="Every code involved.")
    registered = serializers.BooleanField(
        required=False, help_text="URLs: a work in the repertoire carries this URL."
    )
    works_licensed = serializers.IntegerField(required=False, help_text="Domains only.")
    works_reserved = serializers.IntegerField(required=False, help_text="Domains only.")
    url_prefixes_reserved = serializers.IntegerField(required=False, help_text="Domains only.")


class PermissionLookupResultSerializer(serializers.Serializer):
    use = serializers.CharField()
    consent_regime = serializers.CharField(help_text="opt_in or opt_out")
    results = PermissionLookupItemSerializer(many=True)


# The TDMRep members' names have hyphens, which Python attribute names cannot.
TdmrepRuleSerializer = type(
    "TdmrepRuleSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "One rule of a TDMRep `tdmrep.json` array.",
        "location": serializers.CharField(
            help_text="Path pattern on the domain (robots.txt-style, `*` wildcard)."
        ),
        "tdm-reservation": serializers.IntegerField(
            help_text="1: TDM rights reserved; 0: not reserved."
        ),
        "tdm-policy": serializers.URLField(
            required=False,
            help_text="The society's RSL licence: present when a licence is on offer.",
        ),
    },
)


class MoneyFigureSerializer(serializers.Serializer):
    currency = serializers.CharField()
    collected_minor = serializers.IntegerField(
        help_text="Licence money collected (ledger: payments to deferred revenue, less refunds)."
    )
    paid_out_minor = serializers.IntegerField(
        help_text="Royalties paid out (payouts paid or reversed, net of the reversals)."
    )


class PublicStatsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    consent_regime = serializers.CharField()
    works = serializers.IntegerField()
    works_reserved = serializers.IntegerField(help_text="Works reserved from AI training.")
    works_licensed = serializers.IntegerField(help_text="Works licensed for AI training.")
    reserved_share_bp = serializers.IntegerField(
        help_text="works_reserved / works in basis points (rounded down)."
    )
    reserved_share_percent = serializers.CharField(help_text="The same, as a percentage text.")
    reservations = serializers.IntegerField(help_text="Registered reservations in force.")
    catalogues = serializers.IntegerField()
    rights_holders = serializers.IntegerField()
    licensees = serializers.IntegerField()
    licensees_licensed = serializers.IntegerField(help_text="Licensees with an active licence.")
    products = serializers.IntegerField(help_text="Licence products on offer.")
    money = MoneyFigureSerializer(many=True)
