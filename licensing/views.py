"""Repertoire pages. Thin: parse the form, call one service or selector, render or redirect.

Every object is found through `get_scoped_or_404`, so another organisation's catalogue, work,
import, conflict or reservation is a 404, never a 403.
"""

from __future__ import annotations

import csv
import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.scoping import Caller, caller_from_request, get_scoped_or_404
from config.errors import DomainError
from licensing import forms, selectors
from licensing.api.views import RegistryThrottle
from licensing.importing.report import csv_cell_defused
from licensing.models import (
    Catalogue,
    CatalogueImport,
    Conflict,
    ConflictStatus,
    JobStatus,
    Reservation,
    Use,
    Work,
)
from licensing.services import (
    conflicts,
    imports,
    registry,
    repertoire,
    reservations,
    society,
)

WORKS_PER_PAGE = 50


def _form_error(form, exc: DomainError) -> None:
    """Put a service error on the form fields it names, else on the form as a whole."""
    details = exc.details if isinstance(exc.details, dict) else {}
    placed = False
    for field, problems in details.items():
        if field in form.fields:
            for problem in problems if isinstance(problems, list) else [problems]:
                form.add_error(field, str(problem))
            placed = True
    if not placed:
        form.add_error(None, exc.message)


def _acting(request) -> Caller | None:
    """The caller, or None when they act for no organisation (and are not staff)."""
    caller = caller_from_request(request)
    if caller.organisation is None and not caller.is_staff:
        return None
    return caller


def _throttled(request) -> bool:
    """Public forms share the registry API's per-client budget (REGISTRY_RATE): per user when
    logged in, per address otherwise (the user throttle does both, counting each POST once)."""
    return not RegistryThrottle().allow_request(request, None)


def _staff_only(request) -> Caller:
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise PermissionDenied("Society staff only.")
    return caller


