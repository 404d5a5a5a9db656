"""API fuzzing with schemathesis against the published OpenAPI schema (/api/schema/).

Every operation gets generated requests (valid and invalid, from the schema) as a rights
holder, a licensee and society staff, each through its own API key, with a small world of real
objects so that ids resolve. Checks: no 5xx, the status code is one the schema documents, the
body matches the documented schema, the content type is the documented one.

`FUZZ_EXAMPLES` (default 8 per operation and persona in the test run) scales it up:
`FUZZ_EXAMPLES=200 .venv/bin/pytest tests/test_api_fuzz.py -p no:randomly -q` is the long run
the reliability figures come from (docs/reliability.md).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import OrganisationKind
from accounts.services import api_key_create
from config.wsgi import application
from tests.conftest import _persona

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
PERSONAS = ("rights_holder", "licensee", "staff")


def _key(persona: str, operator) -> str:
    if persona == "staff":
        organisation = operator.organisation  # the society: its keys act as staff
    else:
        kind = (
            OrganisationKind.RIGHTS_HOLDER
            if persona == "rights_holder"
            else OrganisationKind.LICENSEE
        )
        organisation = _persona(kind, name=f"Fuzz {persona}").organisation
    _, raw = api_key_create(organisation=organisation, name="fuzz")
    return f"Api-Key {raw}"


@pytest.fixture(autouse=True)
def _connection_kept_across_requests():
    """Django closes the database connection when a request finishes; the test client turns
    that off, and so must calls through WSGI, or the test's own transaction (PostgreSQL) is
    gone after the first request."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Each generated request commits on its own (transactional_db), as in production: inside one
# test-wide transaction an error PostgreSQL raised and a view handled would poison every
# request after it.
@pytest.mark.parametrize("persona", PERSONAS)
def test_the_api_answers_every_generated_request_as_documented(persona, transactional_db, operator):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    headers = {"Authorization": _key(persona, operator)}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure is kept
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}")
    assert operations > 50
    assert not failures, f"{len(failures)} of {operations} operations:\n" + "\n\n".join(failures)
