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


class UnmatchedBulkForm(forms.Form):
    """Staff: several identifiers (``scheme:identifier``) matched to one work, or dismissed."""

    operation = forms.ChoiceField(choices=[("match", "Match to a work"), ("dismiss", "Dismiss")])
    selected = forms.MultipleChoiceField(choices=[], required=True)
    work_id = forms.IntegerField(min_value=1, required=False, label="Work id")
    reason = forms.CharField(max_length=500, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The choices are whatever was ticked; each must read scheme:identifier.
        ticked = self.data.getlist("selected") if hasattr(self.data, "getlist") else []
        self.fields["selected"].choices = [(v, v) for v in ticked]

    def clean_selected(self):
        pairs = []
        for value in self.cleaned_data["selected"]:
            scheme, _, identifier = value.partition(":")
            if scheme not in SCHEMES or not identifier:
                raise forms.ValidationError(f"{value!r} is not scheme:identifier.")
            pairs.append((scheme, identifier))
        return pairs

    def clean(self):
        data = super().clean()
        if data.get("operation") == "match" and not data.get("work_id"):
            self.add_error("work_id", "Name the work to match the identifiers to.")
        return data


class UnmatchedClaimForm(forms.Form):
    """Claim an identifier for one of your works (its id), or for a new work registered here."""

    scheme = forms.ChoiceField(choices=[(s, s) for s in SCHEMES if s != "work_id"])
    identifier = forms.CharField(max_length=2000)
    work_id = forms.IntegerField(min_value=1, required=False, label="Your work's id")
    catalogue = forms.ModelChoiceField(
        queryset=None, required=False, label="Or register a new work in"
    )
    work_ref = forms.CharField(max_length=200, required=False, label="New work's reference")
    title = forms.CharField(max_length=500, required=False, label="New work's title")
    own_scheme = forms.ChoiceField(
        choices=[("", "-"), *[(s, s) for s in SCHEMES if s != "work_id"]],
        required=False,
        label="New work's own identifier: scheme",
    )
    own_identifier = forms.CharField(max_length=2000, required=False, label="and value")
    note = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, catalogues=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["catalogue"].queryset = catalogues

    def clean(self):
        data = super().clean()
        if bool(data.get("work_id")) == bool(data.get("catalogue")):
            raise forms.ValidationError("Give your work's id, or a catalogue for a new work.")
        return data

    def new_work(self) -> dict | None:
        data = self.cleaned_data
        if not data.get("catalogue"):
            return None
        own = [{"scheme": data["own_scheme"], "value": data["own_identifier"]}]
        return {
            "catalogue": data["catalogue"],
            "work_ref": data["work_ref"],
            "title": data["title"],
            "identifiers": own if data.get("own_scheme") else [],
        }


class ClaimReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")])
    reason = forms.CharField(max_length=2000, required=False, label="Reason (to reject)")
