"""The production shape: a separate Celery worker process on the real Redis broker, running
tasks against the real PostgreSQL test database. Skipped locally without the services;
CI runs it (and fails rather than skips)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Invitation
from accounts.scoping import caller_for_user
from accounts.services import invitation_create
from tests.conftest import skip_or_fail
from tests.services import broker_reachable, start_worker, wait_for


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    if not settings.CELERY_BROKER_URL:
        skip_or_fail("CELERY_BROKER_URL is not set: no real broker to run a worker on")
    if not broker_reachable(settings.CELERY_BROKER_URL):
        skip_or_fail(f"the broker at {settings.CELERY_BROKER_URL} does not answer")
    if connection.vendor != "postgresql":
        skip_or_fail("a worker in another process needs a shared database: set DATABASE_URL")
    queue = f"blanket-test-{os.getpid()}"
    process = start_worker(queue)
    yield process, queue
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def celery_worker(celery_worker_process):
    """The real worker, with this test's tasks sent to it instead of run in-process."""
    from config.celery import app

    process, queue = celery_worker_process
    previous = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    yield process
    app.conf.task_always_eager, app.conf.task_default_queue = previous


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_an_invitation_queued_by_a_service(celery_worker, rights_holder):
    invitation = invitation_create(
        caller=caller_for_user(rights_holder.user, rights_holder.organisation),
        email="new@example.test",
    )
    wait_for(
        lambda: Invitation.objects.get(pk=invitation.pk).sent_at is not None,
        what="the worker to send the invitation",
    )
    assert celery_worker.poll() is None  # still running: it did not crash on the task


@pytest.mark.services
@pytest.mark.django_db
def test_healthz_sees_the_real_broker(celery_worker, client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "database": "ok",
        "database_engine": "postgresql",
        "broker": "ok",
    }
