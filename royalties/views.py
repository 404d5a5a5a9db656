"""Payout cycle pages (society staff) and statement pages (rights holders). Thin: scope, call
one service or selector, render.

Cycles are the society's own business: for anyone not on the staff every cycle page is a 404,
as in the API (ids cannot be probed). A holder's statement of another organisation is a 404 too.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.scoping import Caller, caller_from_request, get_scoped_or_404
from config.errors import DomainError
from royalties.models import Cycle, CycleStatus
from royalties.selectors import review, statements
from royalties.services import cycles, statement_exports

PER_PAGE = 50


def _staff(request) -> Caller:
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise Http404
    return caller


def _cycle(request, pk: int) -> Cycle:
    return get_scoped_or_404(review.cycle_list(), _staff(request), pk=pk)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@login_required
def cycle_list(request):
    """Staff: the cycles, newest first; open a cycle for a period."""
    caller = _staff(request)
    status = 200
    if request.method == "POST":
        try:
            cycle = cycles.cycle_create(
                caller=caller,
                period=request.POST.get("period", "").strip(),
                currency=request.POST.get("currency", "").strip() or "EUR",
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            status = 400
        else:
            messages.success(request, f"Cycle {cycle.period} {cycle.currency} opened.")
            return redirect("cycle_detail", pk=cycle.pk)
    page = Paginator(review.cycle_list(), PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "default_period": cycles.cycle_default_period(),
        "can_open": caller.in_staff_group("operator", "approver"),
        "period": request.POST.get("period", ""),
    }
    return render(request, "royalties/cycles/list.html", context, status=status)


def _status_context(request, cycle: Cycle) -> dict:
    caller = caller_from_request(request)
    allocation = cycle.current_allocation
    return {
        "cycle": cycle,
        "running": cycle.is_running,
        "identity": review.allocation_identity(allocation=allocation) if allocation else None,
        "can_allocate": caller.in_staff_group("operator", "approver")
        and cycle.status in cycles.ALLOCATABLE,
        "can_approve": caller.in_staff_group("approver") and cycle.status == CycleStatus.ALLOCATED,
    }


@login_required
def cycle_detail(request, pk: int):
    cycle = _cycle(request, pk)
    context = {
        **_status_context(request, cycle),
        "allocations": review.cycle_allocations(cycle=cycle)[:PER_PAGE],
    }
    return render(request, "royalties/cycles/detail.html", context)


@login_required
def cycle_progress(request, pk: int):
    """The partial htmx polls every second while the cycle is allocating."""
    cycle = _cycle(request, pk)
    return render(request, "royalties/cycles/_status.html", _status_context(request, cycle))


@login_required
@require_POST
def cycle_allocate(request, pk: int):
    cycle = _cycle(request, pk)
    try:
        cycles.cycle_allocate(caller=caller_from_request(request), cycle=cycle)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Allocation of {cycle.period} queued.")
    return redirect("cycle_detail", pk=cycle.pk)


@login_required
@require_POST
def cycle_approve(request, pk: int):
    cycle = _cycle(request, pk)
    try:
        cycles.cycle_approve(caller=caller_from_request(request), cycle=cycle)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cycle {cycle.period} approved; statements are published.")
    return redirect("cycle_detail", pk=cycle.pk)


@login_required
def cycle_review(request, pk: int):
    """Staff: everything to check before approving the cycle's current allocation."""
    cycle = _cycle(request, pk)
    allocation = cycle.current_allocation
    numbers = list(cycle.allocations.order_by("number").values_list("number", flat=True))
    first = _int(request.GET.get("a")) or (numbers[-2] if len(numbers) > 1 else None)
    second = _int(request.GET.get("b")) or (numbers[-1] if numbers else None)
    diff = None
    if first and second:
        diff = review.allocation_diff(cycle=cycle, first=first, second=second)
    context = {
        **_status_context(request, cycle),
        "allocation": allocation,
        "products": review.allocation_products(allocation=allocation) if allocation else [],
        "suspense": review.allocation_suspense_by_reason(allocation=allocation)
        if allocation
        else [],
        "ageing": review.suspense_ageing(cycle=cycle),
        "changes": review.cycle_holder_changes(cycle=cycle),
        "numbers": numbers,
        "first": first,
        "second": second,
        "diff": diff,
        "limit": review.LIMIT,
    }
    return render(request, "royalties/cycles/review.html", context)


@login_required
def statement_list(request):
    """A rights holder's published statements (staff: every current statement)."""
    caller = caller_from_request(request)
    rows = statements.holder_statement_list(caller=caller)
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "royalties/statements/list.html", {"page": page})


@login_required
def statement_detail(request, pk: int):
    caller = caller_from_request(request)
    statement = statements.holder_statement_get(caller=caller, pk=pk)
    totals = statements.statement_work_totals(statement=statement)
    works = Paginator(statements.statement_work_lines(statement=statement), PER_PAGE)
    works.count = totals["works"]  # counted with the sum: the paginator need not count again
    page = works.get_page(request.GET.get("page"))
    # The chart's top works are the first lines of page 1 (same order), when it is shown.
    head = list(page)[: statements.TOP_WORKS] if page.number == 1 else None
    context = {
        "statement": statement,
        "sources": statements.statement_sources(statement=statement),
        "works": page,
        "charts": statements.statement_chart_data(
            caller=caller, statement=statement, head=head, totals=totals
        ),
    }
    return render(request, "royalties/statements/detail.html", context)


@login_required
def statement_csv(request, pk: int):
    statement = statements.holder_statement_get(caller=caller_from_request(request), pk=pk)
    response = StreamingHttpResponse(
        statement_exports.statement_csv_chunks(statement=statement),
        content_type="text/csv; charset=utf-8",
    )
    name = statement_exports.statement_filename(statement, "csv")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
def statement_pdf(request, pk: int):
    statement = statements.holder_statement_get(caller=caller_from_request(request), pk=pk)
    response = HttpResponse(
        statement_exports.statement_pdf(statement=statement), content_type="application/pdf"
    )
    name = statement_exports.statement_filename(statement, "pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
