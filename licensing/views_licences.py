"""Licence pages: products, the quote calculator, licences and paying for them, certificates;
for staff, products and tariffs, offline payments and the ledger. Thin: parse, call one
service or selector, render. Objects are found through `get_scoped_or_404`."""

from __future__ import annotations

import contextlib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import OrganisationKind
from accounts.scoping import Caller, caller_from_request, get_scoped_or_404, scope
from config.errors import DomainError
from licensing import forms_licences as forms
from licensing.models import (
    Certificate,
    Licence,
    LicenceProduct,
    LicenceStatus,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Quote,
)
from licensing.services import licences, products, stripe_events
from licensing.services.certificates import certificate_document, certificate_verify
from royalties.models import JournalEntry, LedgerAccount, Posting

PER_PAGE = 50


def _staff_only(request) -> Caller:
    caller = caller_from_request(request)
    if not caller.is_staff:
        raise PermissionDenied("Society staff only.")
    return caller


def _is_licensee(caller: Caller) -> bool:
    return caller.organisation is not None and (
        caller.organisation.kind == OrganisationKind.LICENSEE
    )


def _licence_or_404(request, pk: int) -> Licence:
    return get_scoped_or_404(
        Licence.objects.select_related("product", "licensee", "quote"),
        caller_from_request(request),
        pk=pk,
    )


# --- licensee --------------------------------------------------------------------------------


