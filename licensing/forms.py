"""Forms for the repertoire pages. They parse and check shapes; the services own the rules."""

from __future__ import annotations

from django import forms

from licensing.identifiers import IdentifierError, parse_prefixed
from licensing.models import (
    Consent,
    ConsentRegime,
    IdentifierScheme,
    ImportMode,
    MediaType,
    ReservationKind,
    Use,
)
from licensing.services.registry import MAX_CHECK_PAIRS


class CatalogueForm(forms.Form):
    name = forms.CharField(max_length=200)
    media_type = forms.ChoiceField(choices=MediaType.choices)
    default_consent = forms.ChoiceField(
        choices=Consent.choices,
        initial=Consent.LICENSED,
        help_text="Applies to every work that has no consent of its own.",
    )


class CatalogueUpdateForm(forms.Form):
    name = forms.CharField(max_length=200)
    default_consent = forms.ChoiceField(
        choices=Consent.choices,
        help_text="Works without a consent of their own follow this.",
    )


class WorkFilterForm(forms.Form):
    """The works table's filter bar (GET). Every field is optional."""

    q = forms.CharField(
        required=False,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Title or work ref", "type": "search"}),
    )
    identifier = forms.CharField(
        required=False,
        label="Identifier",
        widget=forms.TextInput(attrs={"placeholder": "isbn:978-3-16-148410-0"}),
    )
    consent = forms.ChoiceField(
        required=False,
        label="Consent",
        choices=[("", "Any consent"), *Consent.choices],
    )
    use = forms.ChoiceField(required=False, label="for", choices=Use.choices)
    disputed = forms.ChoiceField(
        required=False,
        label="Status",
        choices=[("", "Any status"), ("yes", "Disputed"), ("no", "Not disputed")],
    )

    def clean_identifier(self) -> str:
        text = self.cleaned_data["identifier"].strip()
        if text:
            try:
                parse_prefixed(text)
            except IdentifierError as exc:
                raise forms.ValidationError(f"Not a valid identifier: {exc.reason}.") from None
        return text

    def selector_kwargs(self) -> dict:
        """The filters as `selectors.work_list` takes them."""
        data = self.cleaned_data
        disputed = {"yes": True, "no": False}.get(data.get("disputed") or "")
        return {
            "search": data.get("q") or None,
            "identifier": data.get("identifier") or None,
            "consent": data.get("consent") or None,
            "use": data.get("use") or Use.TRAINING,
            "disputed": disputed,
        }

    @property
    def is_filtered(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return any(data.get(name) for name in ("q", "identifier", "consent", "disputed"))


class WorkConsentForm(forms.Form):
    """One toggle: set one use of one work (or every use when `use` is empty)."""

    use = forms.ChoiceField(required=False, choices=Use.choices)
    consent = forms.ChoiceField(choices=[*Consent.choices, ("", "Catalogue default")])


class IdListField(forms.Field):
    """Row checkboxes named alike: `work=3&work=7` -> [3, 7]."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        try:
            return sorted({int(v) for v in value})
        except (TypeError, ValueError):
            raise forms.ValidationError("The selection is not valid.") from None


class BulkConsentForm(forms.Form):
    ACTIONS = {
        "license_selected": (Consent.LICENSED, "selected"),
        "reserve_selected": (Consent.RESERVED, "selected"),
        "license_filtered": (Consent.LICENSED, "filtered"),
        "reserve_filtered": (Consent.RESERVED, "filtered"),
    }

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    uses = forms.MultipleChoiceField(
        choices=Use.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    # Ids are checked against the catalogue by the query, not against a choice list.
    work = IdListField(required=False)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action and self.ACTIONS[action][1] == "selected" and not data.get("work"):
            raise forms.ValidationError("Select at least one work first.")
        return data

    @property
    def consent(self) -> str:
        return self.ACTIONS[self.cleaned_data["action"]][0]

    @property
    def target(self) -> str:
        return self.ACTIONS[self.cleaned_data["action"]][1]


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Catalogue file",
        help_text="CSV (UTF-8) or XLSX, one row per work and holder share.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv"}),
    )
    mode = forms.ChoiceField(
        choices=ImportMode.choices,
        initial=ImportMode.ALL_OR_NOTHING,
        widget=forms.RadioSelect,
        label="If some rows have errors",
    )


class ConflictResolveForm(forms.Form):
    resolution = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What was decided and why (kept in the audit log).",
    )
    reject = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Reject the claim of",
    )

    def __init__(self, *args, conflict, **kwargs):
        kwargs.setdefault("prefix", f"conflict-{conflict.pk}")
        super().__init__(*args, **kwargs)
        self.conflict = conflict
        self.fields["reject"].choices = [
            (work.pk, f"{work.catalogue.owner.code} · {work.work_ref} — {work.title}")
            for work in conflict.works.all()
        ]


class _ReservationFields(forms.Form):
    kind = forms.ChoiceField(choices=ReservationKind.choices, initial=ReservationKind.IDENTIFIER)
    scheme = forms.ChoiceField(
        required=False,
        choices=[("", "—"), *IdentifierScheme.choices],
        help_text="For an identifier only.",
    )
    value = forms.CharField(
        max_length=2000,
        label="Identifier, URL prefix or domain",
        widget=forms.TextInput(attrs={"placeholder": "978-3-16-148410-0 or example.com"}),
    )
    uses = forms.MultipleChoiceField(
        choices=Use.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means every use.",
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == ReservationKind.IDENTIFIER and not data.get("scheme"):
            self.add_error("scheme", "Say which kind of identifier it is.")
        return data


class ReservationForm(_ReservationFields):
    pass


class ReservationRequestForm(_ReservationFields):
    email = forms.EmailField(
        help_text="We send a link there; the reservation applies once you follow it."
    )
    field_order = ["email", "kind", "scheme", "value", "uses"]


class RegistryCheckForm(forms.Form):
    identifiers = forms.CharField(
        widget=forms.Textarea(
            attrs={"rows": 8, "placeholder": "isbn:978-3-16-148410-0\ndoi:10.1000/182"}
        ),
        label="Identifiers",
        help_text=f"One scheme:identifier per line, up to {MAX_CHECK_PAIRS:,}. Schemes: "
        + ", ".join(IdentifierScheme.values)
        + ".",
    )
    use = forms.ChoiceField(choices=Use.choices, initial=Use.TRAINING)

    def clean_identifiers(self) -> list[dict]:
        lines = [line.strip() for line in self.cleaned_data["identifiers"].splitlines()]
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line]
        if not numbered:
            raise forms.ValidationError("Paste at least one identifier.")
        if len(numbered) > MAX_CHECK_PAIRS:
            raise forms.ValidationError(
                f"At most {MAX_CHECK_PAIRS:,} identifiers at a time; you pasted {len(numbered):,}."
            )
        missing = [n for n, line in numbered if ":" not in line]
        if missing:
            shown = ", ".join(str(n) for n in missing[:5]) + ("…" if len(missing) > 5 else "")
            raise forms.ValidationError(
                f"Write each line as scheme:identifier (e.g. isbn:9780439023481); "
                f"line {shown} has no scheme."
            )
        pairs = []
        for _, line in numbered:
            scheme, _, identifier = line.partition(":")
            pairs.append({"scheme": scheme.strip().lower(), "identifier": identifier.strip()})
        return pairs


class SocietySettingsForm(forms.Form):
    consent_regime = forms.ChoiceField(
        choices=ConsentRegime.choices, widget=forms.RadioSelect, label="Consent regime"
    )
