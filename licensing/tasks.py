"""Celery tasks of the licensing app: thin wrappers that take ids and call one service."""

from celery import shared_task

from licensing.services import imports


# No automatic retry: a failed import records why on its job row, and a new upload (or a
# re-enqueued job, which only runs while still pending) is the way to try again.
@shared_task
def catalogue_import_run_task(import_id: int) -> None:
    imports.catalogue_import_run(import_id=import_id)


@shared_task
def catalogue_imports_sweep_task() -> int:
    return imports.catalogue_imports_sweep()


# No automatic retry: a failed declaration records why on its row; filing again is the retry.
@shared_task
def declaration_process_task(declaration_id: int) -> None:
    from licensing.services import declarations

    declarations.declaration_process(declaration_id=declaration_id)


@shared_task
def declarations_sweep_task() -> int:
    from licensing.services import declarations

    return declarations.declarations_sweep()
