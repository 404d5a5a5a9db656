"""Forms of the licence pages: amounts typed in major units, converted to integer minor units
with Decimal (never a float)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from licensing.models import DeclarationPeriod, LicenceProduct


def _minor(value: Decimal) -> int:
    minor = value * 100
    if minor != minor.to_integral_value():
        raise forms.ValidationError("At most two decimals.")
    return int(minor)


class MoneyField(forms.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_digits", 17)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def clean(self, value):
        cleaned = super().clean(value)
        return None if cleaned is None else _minor(cleaned)


class QuoteForm(forms.Form):
    product = forms.ModelChoiceField(
        queryset=LicenceProduct.objects.filter(active=True),
        to_field_name="code",
        empty_label=None,
    )
    annual_revenue = MoneyField(label="Annual revenue", help_text="Your company's, per year.")
    training_volume = forms.IntegerField(
        min_value=0, label="Training volume", help_text="Works or items you plan to train on."
    )
    ai_revenue = MoneyField(
        label="AI revenue", required=False, help_text="Revenue from AI products over the term."
    )


class OfflinePaymentForm(forms.Form):
    amount = MoneyField(label="Amount received")
    reference = forms.CharField(max_length=200, label="Bank reference")


class ProductForm(forms.Form):
    code = forms.SlugField(max_length=60)
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    uses = forms.MultipleChoiceField(
        choices=[
            ("training", "Training"),
            ("fine_tuning", "Fine-tuning"),
            ("rag", "Retrieval (RAG)"),
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    territory = forms.CharField(max_length=200, initial="WORLD")
    term_months = forms.IntegerField(min_value=1, max_value=120, initial=12)
    declaration_period = forms.ChoiceField(
        choices=DeclarationPeriod.choices,
        initial=DeclarationPeriod.QUARTER,
        required=False,
        help_text="How often licensees declare what they trained on (default quarterly).",
    )

    def clean_declaration_period(self) -> str:
        return self.cleaned_data.get("declaration_period") or DeclarationPeriod.QUARTER

    currency = forms.RegexField(r"^[A-Za-z]{3}$", initial="EUR")
    minimum_fee = MoneyField(initial=Decimal(0))
    ai_revenue_share_bp = forms.IntegerField(
        min_value=0,
        max_value=10_000,
        required=False,
        label="AI revenue share (basis points)",
        help_text="250 = 2.5 % of the licensee's AI revenue; empty for none.",
    )
    tiers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="One tier per line: name | price | revenue from | revenue to "
        "(amounts in major units; an empty 'to' is open-ended).",
    )

    def clean_tiers(self) -> list[dict]:
        tiers = []
        for number, line in enumerate(self.cleaned_data["tiers"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("|")] + ["", "", ""]
            try:
                tier = {
                    "name": parts[0],
                    "price_minor": _minor(Decimal(parts[1])),
                    "revenue_from_minor": _minor(Decimal(parts[2] or "0")),
                    "revenue_to_minor": _minor(Decimal(parts[3])) if parts[3] else None,
                }
            except (ArithmeticError, ValueError, forms.ValidationError) as exc:
                raise forms.ValidationError(
                    f"Line {number}: {line!r} is not name | price | from | to."
                ) from exc
            tiers.append(tier)
        return tiers


class RefundForm(forms.Form):
    amount = MoneyField(label="Refund amount", min_value=Decimal("0.01"))
