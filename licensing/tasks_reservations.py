from celery import shared_task

from licensing.services import reservations


@shared_task(autoretry_for=(OSError,), max_retries=5, retry_backoff=True)
def reservation_verification_send_task(reservation_id: int) -> bool:
    return reservations.reservation_verification_send(reservation_id=reservation_id)
