"""The demo society's people and organisations. Safe to run again: finds what exists."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from accounts.models import Organisation, OrganisationKind, Role, User
from accounts.services import membership_add, organisation_create

# Printed by `manage.py demo` for people trying Blanket. Never reaches a real deployment:
# demo_accounts_seed refuses to run where DEMO_SEED_ALLOWED is false (production settings).
DEMO_PASSWORD = "blanket-demo-2026"  # nosec B105  # public demo password, refused in production

STAFF = (
    ("operator@blanket.demo", "Olu Operator", "operator"),
    ("approver@blanket.demo", "Ada Approver", "approver"),
)
ORGANISATIONS = (
    # name, kind, country, party ids, owner email
    (
        "Northern Lights Press",
        OrganisationKind.RIGHTS_HOLDER,
        "GB",
        {"isni": "000000012146438X", "ipi_name_number": "00014107338"},
        "editor@northernlights.demo",
    ),
    (
        "Harbour Records",
        OrganisationKind.RIGHTS_HOLDER,
        "IE",
        {"isni": "0000000398765433", "ipi_name_number": "12345678993"},
        "label@harbour.demo",
    ),
    (
        "Fjord Photo Agency",
        OrganisationKind.RIGHTS_HOLDER,
        "NO",
        {"ipi_name_number": "25444321125"},
        "desk@fjordphoto.demo",
    ),
    (
        "Aleph AI Ltd",
        OrganisationKind.LICENSEE,
        "GB",
        {"company_number": "14567890"},
        "legal@aleph.demo",
    ),
    (
        "Corvid Labs",
        OrganisationKind.LICENSEE,
        "FR",
        {"company_number": "RCS PARIS 852 379 890"},
        "ml@corvid.demo",
    ),
)


@dataclass
class DemoAccounts:
    society: Organisation
    staff: dict[str, User] = field(default_factory=dict)
    organisations: dict[str, Organisation] = field(default_factory=dict)
    owners: dict[str, User] = field(default_factory=dict)


def _user(email: str, full_name: str, *, is_staff: bool = False) -> User:
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(
            email=email, password=DEMO_PASSWORD, full_name=full_name, is_staff=is_staff
        )
    return user


@transaction.atomic
def demo_accounts_seed(*, society_name: str) -> DemoAccounts:
    if not settings.DEMO_SEED_ALLOWED:
        raise ImproperlyConfigured(
            "The demo seeds staff with a published password: refused under these settings."
        )
    society = Organisation.objects.filter(kind=OrganisationKind.SOCIETY).first()
    if society is None:
        society = organisation_create(
            creator=None, name=society_name, kind=OrganisationKind.SOCIETY, country="GB"
        )
    demo = DemoAccounts(society=society)
    for email, full_name, group in STAFF:
        user = _user(email, full_name, is_staff=True)
        user.groups.add(Group.objects.get_or_create(name=group)[0])
        membership_add(organisation=society, user=user, role=Role.ADMIN)
        demo.staff[group] = user
    for name, kind, country, ids, owner_email in ORGANISATIONS:
        owner = _user(owner_email, name + " owner")
        organisation = Organisation.objects.filter(name=name, kind=kind).first()
        if organisation is None:
            organisation = organisation_create(
                creator=owner, name=name, kind=kind, country=country, **ids
            )
        demo.organisations[name] = organisation
        demo.owners[name] = owner
    # A co-holder: a second person in the press, read-only.
    viewer = _user("assistant@northernlights.demo", "Pat Assistant")
    press = demo.organisations["Northern Lights Press"]
    if not press.memberships.filter(user=viewer).exists():
        membership_add(organisation=press, user=viewer, role=Role.VIEWER)
    return demo
