"""Point the real stripe-python SDK (v16) at a local server - the only module here that
imports ``stripe``.

``StripeClient`` takes ``base_addresses`` for the ``api``, ``connect`` and ``files`` hosts and
an ``http_client``; the request timeout belongs to the HTTP client (``RequestsClient(timeout=)``,
80 s by default). ``max_network_retries`` makes the SDK retry connection errors, timeouts, 409s
and 5xx (unless the server says ``Stripe-Should-Retry: false``) with the same idempotency key.
Nothing in the SDK is patched.
"""

from __future__ import annotations

import stripe

from stripe_local.server import DEFAULT_API_KEY


def stripe_client_for(base_url: str, *, api_key: str = DEFAULT_API_KEY, timeout: float = 10.0,
                      max_network_retries: int = 2,
                      stripe_account: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url, "connect": base_url, "files": base_url},
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=timeout),
        stripe_account=stripe_account,
    )
