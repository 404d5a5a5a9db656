"""Celery tasks of the royalties app: thin wrappers that take ids and call one service."""

from celery import shared_task


# No automatic retry: a failed allocation records why on the cycle (status `failed`), and
# allocating again is the retry. The job only runs while the cycle is `allocating`.
@shared_task
def cycle_allocate_task(cycle_id: int) -> None:
    from royalties.services.cycles import cycle_allocate_run

    cycle_allocate_run(cycle_id=cycle_id)


# The allocation fanned out (ROYALTIES_ALLOCATION_PARTITIONS > 1): one task per partition of
# the licences, then one reduce. Ids only; both are no-ops when redelivered.
@shared_task
def cycle_allocate_map_task(run_id: int, index: int) -> None:
    from royalties.services.allocation_runs import allocation_run_map

    allocation_run_map(run_id=run_id, index=index)


@shared_task
def cycle_allocate_reduce_task(run_id: int) -> None:
    from royalties.services.allocation_runs import allocation_run_reduce

    allocation_run_reduce(run_id=run_id)


@shared_task
def allocation_runs_sweep_task() -> int:
    from royalties.services.allocation_runs import allocation_runs_sweep

    return allocation_runs_sweep()
