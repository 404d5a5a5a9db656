"""The Stripe webhook endpoint: signatures verified, every event stored once, bad ones refused."""

from __future__ import annotations

import json
import time

import pytest

from licensing.models import LicenceStatus, StripeEvent
from licensing.services import licences
from stripe_local.signing import signature_header
from tests.licensing.factories import caller_of
from tests.licensing.payments_support import (
    WEBHOOK_PATH,
    WEBHOOK_SECRET,
    licence_for,
)


@pytest.fixture
def held_completion(licensee, product, stripe_control):
    licence = licence_for(licensee, product)
    payment = licences.licence_checkout_start(caller=caller_of(licensee), licence=licence)
    stripe_control.checkout_session_pay(payment.checkout_session_id)
    held = stripe_control.webhooks_held()
    completed = next(h for h in held if h["type"] == "checkout.session.completed")
    return licence, completed


def _post(client, payload, signature):
    return client.post(
        WEBHOOK_PATH, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


@pytest.mark.parametrize(
    "case", ["wrong_secret", "tampered", "stale", "future", "missing", "garbage"]
)
def test_bad_signatures_are_refused_and_nothing_is_stored(client, held_completion, case):
    licence, delivery = held_completion
    payload = delivery["payload"]
    now = int(time.time())
    signature = {
        "wrong_secret": signature_header(payload, "whsec_forged"),
        "tampered": delivery["headers"]["Stripe-Signature"],
        "stale": signature_header(payload, WEBHOOK_SECRET, timestamp=now - 301),
        "future": signature_header(payload, WEBHOOK_SECRET, timestamp=now + 120),
        "missing": "",
        "garbage": "t=abc,v1=zzz",
    }[case]
    if case == "tampered":
        payload = payload.replace('"paid"', '"unpaid"', 1)

    response = _post(client, payload, signature)

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.PENDING_PAYMENT


def test_a_small_clock_skew_into_the_future_is_accepted(
    client, held_completion, django_capture_on_commit_callbacks
):
    licence, delivery = held_completion
    signature = signature_header(
        delivery["payload"], WEBHOOK_SECRET, timestamp=int(time.time()) + 30
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, delivery["payload"], signature).status_code == 200
    licence.refresh_from_db()
    assert licence.status == LicenceStatus.ACTIVE


def test_an_event_is_stored_once_and_processed_once(
    client, held_completion, django_capture_on_commit_callbacks
):
    _, delivery = held_completion
    signature = delivery["headers"]["Stripe-Signature"]
    with django_capture_on_commit_callbacks(execute=True) as first:
        assert _post(client, delivery["payload"], signature).status_code == 200
    with django_capture_on_commit_callbacks(execute=True) as second:
        response = _post(client, delivery["payload"], signature)
    assert response.status_code == 200
    assert json.loads(response.content)["duplicate"] is True
    assert (len(first), len(second)) == (1, 0)
    event = StripeEvent.objects.get()
    assert (event.event_id, event.status, event.attempts) == (delivery["event_id"], "processed", 1)


def test_unknown_event_types_are_stored_and_ignored(
    db, client, django_capture_on_commit_callbacks, stripe_control
):
    payload = json.dumps(
        {
            "id": "evt_unknown_1",
            "object": "event",
            "type": "customer.created",
            "created": int(time.time()),
            "data": {"object": {"id": "cus_1"}},
        }
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, payload, signature_header(payload, WEBHOOK_SECRET))
    assert response.status_code == 200
    assert StripeEvent.objects.get().status == "ignored"


def test_get_is_not_allowed(db, client):
    assert client.get(WEBHOOK_PATH).status_code == 405
