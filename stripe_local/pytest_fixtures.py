"""pytest fixtures: ``pytest_plugins = ["stripe_local.pytest_fixtures"]``.

- ``local_stripe``: one server for the session, reset before each test (state, webhook
  endpoints and modes, failure rules, logs), so tests never see each other's objects.
- ``local_stripe_control``: ``Control`` for the ``/_test`` helpers.
- ``stripe_client``: the real SDK pointed at it - ``max_network_retries=2``, a 5 s HTTP timeout.
- ``stripe_client_factory``: the same with other options, e.g. a short timeout for timeout
  tests or ``stripe_account=`` for Connect calls.
- ``stripe_webhook_recorder``: a ``WebhookRecorder`` registered as an endpoint (secret
  ``WEBHOOK_SECRET``).

No database and no network beyond 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe

from stripe_local.control import Control
from stripe_local.recorder import WebhookRecorder
from stripe_local.sdk import stripe_client_for
from stripe_local.server import LocalStripe

WEBHOOK_SECRET = "whsec_local_test_secret"


@pytest.fixture(scope="session")
def local_stripe_server() -> Iterator[LocalStripe]:
    server = LocalStripe()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def local_stripe(local_stripe_server: LocalStripe) -> LocalStripe:
    local_stripe_server.reset()
    return local_stripe_server


@pytest.fixture
def local_stripe_control(local_stripe: LocalStripe) -> Control:
    return local_stripe.control


@pytest.fixture
def stripe_client_factory(local_stripe: LocalStripe) -> Callable[..., stripe.StripeClient]:
    def make(**options: Any) -> stripe.StripeClient:
        options.setdefault("timeout", 5.0)
        return stripe_client_for(local_stripe.url, api_key=local_stripe.api_key, **options)
    return make


@pytest.fixture
def stripe_client(stripe_client_factory: Callable[..., stripe.StripeClient],
                  ) -> stripe.StripeClient:
    return stripe_client_factory()


@pytest.fixture
def stripe_webhook_recorder(local_stripe: LocalStripe) -> Iterator[WebhookRecorder]:
    recorder = WebhookRecorder().start()
    local_stripe.control.webhook_endpoint_create(recorder.url, secret=WEBHOOK_SECRET)
    yield recorder
    recorder.stop()
