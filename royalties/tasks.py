"""Celery tasks of the royalties app: thin wrappers that take ids and call one service."""

from celery import shared_task


# No automatic retry: a failed allocation records why on the cycle (status `failed`), and
# allocating again is the retry. The job only runs while the cycle is `allocating`.
@shared_task
def cycle_allocate_task(cycle_id: int) -> None:
    from royalties.services.cycles import cycle_allocate_run

    cycle_allocate_run(cycle_id=cycle_id)
