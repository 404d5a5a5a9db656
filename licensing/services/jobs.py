"""Re-driving background jobs that a lost message or a stopped worker left behind.

The database is the source of truth for every job row (imports, declarations): one still
waiting long after it was created lost its Celery message; one "running" far longer than any
run takes lost its worker, and since each job writes in one transaction nothing of it was
stored. Both go back to waiting and are enqueued again; each job's claim (a conditional UPDATE
waiting → running) makes a duplicate run harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db.models import Model, Q
from django.utils import timezone

logger = logging.getLogger(__name__)


def jobs_sweep(
    *,
    model: type[Model],
    waiting: str,
    running: str,
    enqueue: Callable[[int], object],
    now: datetime | None = None,
    waiting_after: timedelta,
    running_after: timedelta,
    only: Q | None = None,
) -> int:
    """Requeue stale running jobs, then enqueue every job waiting too long; returns how many
    were enqueued. `only` narrows the rows swept (e.g. nil declarations never run)."""
    now = now or timezone.now()
    rows = model.objects.filter(only) if only is not None else model.objects.all()
    stale = list(
        rows.filter(status=running, started_at__lt=now - running_after).values_list("pk", flat=True)
    )
    if stale:
        model.objects.filter(pk__in=stale, status=running).update(
            status=waiting, stage="requeued after a stopped worker", percent=0
        )
        logger.warning("%s %s: worker lost, requeued", model._meta.verbose_name_plural, stale)
    stuck = list(
        rows.filter(status=waiting, created_at__lt=now - waiting_after).values_list("pk", flat=True)
    )
    for job_id in stuck:
        enqueue(job_id)
    return len(stuck)
