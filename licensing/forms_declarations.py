"""Forms of the usage declaration pages."""

from __future__ import annotations

from django import forms

from licensing.matching import SCHEMES, UNITS


class DeclarationUploadForm(forms.Form):
    period = forms.CharField(max_length=10, help_text="A quarter (2026-Q3) or a month (2026-07).")
    model_name = forms.CharField(max_length=200, label="Model")
    model_version = forms.CharField(max_length=100, label="Version")
    unit = forms.ChoiceField(
        choices=[("", "As in the file (default: tokens)"), *[(u, u) for u in UNITS]],
        required=False,
    )
    nil = forms.BooleanField(required=False, label="Nothing was used in this period")
    file = forms.FileField(
        required=False,
        help_text="CSV with a header row: scheme, identifier, quantity (optional unit, "
        "title); may be gzip-compressed.",
    )

    def clean(self):
        data = super().clean()
        if data.get("nil") and data.get("file"):
            self.add_error("file", "A nil declaration has no file.")
        elif not data.get("nil") and not data.get("file"):
            self.add_error("file", "Choose the declaration file, or tick 'nothing was used'.")
        return data


class UnmatchedSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Identifier or title")
    scheme = forms.ChoiceField(
        choices=[("", "Any scheme"), *[(s, s) for s in SCHEMES]], required=False
    )


class UnmatchedMatchForm(forms.Form):
    scheme = forms.ChoiceField(choices=[(s, s) for s in SCHEMES if s != "work_id"])
    identifier = forms.CharField(max_length=2000)
    work_id = forms.IntegerField(min_value=1, label="Work id")
