"""Pages. Thin: parse the form, call one service, render or redirect."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services, two_factor
from accounts.errors import AccountsError
from accounts.forms import (
    ApiKeyForm,
    InvitationForm,
    OrganisationForm,
    SignUpForm,
    TotpTokenForm,
)
from accounts.middleware import SESSION_KEY
from accounts.models import ApiKey, Invitation, Membership
from accounts.scoping import caller_from_request, get_scoped_or_404


def _safe_next(request, default: str = "dashboard") -> str:
    """`?next=` (or the posted `next`) when it stays on this site, else `default`."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse(default)


def _form_error(form, exc: AccountsError) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    placed = False
    for field, problems in details.items():
        if field in form.fields:
            for problem in problems if isinstance(problems, list) else [problems]:
                form.add_error(field, problem)
            placed = True
    if not placed:
        form.add_error(None, exc.message)


@require_http_methods(["GET", "POST"])
def sign_up(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(**form.cleaned_data)
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to Blanket. Create or join an organisation next.")
            return redirect(_safe_next(request, "organisation_create"))
    return render(request, "accounts/sign_up.html", {"form": form})


@login_required
def dashboard(request):
    caller = caller_from_request(request)
    context = {
        "organisations": selectors.organisation_list_for_user(user=request.user),
        "pending_invitations": Invitation.objects.filter(
            email__iexact=request.user.email, accepted_at__isnull=True, revoked_at__isnull=True
        ).select_related("organisation")[:10],
    }
    if caller.organisation is not None:
        context["members"] = selectors.membership_list(caller=caller).count()
        context["active_keys"] = (
            selectors.api_key_list(caller=caller).filter(revoked_at__isnull=True).count()
        )
        context["recent_events"] = selectors.audit_event_list(caller=caller)[:8]
    return render(request, "accounts/dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def organisation_create(request):
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organisation = services.organisation_create(creator=request.user, **form.cleaned_data)
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            request.session[SESSION_KEY] = organisation.pk
            messages.success(request, f"{organisation.name} is registered as {organisation.code}.")
            return redirect("dashboard")
    return render(request, "accounts/organisation_create.html", {"form": form})


@login_required
@require_POST
def organisation_switch(request):
    wanted = request.POST.get("organisation", "")
    membership = Membership.objects.filter(user=request.user, organisation__code=wanted).first()
    if membership is None:
        messages.error(request, "You are not a member of that organisation.")
    else:
        request.session[SESSION_KEY] = membership.organisation_id
    return redirect("dashboard")


@login_required
@require_http_methods(["GET", "POST"])
def members(request):
    caller = caller_from_request(request)
    if caller.organisation is None:
        return redirect("organisation_create")
    form = InvitationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation = services.invitation_create(caller=caller, **form.cleaned_data)
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("members")
    context = {
        "form": form,
        "memberships": selectors.membership_list(caller=caller).filter(
            organisation=caller.organisation
        ),
        "invitations": selectors.invitation_list(caller=caller, open_only=True).filter(
            organisation=caller.organisation
        ),
        "can_manage": caller.can_manage,
    }
    return render(request, "accounts/members.html", context)


@login_required
@require_POST
def invitation_revoke(request, pk: int):
    caller = caller_from_request(request)
    invitation = get_scoped_or_404(Invitation.objects.all(), caller, pk=pk)
    try:
        services.invitation_revoke(caller=caller, invitation=invitation)
    except AccountsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Invitation to {invitation.email} revoked.")
    return redirect("members")


@require_http_methods(["GET", "POST"])
def invitation_accept(request, token: str):
    try:
        invitation = services.invitation_from_token(token=token)
    except AccountsError as exc:
        return render(
            request, "accounts/invitation_accept.html", {"error": exc.message}, status=400
        )
    if not request.user.is_authenticated:
        return render(request, "accounts/invitation_accept.html", {"invitation": invitation})
    if request.method == "POST":
        try:
            membership = services.invitation_accept(user=request.user, token=token)
        except AccountsError as exc:
            messages.error(request, exc.message)
        else:
            request.session[SESSION_KEY] = membership.organisation_id
            messages.success(request, f"You joined {membership.organisation.name}.")
            return redirect("dashboard")
    return render(request, "accounts/invitation_accept.html", {"invitation": invitation})


@login_required
@require_http_methods(["GET", "POST"])
def api_keys(request):
    caller = caller_from_request(request)
    if caller.organisation is None:
        return redirect("organisation_create")
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            api_key, new_key = services.api_key_create(
                organisation=caller.organisation, name=form.cleaned_data["name"], caller=caller
            )
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"API key “{api_key.name}” created. Copy it now.")
            form = ApiKeyForm()
    keys = selectors.api_key_list(caller=caller).filter(organisation=caller.organisation)
    context = {"form": form, "keys": keys, "new_key": new_key, "can_manage": caller.can_manage}
    return render(request, "accounts/api_keys.html", context)


@login_required
@require_POST
def api_key_revoke(request, pk: int):
    caller = caller_from_request(request)
    api_key = get_scoped_or_404(ApiKey.objects.all(), caller, pk=pk)
    try:
        services.api_key_revoke(caller=caller, api_key=api_key)
    except AccountsError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"API key “{api_key.name}” revoked.")
    return redirect("api_keys")


@login_required
def audit_log(request):
    caller = caller_from_request(request)
    events = selectors.audit_event_list(caller=caller)[:200]
    return render(request, "accounts/audit_log.html", {"events": events})


# --- two-factor sign-in for staff ----------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def otp_verify(request):
    """After the password: the code from the staff member's authenticator app."""
    user = request.user
    if not user.is_staff or user.is_verified():
        return redirect(_safe_next(request))
    if two_factor.totp_device_confirmed(user=user) is None:
        return redirect(f"{reverse('otp_enrol')}?{request.GET.urlencode()}")
    form = TotpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.totp_verify(request=request, user=user, token=form.cleaned_data["token"])
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            return redirect(_safe_next(request))
    next_url = request.POST.get("next") or request.GET.get("next", "")
    return render(request, "accounts/otp_verify.html", {"form": form, "next": next_url})


@login_required
@require_http_methods(["GET", "POST"])
def otp_enrol(request):
    """Staff enrol an authenticator app: scan the QR code (or type the key), confirm a code."""
    user = request.user
    if not user.is_staff:
        raise PermissionDenied
    next_url = request.POST.get("next") or request.GET.get("next", "")
    if two_factor.totp_device_confirmed(user=user) is not None:
        return render(request, "accounts/otp_enrol.html", {"enrolled": True, "next": next_url})
    device = two_factor.totp_enrolment_start(user=user)
    form = TotpTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.totp_enrolment_confirm(
                request=request, user=user, token=form.cleaned_data["token"]
            )
        except AccountsError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, "Two-factor sign-in is on: logins now ask for a code.")
            return redirect(_safe_next(request))
    context = {
        "form": form,
        "next": next_url,
        "secret": two_factor.totp_secret(device=device),
        "otpauth_uri": device.config_url,
        "qr_svg": two_factor.totp_qr_svg(device=device),
        "required": settings.STAFF_REQUIRE_OTP,
    }
    return render(request, "accounts/otp_enrol.html", context)
