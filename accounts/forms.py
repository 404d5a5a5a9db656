from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.password_validation import password_validators_help_texts
from django.utils.functional import lazy
from django_countries import countries

from accounts.models import OrganisationKind, Role


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True}))


class SignUpForm(forms.Form):
    full_name = forms.CharField(max_length=200, required=False, label="Your name")
    email = forms.EmailField()
    # Length, similarity, common and numeric rules: AUTH_PASSWORD_VALIDATORS, in the service.
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=lazy(lambda: " ".join(password_validators_help_texts()), str)(),
    )


class OrganisationForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(
        choices=[
            (OrganisationKind.RIGHTS_HOLDER, "Rights holder (author, publisher, label, agency…)"),
            (OrganisationKind.LICENSEE, "Licensee (AI company)"),
        ]
    )
    country = forms.ChoiceField(choices=[("", "—"), *list(countries)])
    isni = forms.CharField(label="ISNI", required=False, help_text="Rights holders, optional.")
    ipi_name_number = forms.CharField(
        label="IPI name number", required=False, help_text="Rights holders, optional."
    )
    company_number = forms.CharField(required=False, help_text="Licensees, optional.")
    contact_email = forms.EmailField(required=False)


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'ingest pipeline'.")


class TotpTokenForm(forms.Form):
    token = forms.CharField(
        label="Code from your authenticator app",
        max_length=8,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
            }
        ),
    )
