"""Checkout through the real SDK: create, pay (helper and hosted page), decline, cancel, expire."""

from __future__ import annotations

import pytest
import requests
import stripe

from stripe_local.control import ControlError
from stripe_local.sdk import stripe_client_for
from tests.stripe_local.helpers import checkout_session_create, events_of


def test_paid_session_has_consistent_intent_charge_and_balance_transaction(
    stripe_client, local_stripe_control
):
    session = checkout_session_create(stripe_client, amount=12345)
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert session.url.endswith(f"/pay/{session.id}")

    result = local_stripe_control.checkout_session_pay(session.id)

    assert result["redirect_url"] == (f"https://blanket.test/licences/return?session={session.id}")
    paid = stripe_client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge.balance_transaction"]}
    )
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    assert paid.customer_details.email == "buyer@ai.example"
    intent = paid.payment_intent
    charge = intent.latest_charge
    txn = charge.balance_transaction
    assert (intent.status, intent.amount_received, intent.metadata["licence_id"]) == (
        "succeeded",
        12345,
        "42",
    )
    assert (charge.status, charge.paid, charge.amount, charge.payment_intent) == (
        "succeeded",
        True,
        12345,
        intent.id,
    )
    assert charge.payment_method_details.card.last4 == "4242"
    fee = (12345 * 15 + 500) // 1000 + 25  # 185 + 25
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.source) == (
        12345,
        fee,
        12345 - fee,
        "charge",
        charge.id,
    )
    assert txn.fee_details[0].type == "stripe_fee"
    assert txn.status == "pending"  # 4242 funds are pending, as in test mode
    completed = events_of(stripe_client, "checkout.session.completed")
    assert [e.data.object.id for e in completed] == [session.id]
    assert completed[0].data.object.metadata["licence_id"] == "42"
    assert [e.data.object.id for e in events_of(stripe_client, "payment_intent.succeeded")] == [
        intent.id
    ]


def test_declined_card_leaves_session_open_and_emits_payment_failed(
    stripe_client, local_stripe_control
):
    session = checkout_session_create(stripe_client)

    result = local_stripe_control.checkout_session_pay(session.id, card="4000 0000 0000 0002")

    assert result["status"] == "declined"
    assert result["error"]["type"] == "card_error"
    assert result["error"]["decline_code"] == "generic_decline"
    session = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("open", "unpaid")
    intent = stripe_client.v1.payment_intents.retrieve(session.payment_intent)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "generic_decline"
    assert stripe_client.v1.charges.retrieve(intent.latest_charge).status == "failed"
    assert events_of(stripe_client, "checkout.session.completed") == []
    assert len(events_of(stripe_client, "payment_intent.payment_failed")) == 1
    # the customer tries another card on the same session and intent
    assert local_stripe_control.checkout_session_pay(session.id)["status"] == "succeeded"
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_hosted_page_pays_and_redirects_to_success_url(stripe_client, local_stripe):
    session = checkout_session_create(stripe_client, amount=2500)
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "25.00 EUR" in page.text
    assert 'value="4242 4242 4242 4242"' in page.text

    declined = requests.post(
        session.url,
        data={"card": "4000000000000002", "action": "pay"},
        allow_redirects=False,
        timeout=5,
    )
    assert declined.status_code == 402
    assert "declined" in declined.text

    paid = requests.post(
        session.url,
        data={"card": "4242 4242 4242 4242", "action": "pay"},
        allow_redirects=False,
        timeout=5,
    )
    assert paid.status_code == 303
    assert paid.headers["Location"] == (
        f"https://blanket.test/licences/return?session={session.id}"
    )
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_hosted_page_cancel_redirects_without_changing_the_session(stripe_client):
    session = checkout_session_create(stripe_client)
    cancel = requests.post(session.url, data={"action": "cancel"}, allow_redirects=False, timeout=5)
    assert cancel.status_code == 303
    assert cancel.headers["Location"] == "https://blanket.test/licences/cancelled"
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"


def test_expire_and_line_items(stripe_client, local_stripe_control):
    session = checkout_session_create(stripe_client, amount=700, currency="usd")
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.description, i.amount_total, i.price.unit_amount) for i in items.data] == [
        ("Blanket training licence", 700, 700)
    ]
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    with pytest.raises(stripe.InvalidRequestError, match="can be expired"):
        stripe_client.v1.checkout.sessions.expire(session.id)
    with pytest.raises(ControlError) as inactive:
        local_stripe_control.checkout_session_pay(session.id)
    assert inactive.value.body["error"]["code"] == "checkout_session_inactive"
    assert len(events_of(stripe_client, "checkout.session.expired")) == 1


def test_validation_errors_have_stripes_shape(stripe_client, local_stripe):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.checkout.sessions.create({"mode": "payment"})
    assert missing.value.param == "line_items"
    assert missing.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError, match="Received unknown parameter: colour"):
        checkout_session_create(stripe_client, colour="red")
    with pytest.raises(stripe.InvalidRequestError) as no_such:
        stripe_client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert (no_such.value.http_status, no_such.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError, match="only specify one"):
        customer = stripe_client.v1.customers.create({"email": "x@y.z"})
        checkout_session_create(stripe_client, customer=customer.id)


def test_missing_or_unknown_api_key_is_refused(local_stripe):
    with pytest.raises(stripe.AuthenticationError, match="Invalid API Key provided"):
        stripe_client_for(local_stripe.url, api_key="sk_test_wrong").v1.customers.list()
    raw = requests.get(f"{local_stripe.url}/v1/customers", timeout=5)
    assert raw.status_code == 401
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert "did not provide an API key" in raw.json()["error"]["message"]
    basic = requests.get(f"{local_stripe.url}/v1/customers", auth=("sk_test_local", ""), timeout=5)
    assert basic.status_code == 200
    assert basic.json() == {"object": "list", "data": [], "has_more": False, "url": "/v1/customers"}


def test_customers_create_update_and_metadata_unset(stripe_client):
    customer = stripe_client.v1.customers.create(
        {"email": "ops@ai.example", "name": "AI Co", "metadata": {"org": "1", "tier": "b"}}
    )
    updated = stripe_client.v1.customers.update(
        customer.id, {"name": "AI Company", "metadata": {"tier": ""}}
    )
    assert (updated.name, updated.metadata.to_dict()) == ("AI Company", {"org": "1"})
    assert stripe_client.v1.customers.retrieve(customer.id).email == "ops@ai.example"
    update = events_of(stripe_client, "customer.updated")[0]
    assert update.data.previous_attributes["name"] == "AI Co"
