"""Celery tasks of payouts: thin wrappers that take ids and call one service.

`payout_submit_task` (and `payout_submit_batch_task`, which a run's dispatch sends) acknowledges
late and is re-delivered if its worker dies, but nothing depends on that: the payout row is
the truth, and the sweeper re-drives whatever a lost message or a killed worker left behind
(see royalties.services.payouts).
"""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)

# Payouts per message when a run is dispatched. A task costs more than its payout's own work:
# Celery's Django fix-up closes the database connection before and after every task, so each
# message opens a new PostgreSQL connection (and warms its caches) and pays a broker round
# trip. A batch shares them; several batches still spread a run over every worker. Each payout
# is still claimed on its own (royalties.services.payouts), so a batch redelivered after its
# worker died re-sends nothing that was taken.
DISPATCH_BATCH = 25


@shared_task
def payout_run_dispatch_task(run_id: int) -> int:
    from royalties.services.payouts import payout_run_due

    ids = payout_run_due(run_id=run_id)
    for start in range(0, len(ids), DISPATCH_BATCH):
        payout_submit_batch_task.delay(ids[start : start + DISPATCH_BATCH])
    return len(ids)


def _submit(payout_id: int) -> str | None:
    from royalties.services.payouts import payout_run_finish_if_done, payout_submit

    status = payout_submit(payout_id=payout_id)
    if status is not None:
        from royalties.models import Payout

        run_id = Payout.objects.filter(pk=payout_id).values_list("run_id", flat=True).first()
        if run_id is not None:
            payout_run_finish_if_done(run_id=run_id)
    return status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def payout_submit_task(payout_id: int) -> str | None:
    return _submit(payout_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def payout_submit_batch_task(payout_ids: list[int]) -> dict[str, str | None]:
    """``payout_submit_task`` for several payouts in one message, one after the other. A
    payout that raises does not stop the others (its row stays where it was left, and the
    sweeper drives it on as it would after a failed single task); the first error is raised
    again at the end so the task is recorded as failed."""
    from royalties.models import Payout
    from royalties.services.payouts import payout_run_finish_if_done, payout_submit

    statuses: dict[str, str | None] = {}
    error: Exception | None = None
    for pk in payout_ids:
        try:
            statuses[str(pk)] = payout_submit(payout_id=pk)
        except Exception as exc:  # reported below, after the others
            logger.exception("payout %s: submission failed", pk)
            error = error or exc
    # As payout_submit_task does after each payout, once for the batch: a run is done only
    # when its last payout is settled, and the batch holding that payout gets here after it.
    submitted = [int(pk) for pk, status in statuses.items() if status is not None]
    for run_id in sorted(
        set(Payout.objects.filter(pk__in=submitted).values_list("run_id", flat=True))
    ):
        payout_run_finish_if_done(run_id=run_id)
    if error is not None:
        raise error
    return statuses


@shared_task
def payouts_sweep_task() -> dict:
    from royalties.services.payouts import payouts_due, payouts_sweep

    counts = payouts_sweep()
    due = sorted(set(payouts_due()) | set(counts.pop("requeue")))
    for pk in due:
        payout_submit_task.delay(pk)
    return {**counts, "enqueued": len(due)}


@shared_task
def payouts_reconcile_task(cycle_id: int | None = None) -> int:
    from royalties.services.reconciliation import payouts_reconcile_due, reconcile_cycle

    if cycle_id is not None:
        reconcile_cycle(cycle_id=cycle_id)
        return 1
    return payouts_reconcile_due()
