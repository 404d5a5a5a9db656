"""Payout pages: a rights holder's payout account, settings and history; the staff monitor of
a cycle's payout run with its reconciliation. Thin: scope, call one service or selector, render.

A holder's page shows only the organisation it acts for; the monitor is the society's business,
so for anyone not on the staff every monitor URL is a 404 (as the cycle pages). Starting and
resuming a run are the approvers' (the services refuse anyone else), reconciling the staff's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import OrganisationKind
from accounts.scoping import Caller, caller_from_request, get_scoped_or_404
from config.errors import DomainError
from licensing.importing.report import csv_cell_defused
from licensing.templatetags.money import ZERO_DECIMAL
from royalties.models import Cycle, CycleStatus, PayoutRunStatus, PayoutStatus
from royalties.selectors import payouts as selectors
from royalties.services import cycles, payouts, reconciliation

PER_PAGE = 50


# --- helpers ----------------------------------------------------------------------------------


def _holder(request) -> Caller:
    """The caller, acting for a rights holder (anyone else has no payouts page)."""
    caller = caller_from_request(request)
    organisation = caller.organisation
    if organisation is None or organisation.kind != OrganisationKind.RIGHTS_HOLDER:
        raise Http404
    return caller


def _staff(request) -> Caller:
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise Http404
    return caller


def _cycle(request, pk: int) -> tuple[Caller, Cycle]:
    caller = _staff(request)
    return caller, get_scoped_or_404(Cycle.objects.select_related("policy"), caller, pk=pk)


def _csv_response(rows: Iterable[tuple], filename: str) -> StreamingHttpResponse:
    """Rows as a streamed CSV (UTF-8 with a BOM); every cell is formula-injection safe."""

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        buffer.write("\ufeff")
        for count, row in enumerate(rows, start=1):
            writer.writerow([csv_cell_defused(cell) for cell in row])
            if count % 2000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _minor_from_major(text: str, currency: str) -> int | None:
    """An amount typed in major units in minor units ("12.50" EUR → 1250); None when it is not
    a non-negative amount with at most the currency's decimals."""
    exponent = 0 if currency.upper() in ZERO_DECIMAL else 2
    try:
        value = Decimal(text.strip().replace(",", ""))
    except (InvalidOperation, AttributeError):
        return None
    if not value.is_finite() or value < 0:
        return None
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        return None
    return int(minor)


def _major_text(amount_minor: int, currency: str) -> str:
    if currency.upper() in ZERO_DECIMAL:
        return str(amount_minor)
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


# --- holders ----------------------------------------------------------------------------------


def _holder_context(request, caller: Caller) -> dict:
    account = selectors.payout_account_get(caller=caller)
    history = selectors.payout_list(caller=caller, own=True)
    currency = selectors.payout_threshold_currency(caller=caller)
    return {
        "account": account,
        "state": account.state if account else "not_connected",
        "can_manage": caller.can_manage,
        "currencies": settings.PAYOUT_CURRENCIES,
        "threshold": _major_text(account.threshold_minor, currency) if account else "",
        "threshold_currency": currency,
        "page": Paginator(history, PER_PAGE).get_page(request.GET.get("page")),
        "statuses": PayoutStatus,
    }


@login_required
def payouts_home(request):
    """A rights holder's payout account (its state at Stripe), settings and payout history."""
    caller = _holder(request)
    return render(request, "royalties/payouts/home.html", _holder_context(request, caller))


def _urls(request) -> dict[str, str]:
    return {
        "return_url": request.build_absolute_uri(reverse("payouts_return")),
        "refresh_url": request.build_absolute_uri(reverse("payouts_refresh")),
    }


def _to_onboarding(request, caller: Caller):
    try:
        url = payouts.payout_account_connect(caller=caller, **_urls(request))
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payouts")
    return redirect(url)


@login_required
@require_POST
def payouts_connect(request):
    """Connect with Stripe / continue onboarding: off to Stripe's hosted onboarding."""
    return _to_onboarding(request, _holder(request))


@login_required
def payouts_refresh(request):
    """Stripe's refresh URL (the link expired or was used): a fresh link, straight back."""
    return _to_onboarding(request, _holder(request))


@login_required
def payouts_return(request):
    """Stripe's return URL. Returning never means done: the account is re-read from Stripe."""
    caller = _holder(request)
    account = selectors.payout_account_get(caller=caller)
    if account is None:
        return redirect("payouts")
    try:
        account = payouts.payout_account_sync(stripe_account_id=account.stripe_account_id)
    except DomainError as exc:
        messages.warning(request, f"Stripe could not be reached to check the account: {exc}")
        return redirect("payouts")
    if account.can_receive:
        messages.success(request, "Your payout account is active: payouts can reach it.")
    else:
        messages.warning(request, account.why_not)
    return redirect("payouts")


