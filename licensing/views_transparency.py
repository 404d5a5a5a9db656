"""Public transparency pages (no login): the society's statistics, the robots.txt
snippet generator for members' sites, and the RSL licence at the site's root.

Thin: parse, call one selector or service, render. Nothing is cached; every figure and
document is read from the database for the request.
"""

from __future__ import annotations

import json

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from config.errors import DomainError
from licensing import selectors_permissions
from licensing.services import permissions
from licensing.templatetags.money import ZERO_DECIMAL, money_text


class RobotsSnippetForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        help_text="Your site's domain name, e.g. example.com.",
        widget=forms.TextInput(attrs={"placeholder": "example.com", "autocomplete": "off"}),
    )


def _major(amount_minor: int, currency: str) -> float:
    return amount_minor if currency in ZERO_DECIMAL else amount_minor / 100


@require_GET
def transparency(request):
    stats = selectors_permissions.public_stats()
    chart = {
        "works": {
            "labels": ["Licensed for AI training", "Reserved"],
            "values": [stats["works_licensed"], stats["works_reserved"]],
        },
        "money": {
            "labels": [m["currency"] for m in stats["money"]],
            # Major units for the chart's axis only; the page's figures are exact text.
            "collected": [_major(m["collected_minor"], m["currency"]) for m in stats["money"]],
            "paid_out": [_major(m["paid_out_minor"], m["currency"]) for m in stats["money"]],
        },
    }
    money = [
        {
            **m,
            "collected_text": money_text(m["collected_minor"], m["currency"]),
            "paid_out_text": money_text(m["paid_out_minor"], m["currency"]),
        }
        for m in stats["money"]
    ]
    response = render(
        request,
        "licensing/transparency/stats.html",
        {"stats": stats, "money": money, "chart": chart},
    )
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def robots_snippet(request):
    """Type a domain, get the robots.txt lines and the TDMRep rules for it."""
    form = RobotsSnippetForm(request.GET or None)
    context: dict = {"form": form, "rsl_url": permissions.rsl_licence_url()}
    status = 200
    if request.GET and form.is_valid():
        try:
            domain = permissions.permissions_domain_clean(form.cleaned_data["domain"])
        except DomainError as exc:
            form.add_error("domain", exc.message)
            status = 400
        else:
            context["domain"] = domain
            context["snippet"] = permissions.robots_snippet(domain=domain)
            context["tdmrep"] = json.dumps(permissions.tdmrep_rules(domain=domain), indent=2)
    elif request.GET:
        status = 400
    response = render(request, "licensing/transparency/robots.html", context, status=status)
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def licence_rsl(request):
    """The society's licence as RSL, where members' robots.txt `License:` lines point."""
    response = HttpResponse(
        permissions.rsl_document(), content_type="application/rsl+xml; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    return response