@login_required
def product_list(request):
    caller = caller_from_request(request)
    queryset = LicenceProduct.objects.prefetch_related("tiers").order_by("name")
    if not caller.is_staff:
        queryset = queryset.filter(active=True)
    form = None
    if caller.is_staff:
        form = forms.ProductForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            data["minimum_fee_minor"] = data.pop("minimum_fee")
            try:
                product = products.product_create(caller=caller, **data)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Product {product.name} created.")
                return redirect("licence_products")
    elif request.method == "POST":
        raise PermissionDenied("Society staff only.")
    return render(
        request,
        "licensing/licences/product_list.html",
        {"products": queryset, "form": form, "is_licensee": _is_licensee(caller)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def quote_calculator(request):
    caller = caller_from_request(request)
    initial = {"product": request.GET.get("product")} if request.GET.get("product") else None
    form = forms.QuoteForm(request.POST or None, initial=initial)
    quote = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            quote = licences.quote_create(
                caller=caller,
                product=data["product"],
                annual_revenue_minor=data["annual_revenue"],
                training_volume=data["training_volume"],
                ai_revenue_minor=data["ai_revenue"] or 0,
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
    context = {"form": form, "quote": quote, "is_licensee": _is_licensee(caller)}
    if request.htmx:
        return render(request, "licensing/licences/_quote_result.html", context)
    return render(request, "licensing/licences/quote.html", context)


@login_required
@require_POST
def quote_accept(request, pk: int):
    caller = caller_from_request(request)
    quote = get_scoped_or_404(Quote.objects.all(), caller, pk=pk)
    try:
        licence = licences.licence_from_quote(caller=caller, quote=quote)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("licence_quote")
    return redirect("licence_detail", pk=licence.pk)


@login_required
def licence_list(request):
    caller = caller_from_request(request)
    queryset = scope(Licence.objects.select_related("product", "licensee"), caller)
    status = request.GET.get("status")
    if status in LicenceStatus.values:
        queryset = queryset.filter(status=status)
    page = Paginator(queryset.order_by("-created_at"), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "licensing/licences/licence_list.html",
        {"page": page, "statuses": LicenceStatus.choices, "status": status},
    )


@login_required
def licence_detail(request, pk: int):
    caller = caller_from_request(request)
    licence = _licence_or_404(request, pk)
    if request.GET.get("checkout") == "cancelled":
        messages.info(request, "Payment cancelled: nothing was charged. Pay when you are ready.")
    elif request.GET.get("checkout") == "trueup_paid":
        messages.info(
            request,
            "Thank you: the true-up shows as paid below once Stripe confirms the payment.",
        )
    context = {
        "licence": licence,
        "payments": licence.payments.order_by("-created_at"),
        "certificate": Certificate.objects.filter(licence=licence).first(),
        "trueups": licence.trueups.select_related("payment"),
        "can_invoice_trueups": caller.can_write,
        "payable": licence.status in (LicenceStatus.QUOTED, LicenceStatus.PENDING_PAYMENT),
        "can_pay": caller.can_write and _is_licensee(caller),
        "offline_form": forms.OfflinePaymentForm(
            initial={"amount": f"{licence.amount_minor // 100}.{licence.amount_minor % 100:02d}"}
        )
        if caller.is_staff
        else None,
    }
    if request.htmx and request.GET.get("fragment") == "status":
        return render(request, "licensing/licences/_licence_status.html", context)
    return render(request, "licensing/licences/licence_detail.html", context)


@login_required
@require_POST
def licence_pay_card(request, pk: int):
    licence = _licence_or_404(request, pk)
    try:
        payment = licences.licence_checkout_start(
            caller=caller_from_request(request),
            licence=licence,
            return_base_url=request.build_absolute_uri("/"),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("licence_detail", pk=licence.pk)
    return redirect(payment.checkout_url)


@login_required
@require_POST
def licence_pay_invoice(request, pk: int):
    licence = _licence_or_404(request, pk)
    try:
        licences.licence_invoice_start(caller=caller_from_request(request), licence=licence)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Invoice sent: pay it within 30 days from the link below. "
            "The licence becomes active when it is paid.",
        )
    return redirect("licence_detail", pk=licence.pk)


@login_required
def licence_paid(request, pk: int):
    """Where Stripe Checkout returns. The webhook normally activates the licence; if it has
    not arrived yet, re-read the session from Stripe (same idempotent service)."""
    licence = _licence_or_404(request, pk)
    session_id = request.GET.get("session_id", "")
    payment = (
        Payment.objects.filter(
            licence=licence, method=PaymentMethod.CHECKOUT, checkout_session_id=session_id
        ).first()
        if session_id
        else None
    )
    if payment is not None and payment.status != PaymentStatus.SUCCEEDED:
        with contextlib.suppress(DomainError):  # else the webhook does it; the page polls
            stripe_events.checkout_session_completed(
                {"id": session_id, "metadata": {"payment_id": str(payment.pk)}}
            )
        licence.refresh_from_db()
    return render(
        request, "licensing/licences/licence_paid.html", {"licence": licence, "payment": payment}
    )


@login_required
def certificate_download(request, pk: int, fmt: str):
    licence = _licence_or_404(request, pk)
    certificate = Certificate.objects.filter(licence=licence).first()
    if certificate is None or fmt not in ("json", "pdf"):
        raise Http404
    filename = f"blanket-licence-{certificate.serial}"
    if fmt == "json":
        response = HttpResponse(
            json.dumps(certificate_document(certificate), indent=2, ensure_ascii=False),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
        return response
    try:
        from weasyprint import HTML
    except ImportError:  # pragma: no cover - WeasyPrint missing: JSON only
        raise Http404("PDF rendering is not available here.") from None
    html = render_to_string(
        "licensing/licences/certificate_pdf.html",
        {
            "certificate": certificate,
            "payload": certificate.payload,
            "verdict": certificate_verify(document=certificate_document(certificate)),
            "document_json": json.dumps(certificate_document(certificate), indent=1),
        },
    )
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}.pdf"'
    return response


# --- staff -----------------------------------------------------------------------------------


@login_required
@require_POST
def licence_offline_payment(request, pk: int):
    caller = _staff_only(request)
    licence = _licence_or_404(request, pk)
    form = forms.OfflinePaymentForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the amount received and the bank reference.")
        return redirect("licence_detail", pk=licence.pk)
    try:
        licences.payment_offline_record(
            caller=caller,
            licence=licence,
            amount_minor=form.cleaned_data["amount"],
            reference=form.cleaned_data["reference"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Offline payment recorded; the licence is active.")
    return redirect("licence_detail", pk=licence.pk)


@login_required
def ledger(request):
    _staff_only(request)
    accounts = LedgerAccount.objects.annotate(balance=Sum("postings__amount_minor")).order_by(
        "currency", "code"
    )
    entries = JournalEntry.objects.prefetch_related("postings__account").order_by(
        "-posted_at", "-id"
    )
    account_code = request.GET.get("account")
    if account_code:
        entries = entries.filter(postings__account__code=account_code).distinct()
    page = Paginator(entries, PER_PAGE).get_page(request.GET.get("page"))
    totals = {
        row["currency"]: row["total"]
        for row in Posting.objects.values("currency").annotate(total=Sum("amount_minor"))
    }
    return render(
        request,
        "licensing/licences/ledger.html",
        {
            "accounts": accounts,
            "page": page,
            "account_code": account_code,
            "totals": totals,
        },
    )


def _entry_source_url(entry: JournalEntry) -> str | None:
    if entry.source_type == "payment":
        payment = Payment.objects.filter(pk=entry.source_id).first()
        return reverse("licence_detail", args=[payment.licence_id]) if payment else None
    if entry.source_type == "refund":
        licence_id = (
            Payment.objects.filter(refunds__pk=entry.source_id)
            .values_list("licence_id", flat=True)
            .first()
        )
        return reverse("licence_detail", args=[licence_id]) if licence_id else None
    return None


@login_required
def ledger_entry(request, pk: int):
    _staff_only(request)
    try:
        entry = JournalEntry.objects.select_related("reverses").get(pk=pk)
    except JournalEntry.DoesNotExist:
        raise Http404 from None
    return render(
        request,
        "licensing/licences/ledger_entry.html",
        {
            "entry": entry,
            "postings": entry.postings.select_related("account").order_by("-amount_minor"),
            "source_url": _entry_source_url(entry),
        },
    )


@login_required
@require_POST
def payment_refund(request, pk: int):
    caller = _staff_only(request)
    payment = get_scoped_or_404(Payment.objects.select_related("licence"), caller, pk=pk)
    form = forms.RefundForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the amount to refund.")
        return redirect("licence_detail", pk=payment.licence_id)
    try:
        licences.payment_refund(
            caller=caller, payment=payment, amount_minor=form.cleaned_data["amount"]
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Refund made through Stripe and booked in the ledger.")
    return redirect("licence_detail", pk=payment.licence_id)


def _major(amount_minor: int | None) -> str:
    if amount_minor is None:
        return ""
    return f"{amount_minor // 100}.{amount_minor % 100:02d}"


@login_required
@require_http_methods(["GET", "POST"])
def product_edit(request, pk: int):
    caller = _staff_only(request)
    try:
        product = LicenceProduct.objects.prefetch_related("tiers").get(pk=pk)
    except LicenceProduct.DoesNotExist:
        raise Http404 from None
    initial = {
        "code": product.code,
        "name": product.name,
        "description": product.description,
        "uses": product.uses,
        "territory": product.territory,
        "term_months": product.term_months,
        "declaration_period": product.declaration_period,
        "currency": product.currency,
        "minimum_fee": _major(product.minimum_fee_minor),
        "ai_revenue_share_bp": product.ai_revenue_share_bp,
        "tiers": "\n".join(
            f"{t.name} | {_major(t.price_minor)} | {_major(t.revenue_from_minor)} | "
            f"{_major(t.revenue_to_minor)}"
            for t in product.tiers.all()
        ),
    }
    form = forms.ProductForm(request.POST or None, initial=initial)
    form.fields["code"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("code")
        data["minimum_fee_minor"] = data.pop("minimum_fee")
        try:
            products.product_update(caller=caller, product=product, **data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Product {product.name} saved; tiers replaced.")
            return redirect("licence_products")
    return render(
        request, "licensing/licences/product_edit.html", {"form": form, "product": product}
    )
