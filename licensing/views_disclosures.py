"""Disclosure pages for rights holders: their works (who declared them, what they earned,
with charts), a work's drill-down, the CSV export and the digest setting. Thin: the holder is
the caller's organisation (staff: ``?holder=<code>``); a work it holds no share in is a 404."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.scoping import caller_from_request
from config.errors import DomainError
from licensing.selectors_disclosures import (
    disclosure_holder,
    disclosure_overview_charts,
    disclosure_work_charts,
    disclosure_work_earnings,
    disclosure_work_get,
    disclosure_work_list,
    disclosure_work_totals,
    disclosure_work_usage,
)
from licensing.services import disclosures


class DigestSettingsForm(forms.Form):
    digest_on_cycle = forms.BooleanField(
        required=False, label="Email me a disclosure digest when a payout cycle is approved"
    )


def _holder(request):
    caller = caller_from_request(request)
    return caller, disclosure_holder(caller=caller, holder_code=request.GET.get("holder", ""))


@login_required
def disclosure_list(request):
    caller, holder = _holder(request)
    q = request.GET.get("q", "")
    page = Paginator(disclosure_work_list(holder=holder, q=q), 50).get_page(request.GET.get("page"))
    totals = disclosure_work_totals(holder=holder, work_ids=[w.pk for w in page])
    preference = holder and disclosures.disclosure_preference_get(organisation=holder)
    context = {
        "holder": holder,
        "page": page,
        "rows": [{"work": work, **totals[work.pk]} for work in page],
        "q": q,
        # Staff naming no holder see every work; the charts are per holder.
        "charts": disclosure_overview_charts(holder=holder) if holder else None,
        "settings_form": DigestSettingsForm(
            initial={"digest_on_cycle": bool(preference and preference.digest_on_cycle)}
        ),
        "preference": preference,
        "can_write": bool(holder) and caller.can_write and holder == caller.organisation,
    }
    return render(request, "licensing/disclosures/list.html", context)


@login_required
def disclosure_work(request, work_id: int):
    _, holder = _holder(request)
    work = disclosure_work_get(holder=holder, work_id=work_id)
    usage = disclosure_work_usage(work=work)
    earnings = disclosure_work_earnings(holder=holder, work=work)
    context = {
        "holder": holder,
        "work": work,
        "totals": disclosure_work_totals(holder=holder, work_ids=[work.pk])[work.pk],
        "usage": usage,
        "earnings": earnings,
        "charts": disclosure_work_charts(usage=usage, earnings=earnings),
    }
    return render(request, "licensing/disclosures/work.html", context)


@login_required
def disclosure_csv(request):
    _, holder = _holder(request)
    response = StreamingHttpResponse(
        disclosures.disclosure_csv_chunks(holder=holder), content_type="text/csv; charset=utf-8"
    )
    code = "".join(
        ch if ch.isalnum() or ch in "-_" else "-" for ch in (holder.code if holder else "all")
    )
    response["Content-Disposition"] = f'attachment; filename="disclosures-{code}.csv"'
    return response


@login_required
@require_POST
def disclosure_settings(request):
    caller = caller_from_request(request)
    form = DigestSettingsForm(request.POST)
    if form.is_valid():
        try:
            preference = disclosures.disclosure_preference_set(
                caller=caller, digest_on_cycle=form.cleaned_data["digest_on_cycle"]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                "You will receive a digest after each approved cycle."
                if preference.digest_on_cycle
                else "Disclosure digests are off.",
            )
    return redirect("disclosures")
