from celery import shared_task

from accounts import services


# OSError covers SMTP and socket failures: transient, so retried a few times with backoff.
@shared_task(autoretry_for=(OSError,), max_retries=5, retry_backoff=True)
def invitation_send_task(invitation_id: int) -> bool:
    return services.invitation_send(invitation_id=invitation_id)
