"""Refunds: partial then full, negative balance transactions, events."""

from __future__ import annotations

import pytest
import stripe

from tests.stripe_local.helpers import checkout_session_create, events_of


def _paid_intent(client, control, amount=10000):
    session = checkout_session_create(client, amount=amount)
    control.checkout_session_pay(session.id)
    return client.v1.checkout.sessions.retrieve(session.id).payment_intent


def test_partial_then_full_refund(stripe_client, local_stripe_control):
    intent_id = _paid_intent(stripe_client, local_stripe_control)

    partial = stripe_client.v1.refunds.create(
        {"payment_intent": intent_id, "amount": 3000, "metadata": {"reason": "scope"}}
    )
    rest = stripe_client.v1.refunds.create({"payment_intent": intent_id})

    assert (partial.amount, partial.status, rest.amount) == (3000, "succeeded", 7000)
    charge = stripe_client.v1.charges.retrieve(partial.charge, {"expand": ["refunds"]})
    assert (charge.amount_refunded, charge.refunded) == (10000, True)
    assert sorted(r.amount for r in charge.refunds.data) == [3000, 7000]
    txn = stripe_client.v1.balance_transactions.retrieve(partial.balance_transaction)
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.source) == (
        -3000,
        0,
        -3000,
        "refund",
        partial.id,
    )
    refunded = events_of(stripe_client, "charge.refunded")
    assert [e.data.object.amount_refunded for e in reversed(refunded)] == [3000, 10000]
    assert refunded[-1].data.previous_attributes.amount_refunded == 0
    assert len(events_of(stripe_client, "refund.created")) == 2
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.refunds.create({"payment_intent": intent_id})
    assert again.value.code == "charge_already_refunded"


def test_refund_more_than_was_charged_is_refused(stripe_client, local_stripe_control):
    intent_id = _paid_intent(stripe_client, local_stripe_control, amount=5000)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create({"payment_intent": intent_id, "amount": 5001})
    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
