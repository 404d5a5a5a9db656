"""Events: listing filters, pagination, ``request`` and the reset between tests."""

from __future__ import annotations

import time

from tests.stripe_local.helpers import checkout_session_create


def test_events_filter_by_type_wildcard_and_created(stripe_client, local_stripe_control):
    before = int(time.time())
    for n in range(12):
        stripe_client.v1.customers.create(
            {"email": f"c{n}@ai.example"}, {"idempotency_key": f"cust-{n}"}
        )
    session = checkout_session_create(stripe_client)
    local_stripe_control.checkout_session_pay(session.id)

    page = stripe_client.v1.events.list({"type": "customer.created", "limit": 5})
    assert (len(page.data), page.has_more, page.url) == (5, True, "/v1/events")
    every = list(
        stripe_client.v1.events.list({"type": "customer.created", "limit": 5}).auto_paging_iter()
    )
    assert len(every) == 12
    assert len({e.id for e in every}) == 12
    # newest first, and each event says which API request caused it
    assert every[0].request.idempotency_key == "cust-11"
    assert every[0].data.object.email == "c11@ai.example"
    charges = stripe_client.v1.events.list({"type": "charge.*"})
    assert [e.type for e in charges.data] == ["charge.succeeded"]
    assert charges.data[0].request.id is None  # caused by the hosted page, not the API
    recent = stripe_client.v1.events.list({"created": {"gte": before}, "limit": 100})
    assert len(recent.data) == 12 + 4
    assert stripe_client.v1.events.list({"created": {"gt": int(time.time()) + 5}}).data == []


def test_each_test_starts_from_a_clean_server(stripe_client):
    assert stripe_client.v1.events.list().data == []
    assert stripe_client.v1.customers.list().data == []
