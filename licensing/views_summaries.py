"""Training-content summary pages (EU AI Act Art. 53(1)(d)). Thin: scope, call, render.

Licensees list their summaries and generate one, edit a draft's text beside a preview, and
publish it. The public page of a published summary (and its JSON) needs no login; a draft is
shown there only to its licensee (and staff), as a preview; anyone else gets 404.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.scoping import caller_from_request, get_scoped_or_404
from config.errors import DomainError
from licensing.models import TrainingSummary, TrainingSummaryStatus
from licensing.selectors_summaries import (
    training_summary_document,
    training_summary_list,
    training_summary_models,
    training_summary_visible,
)
from licensing.services import summaries


class SummaryGenerateForm(forms.Form):
    model = forms.ChoiceField(
        label="Model", help_text="Models with accepted usage declarations (name and version)."
    )

    def __init__(self, *args, models: list[dict], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [
            (
                json.dumps([m["model_name"], m["model_version"]]),
                f"{m['model_name']} {m['model_version']} ({m['declarations']} accepted)",
            )
            for m in models
        ]


class SummaryEditForm(forms.Form):
    """Shape only: the service checks the values and reports problems per field."""

    contact = forms.CharField(
        required=False, help_text="Contact point for rights holders: an email or https URL."
    )
    placed_on_market = forms.CharField(
        required=False,
        label="Placed on the EU market",
        help_text="YYYY-MM-DD",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    model_description = forms.CharField(
        required=False,
        label="General information: model description",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    other_sources = forms.CharField(
        required=False,
        label="Other data sources",
        help_text="Publicly available datasets, data crawled from the internet (main domains), "
        "user data, synthetic data, other licensed data.",
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    processing_narrative = forms.CharField(
        required=False,
        label="Data processing",
        help_text="How opt-outs (robots.txt, TDMRep, registries) were respected, how unlawful "
        "content was removed.",
        widget=forms.Textarea(attrs={"rows": 6}),
    )


def _form_error(form, exc: DomainError) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    for field, problems in details.items():
        if field in form.fields and isinstance(problems, list):
            for problem in problems:
                form.add_error(field, str(problem))
    form.add_error(None, exc.message)


@login_required
def summary_list(request):
    caller = caller_from_request(request)
    organisation = caller.organisation
    models = training_summary_models(licensee=organisation) if organisation else []
    form = SummaryGenerateForm(request.POST or None, models=models)
    if request.method == "POST" and form.is_valid():
        name, version = json.loads(form.cleaned_data["model"])
        try:
            summary = summaries.training_summary_generate(
                caller=caller, model_name=name, model_version=version
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Draft v{summary.version} generated.")
            return redirect("training_summary_edit", pk=summary.pk)
    context = {
        "form": form,
        "summaries": Paginator(training_summary_list(caller=caller), 50).get_page(
            request.GET.get("page")
        ),
        "can_generate": caller.can_write and bool(models),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "licensing/summaries/list.html", context, status=status)


@login_required
def summary_edit(request, pk: int):
    caller = caller_from_request(request)
    summary = get_scoped_or_404(TrainingSummary.objects.select_related("licensee"), caller, pk=pk)
    initial = {
        "contact": summary.contact,
        "placed_on_market": (
            summary.placed_on_market.isoformat() if summary.placed_on_market else ""
        ),
        "model_description": summary.model_description,
        "other_sources": summary.other_sources,
        "processing_narrative": summary.processing_narrative,
    }
    form = SummaryEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if request.POST.get("action") == "regenerate":
                summary = summaries.training_summary_generate(
                    caller=caller,
                    model_name=summary.model_name,
                    model_version=summary.model_version,
                )
                messages.success(request, "Figures regenerated from the accepted declarations.")
            else:
                summary = summaries.training_summary_update(
                    caller=caller, summary=summary, data=dict(form.cleaned_data)
                )
                messages.success(request, "Draft saved.")
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return redirect("training_summary_edit", pk=summary.pk)
    context = {
        "summary": summary,
        "form": form,
        "doc": training_summary_document(summary),
        "can_write": caller.can_write,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "licensing/summaries/edit.html", context, status=status)


@login_required
@require_POST
def summary_publish(request, pk: int):
    caller = caller_from_request(request)
    summary = get_scoped_or_404(TrainingSummary.objects.all(), caller, pk=pk)
    try:
        summary = summaries.training_summary_publish(caller=caller, summary=summary)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("training_summary_edit", pk=summary.pk)
    messages.success(request, f"Version {summary.version} published.")
    return redirect("training_summary_public", pk=summary.pk)


def _visible_summary(request, pk: int) -> TrainingSummary:
    caller = caller_from_request(request) if request.user.is_authenticated else None
    summary = training_summary_visible(caller=caller).filter(pk=pk).first()
    if summary is None:
        raise Http404
    return summary


def summary_public(request, pk: int):
    """The public summary (a draft only for its licensee, as a preview)."""
    summary = _visible_summary(request, pk)
    newer = (
        TrainingSummary.objects.filter(
            licensee_id=summary.licensee_id,
            model_name=summary.model_name,
            model_version=summary.model_version,
            status=TrainingSummaryStatus.PUBLISHED,
            version__gt=summary.version,
        )
        .order_by("-version")
        .first()
    )
    context = {"summary": summary, "doc": training_summary_document(summary), "newer": newer}
    return render(request, "licensing/summaries/public.html", context)


def summary_json(request, pk: int):
    summary = _visible_summary(request, pk)
    response = JsonResponse(training_summary_document(summary), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = (
        f'inline; filename="training-summary-{summary.pk}-v{summary.version}.json"'
    )
    return response