@login_required
@require_POST
def payouts_settings(request):
    """The personal threshold (typed in major units of the holder's statement currency) and the
    payout currency."""
    caller = _holder(request)
    account = selectors.payout_account_get(caller=caller)
    currency = request.POST.get("payout_currency", "").strip().upper()
    text = request.POST.get("threshold", "")
    threshold = _minor_from_major(text, selectors.payout_threshold_currency(caller=caller))
    error = None
    if account is None:
        error = "Connect a payout account first."
    elif threshold is None:
        error = "The threshold must be an amount of 0 or more, e.g. 25.00."
    else:
        try:
            payouts.payout_account_settings_update(
                caller=caller, threshold_minor=threshold, payout_currency=currency
            )
        except DomainError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            error = " ".join([exc.message, *(m for v in details.values() for m in v)])
    if error is None:
        messages.success(request, "Payout settings saved.")
        return redirect("payouts")
    messages.error(request, error)
    context = _holder_context(request, caller)
    context.update(threshold=text, payout_currency=currency)
    return render(request, "royalties/payouts/home.html", context, status=400)


@login_required
def payouts_csv(request):
    caller = _holder(request)
    rows = selectors.payout_export_rows(payouts=selectors.payout_list(caller=caller, own=True))
    return _csv_response(rows, f"payouts-{caller.organisation.code}.csv")


# --- staff: the payout run monitor ------------------------------------------------------------


def _monitor_context(caller: Caller, cycle: Cycle) -> dict:
    run = selectors.payout_run_of_cycle(cycle=cycle)
    progress = selectors.payout_run_progress(run=run) if run else None
    approver = caller.in_staff_group("approver")
    return {
        "cycle": cycle,
        "run": run,
        "progress": progress,
        "chart": selectors.payout_run_chart(progress=progress) if progress else None,
        "failures": selectors.payout_run_failures(run=run) if run else [],
        "holds": selectors.payout_run_holds(run=run) if run else [],
        "reconciliation": selectors.reconciliation_latest(cycle=cycle),
        "live": bool(run and run.status != PayoutRunStatus.DONE),
        "can_start": approver and run is None and cycle.status == CycleStatus.APPROVED,
        "can_resume": approver and run is not None and run.status == PayoutRunStatus.PAUSED,
        "can_reconcile": run is not None and caller.in_staff_group("operator", "approver"),
    }


@login_required
def payout_monitor(request, pk: int):
    """Staff: the cycle's payout run, live; failures, holds and the latest reconciliation."""
    caller, cycle = _cycle(request, pk)
    return render(request, "royalties/payouts/monitor.html", _monitor_context(caller, cycle))


@login_required
def payout_monitor_progress(request, pk: int):
    """The small JSON the monitor polls: status, percent, counts and amounts by status."""
    _, cycle = _cycle(request, pk)
    run = selectors.payout_run_of_cycle(cycle=cycle)
    if run is None:
        return JsonResponse({"run": None, "cycle_status": cycle.status})
    progress = selectors.payout_run_progress(run=run)
    cycle.refresh_from_db(fields=["status"])
    return JsonResponse({**progress, "cycle_status": cycle.status})


@login_required
@require_POST
def payout_run_start(request, pk: int):
    caller, cycle = _cycle(request, pk)
    try:
        cycles.cycle_pay(caller=caller, cycle=cycle)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payout_monitor", pk=cycle.pk)
    messages.success(request, f"Payout run for {cycle.period} started.")
    return redirect("payout_monitor", pk=cycle.pk)


@login_required
@require_POST
def payout_run_resume(request, pk: int):
    caller, cycle = _cycle(request, pk)
    run = selectors.payout_run_of_cycle(cycle=cycle)
    if run is None:
        raise Http404
    try:
        resumed = payouts.payout_run_resume(run_id=run.pk, caller=caller)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payout_monitor", pk=cycle.pk)
    if resumed:
        messages.success(request, "Payout run resumed.")
    else:
        messages.info(request, "The payout run is not paused.")
    return redirect("payout_monitor", pk=cycle.pk)


@login_required
@require_POST
def payout_reconcile(request, pk: int):
    caller, cycle = _cycle(request, pk)
    try:
        result = reconciliation.reconcile_cycle(cycle_id=cycle.pk, caller=caller)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("payout_monitor", pk=cycle.pk)
    if result.clean:
        messages.success(request, "Reconciliation clean: the ledger and Stripe agree.")
    else:
        messages.warning(request, f"Reconciliation found {len(result.mismatches)} mismatches.")
    return redirect("payout_monitor", pk=cycle.pk)


@login_required
def payout_run_csv(request, pk: int):
    caller, cycle = _cycle(request, pk)
    rows = selectors.payout_export_rows(payouts=selectors.payout_list(caller=caller, cycle=pk))
    return _csv_response(rows, f"payouts-{cycle.period}-{cycle.currency}.csv")
