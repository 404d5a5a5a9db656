"""Signed webhooks: verification with the SDK, retries, held, reordered and duplicated delivery."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from stripe_local.pytest_fixtures import WEBHOOK_SECRET
from stripe_local.signing import sign_payload, signature_header
from tests.stripe_local.helpers import checkout_session_create


def _paid_session(client, control):
    session = checkout_session_create(client)
    control.checkout_session_pay(session.id)
    assert control.webhooks_wait()
    return session


def test_deliveries_verify_with_construct_event(
    stripe_client, local_stripe_control, stripe_webhook_recorder
):
    session = _paid_session(stripe_client, local_stripe_control)

    events = [
        stripe.Webhook.construct_event(r.body, r.signature, WEBHOOK_SECRET)
        for r in stripe_webhook_recorder.received
    ]
    types = [e.type for e in events]
    assert types == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = events[-1]
    assert completed.data.object.id == session.id
    assert completed.data.object.payment_status == "paid"
    assert completed.api_version == "2026-10-28.endive"
    # the event as delivered is the event as listed
    assert stripe_client.v1.events.retrieve(completed.id).data.object.id == session.id


def test_wrong_secret_tampered_body_and_stale_timestamp_are_refused(
    stripe_client, local_stripe_control, stripe_webhook_recorder
):
    _paid_session(stripe_client, local_stripe_control)
    delivery = stripe_webhook_recorder.received[-1]

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_wrong")
    tampered = delivery.body.replace(b'"paid"', b'"unpaid"')
    assert tampered != delivery.body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered, delivery.signature, WEBHOOK_SECRET)
    _, stale = sign_payload(delivery.body, WEBHOOK_SECRET, timestamp=int(time.time()) - 600)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(delivery.body, stale["Stripe-Signature"], WEBHOOK_SECRET)


def test_sdk_accepts_future_timestamps_so_the_receiver_must_refuse_them(local_stripe):
    """stripe-python only rejects *old* timestamps; Blanket's receiver adds the future check."""
    payload = json.dumps(
        {"id": "evt_future", "object": "event", "type": "ping", "data": {"object": {}}}
    )
    future = signature_header(payload, WEBHOOK_SECRET, timestamp=int(time.time()) + 3600)
    assert stripe.Webhook.construct_event(payload, future, WEBHOOK_SECRET).id == "evt_future"


def test_failed_deliveries_are_retried_a_bounded_number_of_times(
    stripe_client, local_stripe_control, stripe_webhook_recorder
):
    local_stripe_control.webhooks_configure(max_attempts=3, retry_delay=0.01)
    stripe_webhook_recorder.fail_next(500, 500)
    stripe_client.v1.customers.create({"email": "x@ai.example"})
    assert local_stripe_control.webhooks_wait()
    attempts = [(d["attempt"], d["status"]) for d in local_stripe_control.webhook_deliveries()]
    assert attempts == [(1, 500), (2, 500), (3, 200)]

    stripe_webhook_recorder.fail_next(500, 500, 500)
    stripe_client.v1.customers.create({"email": "y@ai.example"})
    assert local_stripe_control.webhooks_wait()
    assert len(local_stripe_control.webhook_deliveries()) == 6  # gave up after 3 attempts
    assert len(stripe_webhook_recorder.accepted()) == 1


def test_held_events_flush_reversed_and_duplicated(
    stripe_client, local_stripe_control, stripe_webhook_recorder
):
    local_stripe_control.webhooks_hold()
    session = checkout_session_create(stripe_client)
    local_stripe_control.checkout_session_pay(session.id)
    assert stripe_webhook_recorder.received == []
    held = local_stripe_control.webhooks_held()
    assert [h["type"] for h in held][-1] == "checkout.session.completed"
    # what a Django test client would POST: already signed
    signed = held[0]
    assert (
        stripe.Webhook.construct_event(
            signed["payload"], signed["headers"]["Stripe-Signature"], WEBHOOK_SECRET
        ).type
        == held[0]["type"]
    )

    deliveries = local_stripe_control.webhooks_flush(order="reverse", duplicate=True)

    assert all(d["ok"] for d in deliveries)
    received = [json.loads(r.body) for r in stripe_webhook_recorder.received]
    expected = [h["event_id"] for h in reversed(held)]
    assert [e["id"] for e in received] == expected + expected
    assert received[0]["type"] == "checkout.session.completed"


def test_connect_endpoints_receive_only_connected_account_events(
    stripe_client, local_stripe_control, stripe_webhook_recorder
):
    from stripe_local.recorder import WebhookRecorder

    connect = WebhookRecorder().start()
    try:
        local_stripe_control.webhook_endpoint_create(
            connect.url, secret="whsec_connect", connect=True
        )
        account = stripe_client.v1.accounts.create({"type": "express"})
        stripe_client.v1.customers.create({"email": "x@ai.example"})
        local_stripe_control.account_complete_onboarding(account.id)
        assert local_stripe_control.webhooks_wait()
        events = [
            stripe.Webhook.construct_event(r.body, r.signature, "whsec_connect")
            for r in connect.received
        ]
        assert [(e.type, e.account) for e in events] == [("account.updated", account.id)]
        assert events[0].data.object.payouts_enabled is True
        assert events[0].data.previous_attributes.payouts_enabled is False
    finally:
        connect.stop()
