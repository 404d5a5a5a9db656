"""Celery tasks of the licensing app: thin wrappers that take ids and call one service."""

from celery import shared_task

from licensing.services import imports


# No automatic retry: a failed import records why on its job row, and a new upload (or a
# re-enqueued job, which only runs while still pending) is the way to try again.
@shared_task
def catalogue_import_run_task(import_id: int) -> None:
    imports.catalogue_import_run(import_id=import_id)
