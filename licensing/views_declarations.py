"""Usage declaration pages: a licensee files a declaration and follows it (live progress, match
report, unmatched CSV); staff work through the unmatched pool. Thin: scope, call, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render

from accounts.scoping import caller_from_request, get_scoped_or_404
from config.errors import DomainError
from licensing.forms_declarations import (
    DeclarationUploadForm,
    UnmatchedMatchForm,
    UnmatchedSearchForm,
)
from licensing.models import (
    DeclarationStatus,
    DeclarationUnmatched,
    Licence,
    UsageDeclaration,
    Work,
)
from licensing.selectors_declarations import declaration_match_report
from licensing.services import declarations


def _form_error(form, exc: DomainError) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    for field, problems in details.items():
        if field in form.fields and isinstance(problems, list):
            for problem in problems:
                form.add_error(field, str(problem))
    form.add_error(None, exc.message)


@login_required
def licence_declarations(request, licence_id: int):
    caller = caller_from_request(request)
    licence = get_scoped_or_404(
        Licence.objects.select_related("licensee", "product"), caller, pk=licence_id
    )
    form = DeclarationUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        common = {
            "caller": caller,
            "licence": licence,
            "period": data["period"],
            "model_name": data["model_name"],
            "model_version": data["model_version"],
        }
        try:
            if data["nil"]:
                declaration = declarations.declaration_nil_file(**common)
            else:
                declaration = declarations.declaration_file_start(
                    **common, uploaded_file=data["file"], unit=data["unit"] or None
                )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return redirect("declaration_detail", pk=declaration.pk)
    history = Paginator(licence.declarations.order_by("-created_at", "-pk"), 20).get_page(
        request.GET.get("page")
    )
    context = {"licence": licence, "form": form, "history": history, "can_write": caller.can_write}
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "licensing/declarations/list.html", context, status=status)


def _declaration(request, pk: int) -> UsageDeclaration:
    return get_scoped_or_404(
        UsageDeclaration.objects.select_related("licence__licensee", "created_by"),
        caller_from_request(request),
        pk=pk,
    )


def _context(declaration: UsageDeclaration) -> dict:
    return {
        "declaration": declaration,
        "running": declaration.is_running,
        "report": None
        if declaration.is_running
        else declaration_match_report(declaration=declaration),
    }


@login_required
def declaration_detail(request, pk: int):
    return render(
        request, "licensing/declarations/detail.html", _context(_declaration(request, pk))
    )


@login_required
def declaration_progress(request, pk: int):
    """The partial htmx polls every second while the declaration is processed."""
    return render(
        request, "licensing/declarations/_progress.html", _context(_declaration(request, pk))
    )


@login_required
def declaration_unmatched_csv(request, pk: int):
    declaration = _declaration(request, pk)
    response = StreamingHttpResponse(
        declarations.declaration_unmatched_csv_chunks(declaration=declaration),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="declaration-{declaration.pk}-unmatched.csv"'
    )
    return response


@login_required
def declaration_errors_csv(request, pk: int):
    declaration = _declaration(request, pk)
    if not declaration.error_report:
        raise Http404
    return FileResponse(
        declaration.error_report.open("rb"),
        as_attachment=True,
        filename=f"declaration-{declaration.pk}-errors.csv",
        content_type="text/csv",
    )


@login_required
def unmatched_queue(request):
    """Staff: the unmatched identifiers of accepted declarations, most used first."""
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise PermissionDenied
    match_form = UnmatchedMatchForm(request.POST or None)
    if request.method == "POST" and match_form.is_valid():
        data = match_form.cleaned_data
        work = Work.objects.filter(pk=data["work_id"]).first()
        if work is None:
            match_form.add_error("work_id", "No such work.")
        else:
            try:
                moved = declarations.declaration_unmatched_match(
                    caller=caller, scheme=data["scheme"], identifier=data["identifier"], work=work
                )
            except DomainError as exc:
                _form_error(match_form, exc)
            else:
                messages.success(
                    request,
                    f"{data['scheme']}:{data['identifier']} is now an identifier of "
                    f"“{work.title}”; {len(moved)} declaration(s) re-matched.",
                )
                return redirect("declaration_unmatched_queue")
    search = UnmatchedSearchForm(request.GET or None)
    rows = DeclarationUnmatched.objects.filter(declaration__status=DeclarationStatus.ACCEPTED)
    if search.is_valid():
        if search.cleaned_data["scheme"]:
            rows = rows.filter(scheme=search.cleaned_data["scheme"])
        if term := search.cleaned_data["q"].strip():
            rows = rows.filter(identifier__icontains=term) | rows.filter(title__icontains=term)
    grouped = (
        rows.values("scheme", "identifier", "valid")
        .annotate(quantity=Sum("quantity"), lines=Sum("lines"), declarations=Count("declaration"))
        .order_by("-quantity", "scheme", "identifier")
    )
    page = Paginator(grouped, 50).get_page(request.GET.get("page"))
    context = {"page": page, "search": search, "match_form": match_form}
    status = 400 if match_form.is_bound and match_form.errors else 200
    return render(request, "licensing/declarations/unmatched_queue.html", context, status=status)
