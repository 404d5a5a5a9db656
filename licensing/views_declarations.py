"""Usage declaration pages: a licensee files a declaration and follows it (live progress, match
report, unmatched CSV); staff work through the unmatched pool. Thin: scope, call, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Case, When
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.scoping import caller_from_request, get_scoped_or_404, scope
from config.errors import DomainError
from licensing.forms_declarations import (
    ClaimReviewForm,
    DeclarationUploadForm,
    UnmatchedBulkForm,
    UnmatchedClaimForm,
    UnmatchedMatchForm,
    UnmatchedSearchForm,
)
from licensing.models import (
    Catalogue,
    ClaimStatus,
    Licence,
    TrueUp,
    UnmatchedClaim,
    UsageDeclaration,
    Work,
)
from licensing.selectors_declarations import declaration_match_report, unmatched_pool_list
from licensing.services import claims, declarations, trueups


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
    declaration = _declaration(request, pk)
    context = {
        **_context(declaration),
        "trueups": declaration.licence.trueups.select_related("payment"),
        "can_invoice_trueups": caller_from_request(request).can_write,
    }
    return render(request, "licensing/declarations/detail.html", context)


@login_required
@require_POST
def trueup_invoice(request, pk: int):
    """The licensee (or staff) sends the invoice of a true-up."""
    caller = caller_from_request(request)
    trueup = get_scoped_or_404(TrueUp.objects.select_related("licence"), caller, pk=pk)
    try:
        trueups.trueup_invoice_start(caller=caller, trueup=trueup)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "True-up invoice sent: pay it from the link below.")
    return redirect("licence_detail", pk=trueup.licence_id)


@login_required
@require_POST
def trueup_pay_card(request, pk: int):
    """The licensee (or staff) pays a true-up by card: off to Stripe Checkout."""
    caller = caller_from_request(request)
    trueup = get_scoped_or_404(TrueUp.objects.select_related("licence"), caller, pk=pk)
    try:
        payment = trueups.trueup_checkout_start(
            caller=caller, trueup=trueup, return_base_url=request.build_absolute_uri("/")
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("licence_detail", pk=trueup.licence_id)
    return redirect(payment.checkout_url)


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


def _staff_caller(request):
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise PermissionDenied
    return caller


def _bulk(request, caller, form: UnmatchedBulkForm):
    """Match the ticked identifiers to one work, or dismiss them. Returns a redirect or None."""
    data = form.cleaned_data
    try:
        if data["operation"] == "dismiss":
            count = claims.unmatched_dismiss(
                caller=caller, identifiers=data["selected"], reason=data["reason"]
            )
            messages.success(request, f"{count} identifier(s) dismissed from the queue.")
        else:
            work = Work.objects.filter(pk=data["work_id"]).first()
            if work is None:
                form.add_error("work_id", "No such work.")
                return None
            moved = claims.unmatched_bulk_match(
                caller=caller, identifiers=data["selected"], work=work
            )
            messages.success(
                request,
                f"{len(data['selected'])} identifier(s) matched to “{work.title}”; "
                f"{len(moved)} declaration(s) re-matched.",
            )
    except DomainError as exc:
        _form_error(form, exc)
        return None
    return redirect("declaration_unmatched_queue")


@login_required
def unmatched_queue(request):
    """Staff: the unmatched identifiers of accepted declarations, most used first."""
    caller = _staff_caller(request)
    bulk = request.method == "POST" and "operation" in request.POST
    match_form = UnmatchedMatchForm(request.POST if request.method == "POST" and not bulk else None)
    bulk_form = UnmatchedBulkForm(request.POST if bulk else None)
    if bulk and bulk_form.is_valid() and (done := _bulk(request, caller, bulk_form)):
        return done
    if match_form.is_bound and match_form.is_valid():
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
    terms = search.cleaned_data if search.is_valid() else {}
    grouped = unmatched_pool_list(scheme=terms.get("scheme") or "", q=terms.get("q") or "")
    page = Paginator(grouped, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "search": search,
        "match_form": match_form,
        "bulk_form": bulk_form,
        "pending_claims": UnmatchedClaim.objects.filter(status=ClaimStatus.PENDING).count(),
    }
    failed = any(form.is_bound and form.errors for form in (match_form, bulk_form))
    status = 400 if failed else 200
    return render(request, "licensing/declarations/unmatched_queue.html", context, status=status)


@login_required
def unmatched_claims_review(request):
    """Staff: claims on the unmatched pool, pending first."""
    _staff_caller(request)
    rows = UnmatchedClaim.objects.select_related("claimant", "work").order_by(
        Case(When(status=ClaimStatus.PENDING, then=0), default=1), "-created_at", "-pk"
    )
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "licensing/declarations/claims_review.html",
        {"page": page, "review_form": ClaimReviewForm()},
    )


def _claim(request, pk: int) -> UnmatchedClaim:
    return get_scoped_or_404(
        UnmatchedClaim.objects.select_related("claimant", "work", "reviewed_by"),
        caller_from_request(request),
        pk=pk,
    )


@login_required
def unmatched_claim_detail(request, pk: int):
    """One claim: its claimant and staff see it (others 404); staff review it here."""
    claim = _claim(request, pk)
    caller = caller_from_request(request)
    form = ClaimReviewForm(request.POST or None)
    if request.method == "POST":
        if not caller.is_staff:
            raise PermissionDenied
        if form.is_valid():
            try:
                if form.cleaned_data["decision"] == "accept":
                    moved = claims.unmatched_claim_accept(caller=caller, claim=claim)
                    messages.success(request, f"Accepted; {len(moved)} declaration(s) re-matched.")
                else:
                    claims.unmatched_claim_reject(
                        caller=caller, claim=claim, reason=form.cleaned_data["reason"]
                    )
                    messages.success(request, "Rejected.")
            except DomainError as exc:
                _form_error(form, exc)
            else:
                return redirect("unmatched_claim_detail", pk=claim.pk)
    context = {"claim": claim, "form": form, "can_review": caller.is_staff}
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "licensing/declarations/claim_detail.html", context, status=status)


@login_required
def unmatched_pool(request):
    """Rights holders: unmatched identifiers to search and claim, and their own claims."""
    caller = caller_from_request(request)
    form = UnmatchedClaimForm(
        request.POST or None,
        initial=request.GET.dict(),
        catalogues=scope(Catalogue.objects.all(), caller),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        work = None
        if data["work_id"]:
            work = scope(Work.objects.all(), caller).filter(pk=data["work_id"]).first()
        if data["work_id"] and work is None:
            form.add_error("work_id", "No such work among yours.")
        else:
            try:
                claim = claims.unmatched_claim_create(
                    caller=caller,
                    scheme=data["scheme"],
                    identifier=data["identifier"],
                    work=work,
                    new_work=form.new_work(),
                    note=data["note"],
                )
            except DomainError as exc:
                _form_error(form, exc)
            else:
                messages.success(request, "Claim sent; the society will review it.")
                return redirect("unmatched_claim_detail", pk=claim.pk)
    search = UnmatchedSearchForm(request.GET or None)
    terms = search.cleaned_data if search.is_valid() else {}
    pool = unmatched_pool_list(
        scheme=terms.get("scheme") or "", q=terms.get("q") or "", valid_only=True
    )
    context = {
        "page": Paginator(pool, 50).get_page(request.GET.get("page")),
        "search": search,
        "form": form,
        "can_write": caller.can_write,
        "my_claims": scope(UnmatchedClaim.objects.select_related("work"), caller)[:100],
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "licensing/declarations/unmatched_pool.html", context, status=status)
