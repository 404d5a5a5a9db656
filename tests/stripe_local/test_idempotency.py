"""Idempotency keys as Stripe documents them, and failures injected around them."""

from __future__ import annotations

import time

import pytest
import requests
import stripe

from tests.stripe_local.helpers import connected_account_create


def test_same_key_and_parameters_replay_the_saved_response(stripe_client, local_stripe_control):
    params = {"email": "buyer@ai.example", "metadata": {"org": "9"}}
    first = stripe_client.v1.customers.create(params, {"idempotency_key": "org-9-customer"})
    again = stripe_client.v1.customers.create(params, {"idempotency_key": "org-9-customer"})

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert again.last_response.idempotency_key == "org-9-customer"
    assert len(stripe_client.v1.customers.list().data) == 1
    assert len(local_stripe_control.idempotent_executions(path="/v1/customers")) == 1


def test_same_key_with_other_parameters_is_an_idempotency_error(stripe_client):
    stripe_client.v1.customers.create({"email": "a@ai.example"}, {"idempotency_key": "k1"})
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        stripe_client.v1.customers.create({"email": "b@ai.example"}, {"idempotency_key": "k1"})
    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        stripe_client.v1.accounts.create({"type": "express"}, {"idempotency_key": "k1"})


def test_a_request_that_failed_validation_is_not_saved(stripe_client):
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.refunds.create({}, {"idempotency_key": "refund-1"})
    customer = stripe_client.v1.customers.create(
        {"email": "x@ai.example"}, {"idempotency_key": "refund-1"}
    )
    assert customer.id.startswith("cus_")


def test_an_execution_error_is_saved_like_a_success(stripe_client, local_stripe_control):
    """balance_insufficient happens after execution begins: same key, same answer."""
    account = connected_account_create(stripe_client, local_stripe_control)
    params = {"amount": 5000, "currency": "eur", "destination": account.id}
    with pytest.raises(stripe.InvalidRequestError) as first:
        stripe_client.v1.transfers.create(params, {"idempotency_key": "payout-1"})
    assert first.value.code == "balance_insufficient"
    local_stripe_control.balance_fund(10000, "eur")
    with pytest.raises(stripe.InvalidRequestError) as replay:
        stripe_client.v1.transfers.create(params, {"idempotency_key": "payout-1"})
    assert replay.value.code == "balance_insufficient"
    assert replay.value.headers["Idempotent-Replayed"] == "true"
    # a new key (after checking that no transfer exists) goes through
    assert stripe_client.v1.transfers.list({"destination": account.id}).data == []
    assert (
        stripe_client.v1.transfers.create(params, {"idempotency_key": "payout-1:2"}).amount == 5000
    )


def test_a_saved_500_is_replayed_for_the_same_key(stripe_client, local_stripe_control):
    local_stripe_control.failure_add("/v1/customers", status=500)
    with pytest.raises(stripe.APIError) as first:
        stripe_client.v1.customers.create({"email": "x@ai.example"}, {"idempotency_key": "c-1"})
    assert first.value.http_status == 500
    assert first.value.headers["Stripe-Should-Retry"] == "false"
    with pytest.raises(stripe.APIError) as replay:
        stripe_client.v1.customers.create({"email": "x@ai.example"}, {"idempotency_key": "c-1"})
    assert replay.value.headers["Idempotent-Replayed"] == "true"
    assert stripe_client.v1.customers.list().data == []
    # once Stripe has pruned the key (after 24 hours), the same key executes afresh
    assert local_stripe_control.idempotency_expire("c-1") == 1
    assert (
        stripe_client.v1.customers.create(
            {"email": "x@ai.example"}, {"idempotency_key": "c-1"}
        ).email
        == "x@ai.example"
    )


def test_lost_response_after_effect_is_recovered_by_the_sdk_retry(
    stripe_client, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(50000, "eur")
    local_stripe_control.failure_add("/v1/transfers", status=500, after_effect=True)

    transfer = stripe_client.v1.transfers.create(
        {
            "amount": 1500,
            "currency": "eur",
            "destination": account.id,
            "transfer_group": "cycle-3",
            "metadata": {"payout_id": "88"},
        },
        {"idempotency_key": "payout:88"},
    )

    assert transfer.last_response.headers["Idempotent-Replayed"] == "true"
    assert [t.id for t in stripe_client.v1.transfers.list({"transfer_group": "cycle-3"}).data] == [
        transfer.id
    ]
    attempts = local_stripe_control.requests(path="/v1/transfers", method="POST")
    assert [(a["status"], a["replayed"], a["injected"]) for a in attempts] == [
        (200, False, "after-effect:500"),
        (200, True, None),
    ]
    executions = local_stripe_control.idempotent_executions(path="/v1/transfers")
    assert [(e["key"], e["object_id"]) for e in executions] == [("payout:88", transfer.id)]


def test_timeout_after_effect_then_retry_gets_the_original(
    stripe_client_factory, local_stripe_control
):
    client = stripe_client_factory(timeout=0.5, max_network_retries=1)
    account = connected_account_create(client, local_stripe_control)
    local_stripe_control.balance_fund(50000, "eur")
    local_stripe_control.failure_add(
        "/v1/transfers", status="timeout", after_effect=True, hang_seconds=3
    )
    started = time.monotonic()
    transfer = client.v1.transfers.create(
        {"amount": 900, "currency": "eur", "destination": account.id},
        {"idempotency_key": "payout:89"},
    )
    assert time.monotonic() - started < 3
    assert transfer.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(client.v1.transfers.list().data) == 1


def test_timeout_before_effect_without_retries_raises_connection_error(
    stripe_client_factory, local_stripe_control
):
    client = stripe_client_factory(timeout=0.5, max_network_retries=0)
    local_stripe_control.failure_add("/v1/customers", status="timeout", hang_seconds=3)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.create({"email": "x@ai.example"}, {"idempotency_key": "c-9"})
    assert client.v1.customers.list().data == []
    assert (
        client.v1.customers.create({"email": "x@ai.example"}, {"idempotency_key": "c-9"}).email
        == "x@ai.example"
    )


def test_other_injected_statuses(stripe_client, local_stripe, local_stripe_control):
    local_stripe_control.failure_add("/v1/customers", method="GET", status=429)
    with pytest.raises(stripe.RateLimitError):  # the SDK does not retry a 429
        stripe_client.v1.customers.list()
    local_stripe_control.failure_add("/v1/customers*", method="GET", status=503, count=2)
    raw = [
        requests.get(
            f"{local_stripe.url}/v1/customers", auth=("sk_test_local", ""), timeout=5
        ).status_code
        for _ in range(3)
    ]
    assert raw == [503, 503, 200]
