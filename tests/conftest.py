"""Personas and service fixtures shared by the whole suite.

Personas (STYLE.md): staff operator, staff approver, rights holder, co-holder, licensee,
outsider. Each persona is a logged-in client acting for its own organisation; `api_client_for`
gives an API-key client for an organisation.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from accounts.models import OrganisationKind, Role
from accounts.services import api_key_create, membership_add
from tests.factories import OrganisationFactory, UserFactory

pytest_plugins = ["stripe_local.pytest_fixtures"]

IN_CI = os.environ.get("CI", "").lower() in {"1", "true"}

# CI explores the same examples on every run (a red build is reproducible, never a fluke of
# the seed); locally hypothesis keeps exploring new ones and remembers what failed.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


def skip_or_fail(reason: str) -> None:
    """A missing service skips a test locally, and fails it in CI, where everything must run."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run this test, not skip it)")
    pytest.skip(reason)


class Persona:
    def __init__(self, user, organisation, role=Role.OWNER):
        self.user = user
        self.organisation = organisation
        self.role = role

    def client(self) -> APIClient:
        client = APIClient()
        client.force_login(self.user)
        return client


def _persona(kind: str, *, name: str, role: str = Role.OWNER) -> Persona:
    organisation = OrganisationFactory(kind=kind, name=name)
    user = UserFactory()
    membership_add(organisation=organisation, user=user, role=role)
    return Persona(user, organisation, role)


def _staff(group: str) -> Persona:
    from accounts.models import Organisation

    society = Organisation.objects.filter(kind=OrganisationKind.SOCIETY).first() or (
        OrganisationFactory(kind=OrganisationKind.SOCIETY, name="The Society")
    )
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    membership_add(organisation=society, user=user, role=Role.ADMIN)
    return Persona(user, society, Role.ADMIN)


@pytest.fixture
def rights_holder(db) -> Persona:
    return _persona(OrganisationKind.RIGHTS_HOLDER, name="Northern Lights Press")


@pytest.fixture
def co_holder(db) -> Persona:
    return _persona(OrganisationKind.RIGHTS_HOLDER, name="Harbour Records")


@pytest.fixture
def licensee(db) -> Persona:
    return _persona(OrganisationKind.LICENSEE, name="Aleph AI Ltd")


@pytest.fixture
def outsider(db) -> Persona:
    """Someone with an organisation of their own and no business with anyone else's objects."""
    return _persona(OrganisationKind.RIGHTS_HOLDER, name="Outsider Media")


@pytest.fixture
def operator(db) -> Persona:
    return _staff("operator")


@pytest.fixture
def approver(db) -> Persona:
    return _staff("approver")


@pytest.fixture
def api_client_for():
    def make(organisation, name: str = "test key") -> APIClient:
        _, raw_key = api_key_create(organisation=organisation, name=name)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
        return client

    return make


# Migrations whose `forward_triggers`/`backward_triggers` install append-only triggers.
APPEND_ONLY_TRIGGER_MIGRATIONS = (
    "accounts.migrations.0002_audit_immutable_and_staff_groups",
    "royalties.migrations.0002_ledger_triggers",
)


@pytest.fixture(scope="session", autouse=True)
def _append_only_triggers_step_aside_for_flush():
    """Transactional tests end with a flush (DELETE/TRUNCATE of every table), which the audit
    log's and the ledger's append-only triggers rightly refuse. Only for that flush, drop and
    recreate them."""
    import importlib

    from django.db.backends.base.operations import BaseDatabaseOperations

    migrations = [importlib.import_module(name) for name in APPEND_ONLY_TRIGGER_MIGRATIONS]
    original = BaseDatabaseOperations.execute_sql_flush

    class _Editor:
        def __init__(self, connection):
            self.connection = connection

        def execute(self, sql):
            with self.connection.cursor() as cursor:
                cursor.execute(sql)

    def execute_sql_flush(self, sql_list):
        editor = _Editor(self.connection)
        for migration in migrations:
            migration.backward_triggers(None, editor)
        try:
            original(self, sql_list)
        finally:
            for migration in migrations:
                migration.forward_triggers(None, editor)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original
