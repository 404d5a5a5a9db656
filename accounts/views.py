"""Pages. Thin: parse the form, call one service, render or redirect."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from accounts.errors import AccountsError
from accounts.forms import ApiKeyForm, InvitationForm, OrganisationForm, SignUpForm
from accounts.middleware import SESSION_KEY
from accounts.models import ApiKey, Invitation, Membership
from accounts.scoping import caller_from_request, get_scoped_or_404


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
            return redirect(request.GET.get("next") or "organisation_create")
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
