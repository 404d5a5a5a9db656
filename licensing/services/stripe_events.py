"""Stripe webhooks: store each verified event once, then process it in a task.

`stripe_event_receive` runs in the webhook request: the event is already verified by the
boundary module; it is stored once by its Stripe id and its processing is enqueued after
commit. `stripe_event_process` claims the row (a conditional UPDATE to `processing`), re-reads
the current state from Stripe (events may be stale, duplicated or out of order), and calls the
idempotent payment services. A sweeper re-enqueues events stuck in received/processing/failed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from licensing.models import Payment, StripeEvent, StripeEventStatus
from licensing.services import licences
from royalties.integrations import stripe_client

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 20  # Celery retries of one delivery, then the sweeper
STUCK_AFTER = timedelta(minutes=10)


def stripe_event_receive(*, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """(row, created). A duplicate delivery returns the stored row and enqueues nothing."""
    from licensing.tasks_payments import stripe_event_process_task

    existing = StripeEvent.objects.filter(event_id=event["id"]).first()
    if existing is not None:
        return existing, False
    created_ts = event.get("created")
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event["id"],
                type=str(event["type"])[:100],
                account=event.get("account") or "",
                created=(
                    datetime.fromtimestamp(int(created_ts), tz=UTC)
                    if created_ts
                    else timezone.now()
                ),
                payload=event,
            )
            transaction.on_commit(lambda: stripe_event_process_task.delay(row.pk), robust=True)
    except IntegrityError:  # the same event, delivered concurrently
        return StripeEvent.objects.get(event_id=event["id"]), False
    return row, True


def _claim(event_pk: int) -> StripeEvent | None:
    claimable = Q(status__in=(StripeEventStatus.RECEIVED, StripeEventStatus.FAILED)) | Q(
        status=StripeEventStatus.PROCESSING, processed_at__lt=timezone.now() - STUCK_AFTER
    )
    claimed = StripeEvent.objects.filter(claimable, pk=event_pk, attempts__lt=MAX_ATTEMPTS).update(
        status=StripeEventStatus.PROCESSING,
        attempts=F("attempts") + 1,
        processed_at=timezone.now(),  # claim time while processing
    )
    return StripeEvent.objects.get(pk=event_pk) if claimed else None


def stripe_event_process(*, event_pk: int) -> str | None:
    """Process one stored event; returns its final status, or None if someone else has it."""
    event = _claim(event_pk)
    if event is None:
        return None
    handler = HANDLERS.get(event.type)
    try:
        if handler is None:
            status = StripeEventStatus.IGNORED
        else:
            handled = handler(event.payload["data"]["object"])
            status = StripeEventStatus.PROCESSED if handled else StripeEventStatus.IGNORED
    except Exception as exc:
        StripeEvent.objects.filter(pk=event.pk).update(
            status=StripeEventStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        raise
    StripeEvent.objects.filter(pk=event.pk).update(
        status=status, error="", processed_at=timezone.now()
    )
    return status


def stripe_events_stuck() -> list[int]:
    """Ids the sweeper re-enqueues: never processed, failed, or claimed and abandoned."""
    old = timezone.now() - STUCK_AFTER
    return list(
        StripeEvent.objects.filter(
            Q(status=StripeEventStatus.RECEIVED, received_at__lt=old)
            | Q(status=StripeEventStatus.FAILED)
            | Q(status=StripeEventStatus.PROCESSING, processed_at__lt=old),
            attempts__lt=MAX_ATTEMPTS,
        ).values_list("pk", flat=True)[:500]
    )


# --- handlers: each re-reads Stripe and calls idempotent services; False = not ours -----------


def _payment_for(metadata: dict[str, Any] | None) -> Payment | None:
    payment_id = (metadata or {}).get("payment_id")
    if not payment_id or not str(payment_id).isdigit():
        return None
    return Payment.objects.filter(pk=int(payment_id)).first()


def _intent_succeeded(payment: Payment, intent: dict[str, Any] | None) -> bool:
    if not intent or intent.get("status") != "succeeded":
        return False
    charge = intent.get("latest_charge") or {}
    txn = charge.get("balance_transaction") or {}
    if not isinstance(txn, dict) or "fee" not in txn:
        raise licences.PaymentError(f"Payment {payment.pk}: no balance transaction from Stripe.")
    licences.payment_succeeded(
        payment=payment,
        amount_minor=txn["amount"],
        fee_minor=txn["fee"],
        net_minor=txn["net"],
        payment_intent_id=intent["id"],
        charge_id=charge.get("id", ""),
        balance_transaction_id=txn.get("id", ""),
    )
    return True


def checkout_session_completed(obj: dict[str, Any]) -> bool:
    payment = _payment_for(obj.get("metadata"))
    if payment is None:
        return False
    session = stripe_client.checkout_session_retrieve(obj["id"])
    if session.get("payment_status") != "paid":
        return False
    return _intent_succeeded(payment, session.get("payment_intent"))


def payment_intent_payment_failed(obj: dict[str, Any]) -> bool:
    payment = _payment_for(obj.get("metadata"))
    if payment is None:
        return False
    intent = stripe_client.payment_intent_retrieve(obj["id"])
    if intent.get("status") == "succeeded":
        return False  # a later attempt succeeded; checkout.session.completed books it
    error = intent.get("last_payment_error") or {}
    licences.payment_failed(payment=payment, message=error.get("message") or "Card declined.")
    return True


def checkout_session_expired(obj: dict[str, Any]) -> bool:
    """An unpaid session expired (Stripe: after 24 hours): the next "Pay by card" starts a new
    payment with a new session rather than sending the buyer to a dead page."""
    payment = _payment_for(obj.get("metadata"))
    if payment is None or payment.checkout_session_id != obj.get("id"):
        return False
    licences.payment_checkout_expired(payment=payment)
    return True


def invoice_paid(obj: dict[str, Any]) -> bool:
    payment = _payment_for(obj.get("metadata"))
    if payment is None:
        return False
    invoice = stripe_client.invoice_retrieve(obj["id"])
    if invoice.get("status") != "paid":
        return False
    for item in (invoice.get("payments") or {}).get("data", []):
        intent_id = (item.get("payment") or {}).get("payment_intent")
        if isinstance(intent_id, dict):
            intent_id = intent_id.get("id")
        if intent_id and _intent_succeeded(
            payment, stripe_client.payment_intent_retrieve(intent_id)
        ):
            return True
    if invoice.get("amount_paid_off_stripe"):  # paid out of band: money reached the bank
        amount = invoice["amount_paid_off_stripe"]
        licences.payment_succeeded(
            payment=payment, amount_minor=amount, fee_minor=0, net_minor=amount, via="bank"
        )
        return True
    raise licences.PaymentError(f"Invoice {obj['id']} is paid but shows no payment.")


def invoice_payment_failed(obj: dict[str, Any]) -> bool:
    payment = _payment_for(obj.get("metadata"))
    if payment is None:
        return False
    invoice = stripe_client.invoice_retrieve(obj["id"])
    if invoice.get("status") == "paid":
        return False
    licences.payment_failed(
        payment=payment,
        message="An attempt to pay the invoice failed; it stays open until its due date.",
    )
    return True


def charge_refunded(obj: dict[str, Any]) -> bool:
    payment = (
        Payment.objects.filter(payment_intent_id=obj.get("payment_intent")).first()
        if obj.get("payment_intent")
        else None
    )
    if payment is None:
        return False
    for refund in stripe_client.refund_list(charge_id=obj["id"]):
        if refund.get("status") == "succeeded":
            licences.refund_record(
                payment=payment, stripe_refund_id=refund["id"], amount_minor=refund["amount"]
            )
    return True


def account_updated(obj: dict[str, Any]) -> bool:
    from royalties.services.payouts import payout_account_sync

    return payout_account_sync(stripe_account_id=str(obj.get("id") or "")) is not None


def transfer_changed(obj: dict[str, Any]) -> bool:
    from royalties.services.payouts import payout_transfer_refresh

    return payout_transfer_refresh(transfer_id=str(obj.get("id") or ""))


HANDLERS = {
    "account.updated": account_updated,
    "transfer.created": transfer_changed,
    "transfer.reversed": transfer_changed,
    "transfer.updated": transfer_changed,
    "checkout.session.completed": checkout_session_completed,
    "checkout.session.expired": checkout_session_expired,
    "payment_intent.payment_failed": payment_intent_payment_failed,
    "invoice.paid": invoice_paid,
    "invoice.payment_failed": invoice_payment_failed,
    "charge.refunded": charge_refunded,
}
