"""Tenant boundaries, generated from the URL configuration.

Every URL pattern that names an object (a path parameter) must be listed in `ROUTES` (how to
fill its parameters with another organisation's object, and what kind of object it is) or in
`NOT_OBJECTS` (with the reason it names no one's object). A new endpoint that is in neither
fails `test_every_object_route_is_covered`: covering it is part of adding it.

Then every listed route is called with every method as attackers from other organisations (a
rights holder, a licensee, a member of no organisation) holding the victims' ids:

- `tenant` objects belong to an organisation: the answer is 404 (or 405 where the method does
  not exist for anyone), and the body carries nothing of the victim;
- `staff` objects are the society's: non-staff get 404, 403 or 405, never data;
- `shared` objects are public to read (products of the licence catalogue): writes are refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditEvent, Invitation, Membership, OrganisationKind
from licensing.models import (
    Conflict,
    Quote,
    Reservation,
    UnmatchedClaim,
    Work,
)
from royalties.models import JournalEntry, Statement, SuspenseItem
from tests.conftest import _persona
from tests.royalties import payouts_support as ps

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    kind: str  # tenant | staff | shared
    params: str  # which world object fills the path parameters


# URL name -> Route. The parameter names are filled from the world's objects (see `world`).
ROUTES: dict[str, Route] = {
    # accounts
    "organisation-detail": Route("tenant", "organisation"),
    "membership-detail": Route("tenant", "membership"),
    "invitation-detail": Route("tenant", "invitation"),
    "api-key-detail": Route("tenant", "api_key"),
    "audit-event-detail": Route("tenant", "audit_event"),
    "invitation_revoke": Route("tenant", "invitation"),
    "api_key_revoke": Route("tenant", "api_key"),
    # repertoire
    "catalogue-detail": Route("tenant", "catalogue"),
    "catalogue-import-list": Route("tenant", "catalogue_import_parent"),
    "catalogue-import-detail": Route("tenant", "catalogue_import"),
    "catalogue-import-errors": Route("tenant", "catalogue_import"),
    "work-detail": Route("tenant", "work"),
    "work-consent": Route("tenant", "work"),
    "work-shares": Route("tenant", "work"),
    "conflict-detail": Route("tenant", "conflict"),
    "conflict-resolve": Route("tenant", "conflict"),
    "reservation-detail": Route("tenant", "reservation"),
    "unmatched-claim-detail": Route("tenant", "unmatched_claim"),
    "unmatched-claim-accept": Route("tenant", "unmatched_claim"),
    "unmatched-claim-reject": Route("tenant", "unmatched_claim"),
    "catalogue_detail": Route("tenant", "catalogue"),
    "catalogue_update": Route("tenant", "catalogue"),
    "catalogue_consent": Route("tenant", "catalogue"),
    "catalogue_imports": Route("tenant", "catalogue"),
    "work_consent": Route("tenant", "work"),
    "import_detail": Route("tenant", "catalogue_import"),
    "import_progress": Route("tenant", "catalogue_import"),
    "import_error_report": Route("tenant", "catalogue_import"),
    "conflict_resolve": Route("tenant", "conflict"),
    "reservation_withdraw": Route("tenant", "reservation"),
    "unmatched_claim_detail": Route("tenant", "unmatched_claim"),
    # licences and declarations
    "product-detail": Route("shared", "product"),
    "licence_product_edit": Route("staff", "product"),
    "quote-detail": Route("tenant", "quote"),
    "licence_quote_accept": Route("tenant", "quote"),
    "licence-detail": Route("tenant", "licence"),
    "licence-checkout": Route("tenant", "licence"),
    "licence-invoice": Route("tenant", "licence"),
    "licence-offline-payments": Route("staff", "licence"),
    "licence-certificate": Route("tenant", "licence"),
    "licence_detail": Route("tenant", "licence"),
    "licence_pay_card": Route("tenant", "licence"),
    "licence_pay_invoice": Route("tenant", "licence"),
    "licence_paid": Route("tenant", "licence"),
    "licence_offline_payment": Route("staff", "licence"),
    "licence_certificate": Route("tenant", "licence_certificate"),
    "payment-detail": Route("tenant", "payment"),
    "payment-refunds": Route("staff", "payment"),
    "payment_refund": Route("staff", "payment"),
    "declaration-list": Route("tenant", "declaration_parent"),
    "declaration-detail": Route("tenant", "declaration_nested"),
    "declaration-report": Route("tenant", "declaration_nested"),
    "declaration-unmatched": Route("tenant", "declaration_nested"),
    "declaration-errors": Route("tenant", "declaration_nested"),
    "licence_declarations": Route("tenant", "declaration_parent"),
    "declaration_detail": Route("tenant", "declaration"),
    "declaration_progress": Route("tenant", "declaration"),
    "declaration_unmatched_csv": Route("tenant", "declaration"),
    "declaration_errors_csv": Route("tenant", "declaration"),
    "trueup-detail": Route("tenant", "trueup"),
    "trueup-checkout": Route("tenant", "trueup"),
    "trueup-invoice": Route("tenant", "trueup"),
    "trueup-waive": Route("staff", "trueup"),
    "trueup_invoice": Route("tenant", "trueup"),
    "trueup_pay_card": Route("tenant", "trueup"),
    # ledger, cycles, statements, suspense
    "ledger_entry": Route("staff", "journal_entry"),
    "policy-detail": Route("staff", "policy"),
    "cycle-detail": Route("staff", "cycle"),
    "cycle-allocate": Route("staff", "cycle"),
    "cycle-approve": Route("staff", "cycle"),
    "cycle-pay": Route("staff", "cycle"),
    "cycle_detail": Route("staff", "cycle"),
    "cycle_progress": Route("staff", "cycle"),
    "cycle_allocate": Route("staff", "cycle"),
    "cycle_approve": Route("staff", "cycle"),
    "cycle_review": Route("staff", "cycle"),
    "statement-detail": Route("tenant", "statement"),
    "statement-csv": Route("tenant", "statement"),
    "statement-pdf": Route("tenant", "statement"),
    "statement-works": Route("tenant", "statement"),
    "statement_detail": Route("tenant", "statement"),
    "statement_csv": Route("tenant", "statement"),
    "statement_pdf": Route("tenant", "statement"),
    "suspense-detail": Route("staff", "suspense"),
    "suspense-release": Route("staff", "suspense"),
    # payouts
    "payout-detail": Route("tenant", "payout"),
    "payout-run-detail": Route("staff", "payout_run"),
    "payout-run-resume": Route("staff", "payout_run"),
    "cycle-reconcile": Route("staff", "cycle"),
    "payout_monitor": Route("staff", "cycle"),
    "payout_monitor_progress": Route("staff", "cycle"),
    "payout_start": Route("staff", "cycle"),
    "payout_resume": Route("staff", "cycle"),
    "payout_reconcile": Route("staff", "cycle"),
    "payout_csv": Route("staff", "cycle"),
    "whatif_cycle": Route("staff", "cycle"),
    # transparency: a licensee's draft training summary (public only once published) and a
    # holder's disclosure of one of its works
    "training-summary-detail": Route("tenant", "training_summary"),
    "training-summary-publish": Route("tenant", "training_summary"),
    "training_summary_edit": Route("tenant", "training_summary"),
    "training_summary_publish": Route("tenant", "training_summary"),
    "training_summary_public": Route("tenant", "training_summary"),
    "training_summary_json": Route("tenant", "training_summary"),
    "disclosure-work-detail": Route("tenant", "disclosure_work"),
    "disclosure_work": Route("tenant", "disclosure_work"),
    "whatif_csv": Route("staff", "cycle"),
}

# URL name (or route prefix) -> why it names no organisation's object.
NOT_OBJECTS: dict[str, str] = {
    "api-root": "the API's index",
    "password_reset_confirm": "a signed one-time token, not an object id",
    "invitation_accept": "a signed one-time token, checked against the invitee's email",
    "reservation_verify": "a signed one-time token mailed to the reserving address",
    "admin/": "Django's admin: staff superusers only, behind its own login",
    "permissions-tdmrep": "a public document per domain name: published for every crawler",
}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name


@functools.cache
def object_routes() -> dict[str, str]:
    """URL name -> route, for every pattern with a path parameter (format suffixes aside)."""
    found = {}
    for route, name in _walk(get_resolver().url_patterns):
        params = set(re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route))
        names = {a or b for a, b in params} - {"format"}
        if not names:
            continue
        if any(route.startswith(prefix) for prefix in NOT_OBJECTS if prefix.endswith("/")):
            continue
        found[name] = route
    return found


def test_every_object_route_is_covered():
    missing = sorted(
        f"{name} ({route})"
        for name, route in object_routes().items()
        if name not in ROUTES and name not in NOT_OBJECTS
    )
    assert not missing, (
        "These routes name an object but no tenant-boundary case covers them; add them to "
        f"ROUTES (or NOT_OBJECTS with the reason): {missing}"
    )
    stale = sorted(set(ROUTES) - set(object_routes()))
    assert not stale, f"ROUTES lists routes that no longer exist: {stale}"


@pytest.fixture
def world(
    operator, approver, licensee, rights_holder, co_holder, django_capture_on_commit_callbacks
):
    """The victims' objects: a rights holder's repertoire, statement and payout; a licensee's
    quote, licence, payment, declaration and true-up; the society's cycle and ledger."""
    from licensing.models import Catalogue, CatalogueImport, LicenceProduct, TrueUp
    from royalties.models import Cycle, DistributionPolicy
    from royalties.services import payouts

    cycle, licence = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)
    holder = rights_holder.organisation
    catalogue = Catalogue.objects.get(owner=holder)
    work = Work.objects.filter(catalogue=catalogue).order_by("pk").first()
    job = CatalogueImport.objects.create(
        catalogue=catalogue,
        created_by=rights_holder.user,
        original_name="c.csv",
        errors=[{"row": 2, "column": "isbn", "message": "ISBN check digit is wrong"}],
    )
    conflict = Conflict.objects.create(scheme="isbn", value="9780439023481", claimed_ppm=2_000_000)
    conflict.works.add(work)
    conflict.claimants.add(holder, co_holder.organisation)
    reservation = Reservation.objects.create(
        kind="domain", value="northernlights.example", organisation=holder
    )
    claim = UnmatchedClaim.objects.create(
        claimant=holder, work=work, scheme="isbn", identifier="9780000000002"
    )
    product = LicenceProduct.objects.get(pk=licence.product_id)
    quote = Quote.objects.create(
        licensee=licensee.organisation,
        product=product,
        annual_revenue_minor=1,
        training_volume=1,
        amount_minor=1000,
        currency="EUR",
        valid_until=timezone.now() + dt.timedelta(days=1),
    )
    declaration = licence.declarations.first()
    declaration.error_report.save("errors.csv", ContentFile(b"row,column,message\n"))
    trueup = TrueUp.objects.create(
        licence=licence,
        declaration=declaration,
        quote=quote,
        declared_volume=1,
        tier_paid="a",
        tier_due="b",
        price_paid_minor=1,
        price_due_minor=2,
        amount_due_minor=1,
        currency="EUR",
    )
    invitation = Invitation.objects.create(
        organisation=holder,
        email="new@northernlights.example",
        nonce="n" * 40,
        invited_by=rights_holder.user,
        expires_at=timezone.now() + dt.timedelta(days=7),
    )
    api_key = ApiKey.objects.create(
        organisation=holder, name="k", prefix="bk_victim", key_hash="h" * 64
    )
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_run_start(caller=ps.cs.staff_caller(approver), cycle=cycle)
    statement = Statement.objects.get(allocation=cycle.current_allocation, holder=holder)
    from licensing.services.summaries import training_summary_generate
    from tests.licensing.factories import caller_of

    summary = training_summary_generate(
        caller=caller_of(licensee),
        model_name=declaration.model_name,
        model_version=declaration.model_version,
    )
    return {
        "training_summary": {"pk": summary.pk},
        "disclosure_work": {"work_id": work.pk},
        "victims": (holder, licensee.organisation),
        "organisation": {"code": holder.code},
        "membership": {"pk": Membership.objects.get(organisation=holder).pk},
        "invitation": {"pk": invitation.pk},
        "api_key": {"pk": api_key.pk},
        "audit_event": {"pk": AuditEvent.objects.filter(organisation=holder).first().pk},
        "catalogue": {"pk": catalogue.pk},
        "catalogue_import_parent": {"catalogue_id": catalogue.pk},
        "catalogue_import": {"catalogue_id": catalogue.pk, "pk": job.pk},
        "work": {"pk": work.pk},
        "conflict": {"pk": conflict.pk},
        "reservation": {"pk": reservation.pk},
        "unmatched_claim": {"pk": claim.pk},
        "product": {"pk": product.pk},
        "quote": {"pk": quote.pk},
        "licence": {"pk": licence.pk},
        "licence_certificate": {"pk": licence.pk, "fmt": "pdf"},
        "payment": {"pk": licence.payments.first().pk},
        "declaration_parent": {"licence_id": licence.pk},
        "declaration_nested": {"licence_id": licence.pk, "pk": declaration.pk},
        "declaration": {"pk": declaration.pk},
        "trueup": {"pk": trueup.pk},
        "journal_entry": {"pk": JournalEntry.objects.first().pk},
        "policy": {"pk": DistributionPolicy.objects.first().pk},
        "cycle": {"pk": Cycle.objects.get().pk},
        "statement": {"pk": statement.pk},
        "suspense": {"pk": SuspenseItem.objects.first().pk},
        "payout": {"pk": statement.payout.pk},
        "payout_run": {"pk": statement.payout.run_id},
    }


