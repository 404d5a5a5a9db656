"""Celery tasks for payments: thin, take ids, call one service."""

from celery import shared_task

from licensing.services import licences, stripe_events
from royalties.integrations.stripe_client import StripeBoundaryError


@shared_task(
    autoretry_for=(StripeBoundaryError, OSError),
    max_retries=5,
    retry_backoff=True,
    retry_backoff_max=600,
)
def stripe_event_process_task(event_pk: int) -> str | None:
    return stripe_events.stripe_event_process(event_pk=event_pk)


@shared_task
def stripe_events_sweep_task() -> int:
    """Periodic: re-enqueue events that were never processed or failed."""
    stuck = stripe_events.stripe_events_stuck()
    for pk in stuck:
        stripe_event_process_task.delay(pk)
    return len(stuck)


@shared_task
def licence_expire_due_task() -> int:
    """Periodic (daily): licences whose term ended become expired."""
    return licences.licence_expire_due()
