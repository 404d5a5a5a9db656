"""The server as a process and under concurrent load."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import stripe

from tests.stripe_local.helpers import connected_account_create


def test_concurrent_retries_with_one_key_make_one_transfer(stripe_client, local_stripe_control):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(100000, "eur")
    params = {
        "amount": 700,
        "currency": "eur",
        "destination": account.id,
        "metadata": {"payout_id": "1"},
    }

    def send(_: int) -> str:
        return stripe_client.v1.transfers.create(params, {"idempotency_key": "payout:1"}).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(send, range(16)))

    assert len(ids) == 1
    assert len(stripe_client.v1.transfers.list().data) == 1
    assert len(local_stripe_control.idempotent_executions(path="/v1/transfers")) == 1


def test_concurrent_transfers_never_overdraw_the_balance(stripe_client, local_stripe_control):
    account = connected_account_create(stripe_client, local_stripe_control)
    local_stripe_control.balance_fund(5000, "eur")

    def send(n: int) -> bool:
        try:
            stripe_client.v1.transfers.create(
                {"amount": 1000, "currency": "eur", "destination": account.id},
                {"idempotency_key": f"payout:{n}"},
            )
        except stripe.InvalidRequestError as exc:
            assert exc.code == "balance_insufficient"
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, range(12)))

    assert results.count(True) == 5
    assert stripe_client.v1.balance.retrieve().available[0].amount == 0


def test_cli_serves_until_stopped():
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_local", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Local Stripe listening on http://127.0.0.1:")
        url = first.split()[4]
        with urllib.request.urlopen(f"{url}/_test/health", timeout=5) as response:
            assert json.load(response) == {"ok": True, "base_url": url}
    finally:
        process.terminate()
        process.wait(timeout=5)
