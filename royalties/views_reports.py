"""Staff report pages: the dashboard, the annual transparency report (HTML, CSV, PDF) and the
regime comparison (what-if). Thin: parse, call one service or selector, render.

Like every cycle page, these are the society's own business: for anyone not on the staff they
are a 404 (anonymous visitors are sent to log in).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from accounts.scoping import Caller, caller_from_request
from licensing.models import ConsentRegime
from royalties.models import FallbackRule
from royalties.selectors import dashboard
from royalties.services import annual_report, whatif


def _staff(request) -> Caller:
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise Http404
    return caller


def _int(value, default=None):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _currency(request) -> str:
    value = (request.GET.get("currency") or "EUR").strip().upper()
    return value if len(value) == 3 and value.isalpha() else "EUR"


@login_required
def staff_dashboard(request):
    _staff(request)
    currency = _currency(request)
    cycles = dashboard.dashboard_cycles(currency=currency)
    ageing = dashboard.dashboard_suspense_ageing(currency=currency)
    rates = dashboard.dashboard_match_rates()
    works = dashboard.dashboard_top_works(currency=currency)
    deadlines = dashboard.dashboard_deadlines(currency=currency)
    context = {
        "currency": currency,
        "currencies": dashboard.dashboard_currencies(),
        "cycles": cycles,
        "ageing": ageing,
        "rates": rates,
        "works": works,
        "deadlines": deadlines,
        "summary": dashboard.dashboard_summary(currency=currency),
        "charts": dashboard.dashboard_chart_data(
            currency=currency,
            cycles=cycles,
            ageing=ageing,
            rates=rates,
            works=works,
            deadlines=deadlines,
        ),
    }
    return render(request, "royalties/reports/dashboard.html", context)


def _report(request):
    _staff(request)
    year = _int(request.GET.get("year"), timezone.localdate().year - 1)
    if not 1900 <= year <= 9999:
        raise Http404
    return annual_report.annual_report_build(year=year, currency=_currency(request))


@login_required
def annual_report_page(request):
    report = _report(request)
    context = {
        "report": report,
        "labels": annual_report.FIGURE_LABELS,
        "years": list(range(timezone.localdate().year, timezone.localdate().year - 6, -1)),
        "currencies": dashboard.dashboard_currencies(),
    }
    return render(request, "royalties/reports/annual.html", context)


@login_required
def annual_report_csv(request):
    report = _report(request)
    response = HttpResponse(
        annual_report.annual_report_csv(report), content_type="text/csv; charset=utf-8"
    )
    name = annual_report.annual_report_filename(report, "csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def annual_report_pdf(request):
    report = _report(request)
    response = HttpResponse(annual_report.annual_report_pdf(report), content_type="application/pdf")
    name = annual_report.annual_report_filename(report, "pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _scenario(request) -> whatif.Scenario:
    get = request.GET
    fee = get.get("fee_percent", "").strip()
    fee_bp = None
    if fee:
        try:
            from decimal import Decimal, InvalidOperation

            fee_bp = int((Decimal(fee) * 100).to_integral_value())
        except (InvalidOperation, ValueError):
            fee_bp = -1
    return whatif.Scenario(
        regime=get.get("regime") or None,
        admin_fee_bp=fee_bp,
        threshold_minor=_int(get.get("threshold_minor")) if get.get("threshold_minor") else None,
        fallback=get.get("fallback") or None,
        unmatched_weight_bp=_int(get.get("unmatched_weight_bp"))
        if get.get("unmatched_weight_bp")
        else None,
    )


def _whatif_cycle(request, pk: int):
    _staff(request)
    return get_object_or_404(whatif.whatif_cycles(), pk=pk)


@login_required
def whatif_page(request, pk: int | None = None):
    _staff(request)
    cycles = list(whatif.whatif_cycles()[:100])
    cycle = _whatif_cycle(request, pk) if pk else None
    comparison, status = None, 200
    if cycle is not None:
        try:
            comparison = whatif.whatif_run(cycle=cycle, scenario=_scenario(request))
        except whatif.WhatIfError as exc:
            messages.error(request, exc.message)
            status = 400
    context = {
        "cycles": cycles,
        "cycle": cycle,
        "w": comparison,
        "get": request.GET,
        "regimes": ConsentRegime.choices,
        "fallbacks": FallbackRule.choices,
        "charts": whatif.whatif_chart_data(comparison) if comparison else None,
        "query": request.GET.urlencode(),
    }
    return render(request, "royalties/reports/whatif.html", context, status=status)


@login_required
def whatif_csv(request, pk: int):
    cycle = _whatif_cycle(request, pk)
    try:
        comparison = whatif.whatif_run(cycle=cycle, scenario=_scenario(request))
    except whatif.WhatIfError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    response = HttpResponse(whatif.whatif_csv(comparison), content_type="text/csv; charset=utf-8")
    name = f"whatif-{cycle.period}-{cycle.currency}-{comparison.scenario_regime}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