# --- catalogues ----------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def catalogue_list(request):
    caller = _acting(request)
    if caller is None:
        return redirect("organisation_create")
    can_enrol = caller.can_write and (
        caller.is_staff or caller.organisation.kind == "rights_holder"
    )
    form = forms.CatalogueForm(request.POST or None)
    if request.method == "POST" and can_enrol and form.is_valid():
        try:
            catalogue = repertoire.catalogue_create(caller=caller, **form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Catalogue “{catalogue.name}” created. Import its works.")
            return redirect("catalogue_imports", pk=catalogue.pk)
    catalogues = selectors.catalogue_list(caller=caller).order_by("owner__code", "name")
    page = Paginator(catalogues, WORKS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "can_enrol": can_enrol}
    return render(request, "licensing/catalogue_list.html", context)


def _work_filter(request, catalogue: Catalogue) -> tuple[forms.WorkFilterForm, object]:
    """The filter form from the query string, and the filtered works (none if it is invalid)."""
    form = forms.WorkFilterForm(request.GET or None)
    caller = caller_from_request(request)
    if request.GET and not form.is_valid():
        return form, Work.objects.none()
    kwargs = form.selector_kwargs() if request.GET else {}
    return form, selectors.work_list(caller=caller, catalogue=catalogue, **kwargs)


def _filter_query(request) -> str:
    """The current filters as a query string, without the page number."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
def catalogue_detail(request, pk: int):
    caller = caller_from_request(request)
    catalogue = get_scoped_or_404(Catalogue.objects.select_related("owner"), caller, pk=pk)
    filters, works = _work_filter(request, catalogue)
    paginator = Paginator(works, WORKS_PER_PAGE)  # counts with one COUNT query
    page = paginator.get_page(request.GET.get("page"))
    page.object_list = page.object_list.prefetch_related("identifiers", "shares__holder")
    context = {
        "catalogue": catalogue,
        "filters": filters,
        "page": page,
        "matching": paginator.count,
        "filter_query": _filter_query(request),
        "settings_form": forms.CatalogueUpdateForm(
            initial={"name": catalogue.name, "default_consent": catalogue.default_consent}
        ),
        "uses": Use.choices,
        "can_write": caller.can_write,
        "latest_import": catalogue.imports.order_by("-created_at").first(),
    }
    return render(request, "licensing/catalogue_detail.html", context)


@login_required
@require_POST
def catalogue_update(request, pk: int):
    caller = caller_from_request(request)
    catalogue = get_scoped_or_404(Catalogue.objects.all(), caller, pk=pk)
    form = forms.CatalogueUpdateForm(request.POST)
    if form.is_valid():
        try:
            repertoire.catalogue_update(caller=caller, catalogue=catalogue, **form.cleaned_data)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Catalogue settings saved.")
    else:
        messages.error(request, "The catalogue settings are not valid.")
    return redirect("catalogue_detail", pk=catalogue.pk)


@login_required
@require_POST
def work_consent(request, pk: int):
    """One toggle in the works table. With htmx, answers with the re-rendered row."""
    caller = caller_from_request(request)
    work = get_scoped_or_404(Work.objects.select_related("catalogue"), caller, pk=pk)
    form = forms.WorkConsentForm(request.POST)
    error = None
    if not form.is_valid():
        error = "Unknown consent or use."
    else:
        use = form.cleaned_data["use"]
        try:
            repertoire.work_consent_set(
                caller=caller,
                works=Work.objects.filter(pk=work.pk),
                consent=form.cleaned_data["consent"],
                uses=[use] if use else None,
            )
        except DomainError as exc:
            error = exc.message
    if request.htmx:
        work = (
            selectors.work_list(caller=caller)
            .prefetch_related("identifiers", "shares__holder")
            .get(pk=work.pk)
        )
        context = {
            "work": work,
            "can_write": caller.can_write,
            "row_error": error,
            "filter_query": request.POST.get("next_query", ""),
        }
        return render(request, "licensing/_work_row.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Consent of {work.work_ref} changed.")
    return redirect(_back_to_works(request, work.catalogue_id))


def _back_to_works(request, catalogue_id: int) -> str:
    url = reverse("catalogue_detail", args=[catalogue_id])
    query = request.POST.get("next_query") or ""
    return f"{url}?{query}" if query else url


@login_required
@require_POST
def catalogue_consent_bulk(request, pk: int):
    """License or reserve the ticked works, or every work matching the current filter."""
    caller = caller_from_request(request)
    catalogue = get_scoped_or_404(Catalogue.objects.all(), caller, pk=pk)
    form = forms.BulkConsentForm(request.POST)
    back = reverse("catalogue_detail", args=[catalogue.pk])
    query = _filter_query(request)
    back = f"{back}?{query}" if query else back
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect(back)
    if form.target == "selected":
        works = Work.objects.filter(catalogue=catalogue, pk__in=form.cleaned_data["work"])
    else:
        filters, works = _work_filter(request, catalogue)
        if request.GET and not filters.is_valid():
            messages.error(request, "Fix the filter before applying consent to it.")
            return redirect(back)
    try:
        changed = repertoire.work_consent_set(
            caller=caller,
            works=works,
            consent=form.consent,
            uses=form.cleaned_data["uses"] or None,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        word = "licensed" if form.consent == "licensed" else "reserved"
        messages.success(request, f"{changed:,} work{'s' if changed != 1 else ''} now {word}.")
    return redirect(back)


# --- imports -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def catalogue_imports(request, pk: int):
    caller = caller_from_request(request)
    catalogue = get_scoped_or_404(Catalogue.objects.select_related("owner"), caller, pk=pk)
    form = forms.ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = imports.catalogue_import_start(
                caller=caller,
                catalogue=catalogue,
                uploaded_file=form.cleaned_data["file"],
                mode=form.cleaned_data["mode"],
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return redirect("import_detail", pk=job.pk)
    jobs = Paginator(
        catalogue.imports.select_related("created_by").order_by("-created_at"), 20
    ).get_page(request.GET.get("page"))
    context = {"catalogue": catalogue, "form": form, "jobs": jobs, "can_write": caller.can_write}
    return render(request, "licensing/catalogue_imports.html", context, status=_status(form))


def _status(form) -> int:
    return 400 if form.is_bound and form.errors else 200


def _job(request, pk: int) -> CatalogueImport:
    return get_scoped_or_404(
        CatalogueImport.objects.select_related("catalogue", "created_by"),
        caller_from_request(request),
        pk=pk,
    )


def _job_context(job: CatalogueImport) -> dict:
    return {
        "job": job,
        "running": job.status in (JobStatus.PENDING, JobStatus.RUNNING),
        "percent": 100 if job.status == JobStatus.SUCCEEDED else min(job.percent, 100),
    }


@login_required
def import_detail(request, pk: int):
    job = _job(request, pk)
    return render(request, "licensing/import_detail.html", _job_context(job))


@login_required
def import_progress(request, pk: int):
    """The progress partial htmx polls every second while the job runs."""
    job = _job(request, pk)
    return render(request, "licensing/_import_progress.html", _job_context(job))


@login_required
def import_error_report(request, pk: int):
    """Every row error of a job as CSV: the job's report file, else its first errors."""
    job = _job(request, pk)
    filename = f"import-{job.pk}-errors.csv"
    if job.error_report:
        try:
            handle = job.error_report.open("rb")
        except FileNotFoundError:
            raise Http404 from None
        return FileResponse(handle, as_attachment=True, filename=filename, content_type="text/csv")
    if not job.errors:
        raise Http404
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "column", "message"])
    for error in job.errors:
        writer.writerow(
            [
                error.get("row", ""),
                csv_cell_defused(error.get("column", "")),
                csv_cell_defused(error.get("message", "")),
            ]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- conflicts -----------------------------------------------------------------------------


@login_required
def conflict_list(request):
    caller = _acting(request)
    if caller is None:
        return redirect("organisation_create")
    status = request.GET.get("status")
    status = status if status in ConflictStatus.values else None
    items = selectors.conflict_list(caller=caller, status=status).prefetch_related(
        "works__shares__holder"
    )
    page = Paginator(items, WORKS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status or "", "statuses": ConflictStatus.choices}
    return render(request, "licensing/conflict_list.html", context)


def _conflict_queue(request, caller: Caller, *, bound: forms.ConflictResolveForm | None = None):
    open_conflicts = (
        selectors.conflict_list(caller=caller, status=ConflictStatus.OPEN)
        .prefetch_related("works__shares__holder")
        .order_by("opened_at", "pk")
    )
    page = Paginator(open_conflicts, 20).get_page(request.GET.get("page"))
    items = []
    for conflict in page.object_list:
        if bound is not None and bound.conflict.pk == conflict.pk:
            items.append((conflict, bound))
        else:
            items.append((conflict, forms.ConflictResolveForm(conflict=conflict)))
    status = 400 if bound is not None else 200
    return render(
        request, "licensing/conflict_queue.html", {"page": page, "items": items}, status=status
    )


@login_required
def conflict_queue(request):
    return _conflict_queue(request, _staff_only(request))


@login_required
@require_POST
def conflict_resolve(request, pk: int):
    caller = caller_from_request(request)
    conflict = get_scoped_or_404(
        Conflict.objects.prefetch_related("works__catalogue__owner"), caller, pk=pk
    )
    if not caller.is_staff:
        raise PermissionDenied("Only society staff resolve conflicts.")
    form = forms.ConflictResolveForm(request.POST, conflict=conflict)
    if form.is_valid():
        try:
            conflicts.conflict_resolve(
                caller=caller,
                conflict=conflict,
                resolution=form.cleaned_data["resolution"],
                reject_work_ids=form.cleaned_data["reject"],
            )
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Conflict on {conflict.scheme}:{conflict.value} resolved.")
            return redirect("conflict_queue")
    return _conflict_queue(request, caller, bound=form)


# --- reservations --------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def reservation_list(request):
    caller = _acting(request)
    if caller is None:
        return redirect("organisation_create")
    form = forms.ReservationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            reservation = reservations.reservation_create(caller=caller, **form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"{reservation.value} is reserved.")
            return redirect("reservations")
    items = selectors.reservation_list(caller=caller).select_related("organisation")
    page = Paginator(items, WORKS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "can_write": caller.can_write}
    return render(request, "licensing/reservation_list.html", context, status=_status(form))


@login_required
@require_POST
def reservation_withdraw(request, pk: int):
    caller = caller_from_request(request)
    reservation = get_scoped_or_404(Reservation.objects.all(), caller, pk=pk)
    try:
        reservations.reservation_withdraw(caller=caller, reservation=reservation)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Reservation of {reservation.value} withdrawn.")
    return redirect("reservations")


@require_http_methods(["GET", "POST"])
def reservation_request(request):
    """Public: anyone reserves a work, URL prefix or domain, confirmed by email."""
    form = forms.ReservationRequestForm(request.POST or None)
    if request.method == "POST" and _throttled(request):
        form.add_error(None, "Too many requests from your address; wait a minute.")
        return render(request, "licensing/reservation_request.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        try:
            reservation = reservations.reservation_request(**form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            return render(
                request, "licensing/reservation_requested.html", {"reservation": reservation}
            )
    return render(
        request, "licensing/reservation_request.html", {"form": form}, status=_status(form)
    )


@require_http_methods(["GET", "POST"])
def reservation_verify(request, token: str):
    """The link in the confirmation email. GET asks, POST confirms: mail scanners that
    prefetch links must not confirm on their own."""
    if request.method == "GET":
        return render(request, "licensing/reservation_verify.html", {"token": token})
    try:
        reservation = reservations.reservation_verify(token=token)
    except DomainError as exc:
        return render(
            request, "licensing/reservation_verify.html", {"error": exc.message}, status=400
        )
    return render(request, "licensing/reservation_verify.html", {"reservation": reservation})


# --- registry ------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def registry_lookup(request):
    """Public: paste identifiers, see whether each is licensed, reserved or unknown."""
    form = forms.RegistryCheckForm(request.POST or None)
    results = None
    if request.method == "POST":
        if _throttled(request):
            form.add_error(None, "Too many look-ups from your address; wait a minute.")
            return _registry_render(request, form, None, status=429)
        if form.is_valid():
            results = registry.registry_check(
                pairs=form.cleaned_data["identifiers"], use=form.cleaned_data["use"]
            )
    return _registry_render(request, form, results, status=_status(form))


def _registry_render(request, form, results, *, status: int):
    counts = {}
    for result in results or []:
        counts[result.status] = counts.get(result.status, 0) + 1
    context = {
        "form": form,
        "results": results,
        "counts": counts,
        "regime": society.society_settings_get(),
    }
    return render(request, "licensing/registry.html", context, status=status)


# --- society -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def society_settings(request):
    caller = _staff_only(request)
    current = society.society_settings_get()
    form = forms.SocietySettingsForm(
        request.POST or None, initial={"consent_regime": current.consent_regime}
    )
    if request.method == "POST" and form.is_valid():
        try:
            society.society_settings_update(caller=caller, **form.cleaned_data)
        except DomainError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Consent regime saved.")
            return redirect("society_settings")
    return render(request, "licensing/society_settings.html", {"form": form, "current": current})
