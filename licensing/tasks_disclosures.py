"""Celery tasks of the disclosures to rights holders: thin wrappers that take ids."""

from celery import shared_task


# Safe to replay: each holder's digest is claimed by a row unique per (holder, cycle) and sent
# once; a failed send keeps its error on that row and the next run tries it again.
@shared_task
def disclosure_digest_cycle_task(cycle_id: int) -> int:
    from licensing.services.disclosures import disclosure_digest_cycle

    return disclosure_digest_cycle(cycle_id=cycle_id)
