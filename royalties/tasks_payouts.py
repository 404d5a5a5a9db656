"""Celery tasks of payouts: thin wrappers that take ids and call one service.

`payout_submit_task` acknowledges late and is re-delivered if its worker dies, but nothing
depends on that: the payout row is the truth, and the sweeper re-drives whatever a lost message
or a killed worker left behind (see royalties.services.payouts).
"""

from celery import shared_task


@shared_task
def payout_run_dispatch_task(run_id: int) -> int:
    from royalties.services.payouts import payout_run_due

    ids = payout_run_due(run_id=run_id)
    for pk in ids:
        payout_submit_task.delay(pk)
    return len(ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def payout_submit_task(payout_id: int) -> str | None:
    from royalties.services.payouts import payout_run_finish_if_done, payout_submit

    status = payout_submit(payout_id=payout_id)
    if status is not None:
        from royalties.models import Payout

        run_id = Payout.objects.filter(pk=payout_id).values_list("run_id", flat=True).first()
        if run_id is not None:
            payout_run_finish_if_done(run_id=run_id)
    return status


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
