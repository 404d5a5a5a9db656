"""Connect: onboarding, transfers and their failures, payouts paid then failed, reconciliation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
import stripe

from tests.stripe_local.helpers import connected_account_create, events_of


def test_onboarding_through_the_hosted_page_enables_the_account(
    stripe_client, stripe_client_factory, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control, onboarded=False)
    assert (account.details_submitted, account.payouts_enabled) == (False, False)
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert "external_account" in account.requirements.currently_due
    assert account.capabilities.transfers == "inactive"
    assert account.metadata["organisation_id"] == "7"

    link = stripe_client.v1.account_links.create(
        {
            "account": account.id,
            "type": "account_onboarding",
            "refresh_url": "https://blanket.test/payouts/refresh",
            "return_url": "https://blanket.test/payouts/return",
        }
    )
    page = requests.get(link.url, timeout=5)
    assert page.status_code == 200
    assert account.id in page.text
    token = parse_qs(urlparse(link.url).query)["link"][0]
    done = requests.post(
        link.url.split("?")[0],
        data={
            "link": token,
            "action": "submit",
            "business_name": "Ada Lovelace",
            "iban": "DE89370400440532013000",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert (done.status_code, done.headers["Location"]) == (
        303,
        "https://blanket.test/payouts/return",
    )
    # an account link is single-use: opening it again sends the browser to refresh_url
    reused = requests.get(link.url, allow_redirects=False, timeout=5)
    assert reused.headers["Location"] == "https://blanket.test/payouts/refresh"

    account = stripe_client.v1.accounts.retrieve(account.id)
    assert (account.details_submitted, account.payouts_enabled) == (True, True)
    assert account.capabilities.transfers == "active"
    assert (account.requirements.currently_due, account.requirements.disabled_reason) == ([], None)
    assert account.external_accounts.data[0].last4 == "3000"
    as_itself = stripe_client_factory(stripe_account=account.id)
    assert as_itself.v1.accounts.retrieve_current().id == account.id
    updates = list(as_itself.v1.events.list({"type": "account.updated"}).auto_paging_iter())
    assert [(e.account, e.data.object.payouts_enabled) for e in updates] == [(account.id, True)]
    assert events_of(stripe_client, "account.updated") == []  # a Connect event, not the platform's
    assert stripe_client.v1.accounts.login_links.create(account.id).url.endswith(account.id)


def test_transfer_draws_on_available_balance_and_fails_when_short(
    stripe_client, stripe_client_factory, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(10000, "eur")
    transfer = stripe_client.v1.transfers.create(
        {
            "amount": 6000,
            "currency": "eur",
            "destination": account.id,
            "transfer_group": "cycle-2026Q1",
            "metadata": {"payout_id": "501"},
        },
        {"idempotency_key": "payout:501"},
    )
    assert (transfer.amount, transfer.destination, transfer.reversed) == (6000, account.id, False)
    platform_txn = stripe_client.v1.balance_transactions.retrieve(transfer.balance_transaction)
    assert (platform_txn.type, platform_txn.amount, platform_txn.source) == (
        "transfer",
        -6000,
        transfer.id,
    )
    balance = stripe_client.v1.balance.retrieve()
    assert [(b.currency, b.amount) for b in balance.available] == [("eur", 4000)]
    connected = stripe_client_factory(stripe_account=account.id)
    assert [(b.currency, b.amount) for b in connected.v1.balance.retrieve().available] == [
        ("eur", 6000)
    ]
    assert [e.data.object.id for e in events_of(stripe_client, "transfer.created")] == [transfer.id]

    with pytest.raises(stripe.InvalidRequestError) as short:
        stripe_client.v1.transfers.create(
            {"amount": 4001, "currency": "eur", "destination": account.id}
        )
    assert (short.value.http_status, short.value.code) == (400, "balance_insufficient")
    assert short.value.error.type == "invalid_request_error"
    found = stripe_client.v1.transfers.list({"transfer_group": "cycle-2026Q1"})
    assert [t.metadata["payout_id"] for t in found.data] == ["501"]


def test_pending_card_funds_cannot_be_transferred_until_released(
    stripe_client, local_stripe_control
):
    from tests.stripe_local.helpers import checkout_session_create

    account = connected_account_create(stripe_client, local_stripe_control)
    session = checkout_session_create(stripe_client, amount=20000)
    local_stripe_control.checkout_session_pay(session.id)
    params = {"amount": 1000, "currency": "eur", "destination": account.id}
    with pytest.raises(stripe.InvalidRequestError, match="insufficient available funds"):
        stripe_client.v1.transfers.create(params)
    assert stripe_client.v1.balance.retrieve().pending[0].amount == 20000 - 325
    assert local_stripe_control.balance_release() == 1
    assert stripe_client.v1.transfers.create(params).amount == 1000


def test_restricted_or_deleted_destinations_are_refused(stripe_client, local_stripe_control):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(10000, "eur")
    local_stripe_control.account_restrict(
        account.id,
        disabled_reason="requirements.past_due",
        currently_due=["individual.verification.document"],
    )
    restricted = stripe_client.v1.accounts.retrieve(account.id)
    assert (restricted.payouts_enabled, restricted.requirements.disabled_reason) == (
        False,
        "requirements.past_due",
    )
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.transfers.create(
            {"amount": 100, "currency": "eur", "destination": account.id}
        )
    assert refused.value.code == "insufficient_capabilities_for_transfer"
    assert stripe_client.v1.accounts.delete(account.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError, match="No such destination"):
        stripe_client.v1.transfers.create(
            {"amount": 100, "currency": "eur", "destination": account.id}
        )


def test_reversal_returns_funds_to_the_platform(
    stripe_client, stripe_client_factory, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(10000, "eur")
    transfer = stripe_client.v1.transfers.create(
        {"amount": 3000, "currency": "eur", "destination": account.id}
    )
    reversal = stripe_client.v1.transfers.reversals.create(transfer.id, {"amount": 1000})
    assert (reversal.amount, reversal.transfer) == (1000, transfer.id)
    transfer = stripe_client.v1.transfers.retrieve(transfer.id)
    assert (transfer.amount_reversed, transfer.reversed) == (1000, False)
    assert [r.id for r in transfer.reversals.data] == [reversal.id]
    assert stripe_client.v1.balance.retrieve().available[0].amount == 8000
    connected = stripe_client_factory(stripe_account=account.id)
    assert connected.v1.balance.retrieve().available[0].amount == 2000
    reversed_event = events_of(stripe_client, "transfer.reversed")[0]
    assert reversed_event.data.previous_attributes.amount_reversed == 0


def test_payout_paid_then_failed_returns_the_funds(
    stripe_client, stripe_client_factory, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(10000, "eur")
    stripe_client.v1.transfers.create(
        {"amount": 5000, "currency": "eur", "destination": account.id}
    )
    connected = stripe_client_factory(stripe_account=account.id)
    payout = connected.v1.payouts.create({"amount": 5000, "currency": "eur"})
    assert (payout.status, payout.automatic) == ("pending", False)
    with pytest.raises(stripe.InvalidRequestError, match="No such payout"):
        stripe_client.v1.payouts.retrieve(payout.id)  # it belongs to the connected account

    local_stripe_control.payout_settle(payout.id, status="paid")
    local_stripe_control.payout_settle(payout.id, status="failed", failure_code="account_closed")

    failed = connected.v1.payouts.retrieve(payout.id)
    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    returned = connected.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (returned.type, returned.amount) == ("payout_failure", 5000)
    assert connected.v1.balance.retrieve().available[0].amount == 5000
    events = list(connected.v1.events.list({"type": "payout.*"}).auto_paging_iter())
    assert [(e.type, e.account) for e in reversed(events)] == [
        ("payout.created", account.id),
        ("payout.paid", account.id),
        ("payout.failed", account.id),
    ]


def test_automatic_payout_lists_what_it_carried(
    stripe_client, stripe_client_factory, local_stripe_control
):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(10000, "eur")
    transfers = [
        stripe_client.v1.transfers.create(
            {"amount": amount, "currency": "eur", "destination": account.id}
        )
        for amount in (1200, 800)
    ]
    [payout] = local_stripe_control.account_automatic_payout(account.id)
    assert (payout["amount"], payout["automatic"]) == (2000, True)
    connected = stripe_client_factory(stripe_account=account.id)
    carried = connected.v1.balance_transactions.list({"payout": payout["id"], "limit": 100})
    payments = {t.source for t in carried.data if t.type == "payment"}
    assert payments == {t.destination_payment for t in transfers}
    assert sum(t.net for t in carried.data) == 0  # the payout's own -2000 is in the list
    local_stripe_control.payout_settle(payout["id"], status="paid")
    assert connected.v1.payouts.retrieve(payout["id"]).reconciliation_status == "completed"


def test_unknown_stripe_account_header_is_forbidden(stripe_client_factory):
    with pytest.raises(stripe.PermissionError, match="does not have access"):
        stripe_client_factory(stripe_account="acct_nope").v1.balance.retrieve()