def _attackers():
    return {
        "rights holder": _persona(OrganisationKind.RIGHTS_HOLDER, name="Lantern Agency"),
        "licensee": _persona(OrganisationKind.LICENSEE, name="Corvid Labs"),
        "no organisation": _no_organisation(),
    }


def _no_organisation():
    from tests.conftest import Persona
    from tests.factories import UserFactory

    return Persona(UserFactory(), None, None)


def _path(name: str, kwargs: dict) -> str:
    """The route filled with the victim object's ids (only the parameters the route has)."""
    from django.urls import reverse

    route = object_routes()[name]
    wanted = {a or b for a, b in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", route)}
    return reverse(name, kwargs={k: v for k, v in kwargs.items() if k in wanted})


def _leaks(body: bytes, victims) -> list[str]:
    text = body.decode("utf-8", "replace")
    return [v for org in victims for v in (org.code, org.name) if v in text]


def test_no_attacker_reaches_another_organisations_object(world):
    failures = []
    attackers = _attackers()
    for name, route in sorted(ROUTES.items()):
        kwargs = world[route.params]
        path = _path(name, kwargs)
        for who, persona in attackers.items():
            client = APIClient()
            client.force_login(persona.user)
            for method in METHODS:
                response = getattr(client, method)(path, {}, format="json")
                code = response.status_code
                allowed = {404, 405} if route.kind == "tenant" else {403, 404, 405}
                if route.kind == "shared" and method == "get":
                    allowed = {200}
                if code not in allowed:
                    failures.append(f"{method.upper()} {path} [{name}] as {who}: {code}")
                    continue
                if code != 200:
                    body = b"".join(response) if response.streaming else response.content
                    if leaked := _leaks(body, world["victims"]):
                        failures.append(f"{method.upper()} {path} as {who}: leaks {leaked}")
    assert not failures, "\n".join(failures)


def test_the_ids_are_real_objects_staff_can_reach(world, approver):
    """The control: the same paths answer society staff (who see every organisation's objects),
    so the 404s above are the boundary, not wrong ids."""
    client = APIClient()
    client.force_login(approver.user)
    missing = []
    for name, route in sorted(ROUTES.items()):
        path = _path(name, world[route.params])
        response = client.get(path)
        if response.status_code == 404:
            missing.append(f"GET {path} [{name}]")
    assert not missing, "staff get 404 on: " + ", ".join(missing)


# --- mass assignment --------------------------------------------------------------------------


def test_owner_amount_status_and_staff_fields_in_a_body_are_ignored_or_refused(
    world, rights_holder, licensee, co_holder, client
):
    """Fields a caller must never set (owner, organisation, amounts, statuses, staff flags) are
    ignored when sent; a body naming another organisation's object is a 404."""
    from accounts.models import Organisation, User
    from licensing.models import Catalogue, LicenceProduct, Quote, Reservation

    other = co_holder.organisation
    holder_api, licensee_api = rights_holder.client(), licensee.client()

    made = holder_api.post(
        "/api/v1/catalogues/",
        {"name": "Mine", "media_type": "text", "owner": other.pk, "id": 999_999},
        format="json",
    )
    assert made.status_code == 201, made.content
    catalogue = Catalogue.objects.get(pk=made.json()["id"])
    assert catalogue.owner == rights_holder.organisation and catalogue.pk != 999_999
    holder_api.patch(
        f"/api/v1/catalogues/{catalogue.pk}/",
        {"owner": other.pk, "name": "Still mine"},
        format="json",
    )
    catalogue.refresh_from_db()
    assert catalogue.owner == rights_holder.organisation and catalogue.name == "Still mine"

    # A work filed into another organisation's catalogue by id: 404, nothing created.
    theirs = Catalogue.objects.create(owner=other, name="Theirs", media_type="text")
    works = Work.objects.count()
    refused = holder_api.post(
        "/api/v1/works/",
        {
            "catalogue": theirs.pk,
            "work_ref": "X",
            "title": "X",
            "identifiers": [{"scheme": "isbn", "value": "9780306406157"}],
        },
        format="json",
    )
    assert refused.status_code == 404 and Work.objects.count() == works

    reservation = holder_api.post(
        "/api/v1/reservations/",
        {"kind": "domain", "value": "mine.example", "organisation": other.pk, "verified_at": "x"},
        format="json",
    )
    assert reservation.status_code == 201, reservation.content
    assert Reservation.objects.get(pk=reservation.json()["id"]).organisation == (
        rights_holder.organisation
    )

    product = LicenceProduct.objects.first()
    quote = licensee_api.post(
        "/api/v1/quotes/",
        {
            "product": product.code,
            "annual_revenue_minor": 50_000_000,
            "training_volume": 1,
            "amount_minor": 1,
            "currency": "XXX",
            "licensee": other.pk,
        },
        format="json",
    )
    assert quote.status_code == 201, quote.content
    stored = Quote.objects.get(pk=quote.json()["id"])
    assert stored.licensee == licensee.organisation
    assert stored.amount_minor != 1 and stored.currency == product.currency
    # Someone else's quote cannot be turned into a licence.
    theirs_quote = _persona(OrganisationKind.LICENSEE, name="Corvid Labs")
    bought = theirs_quote.client().post(
        "/api/v1/licences/", {"quote": stored.pk, "status": "active"}, format="json"
    )
    assert bought.status_code == 404

    organisation = holder_api.post(
        "/api/v1/organisations/",
        {"name": "New Press", "kind": "society", "country": "GB", "code": "SO-000001"},
        format="json",
    )
    assert organisation.status_code == 400
    assert "kind" in organisation.content.decode()
    assert not Organisation.objects.filter(name="New Press").exists()

    signed_up = client.post(
        "/signup/",
        {
            "email": "mallory@example.org",
            "full_name": "Mallory",
            "password": "a-long-enough-passphrase-41",
            "password1": "a-long-enough-passphrase-41",
            "password2": "a-long-enough-passphrase-41",
            "is_staff": "on",
            "is_superuser": "on",
        },
    )
    assert signed_up.status_code == 302
    user = User.objects.get(email="mallory@example.org")
    assert not (user.is_staff or user.is_superuser)
