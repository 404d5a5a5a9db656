"""A small, stateful, Stripe-compatible HTTP server for tests and the demo (dev only).

There is no internet here, ever: Blanket's code and the real ``stripe`` SDK talk to this
server over HTTP instead of api.stripe.com, and nothing patches the SDK. It keeps objects in
memory, speaks Stripe's v1 wire protocol (form-encoded requests, JSON objects, list objects,
error bodies, ``Idempotency-Key``, ``Stripe-Account``), signs webhooks as Stripe does, serves
hosted Checkout, invoice and Connect onboarding pages, and can inject failures.

Modules: ``server`` (``LocalStripe``, the request pipeline), ``router`` (routes, requests),
``wire`` (form decoding, params, lists), ``errors`` (Stripe's error bodies), ``state``
(objects, ids, events, expansion), ``money`` (balance transactions, fees), ``idempotency``,
``failures``, ``webhooks``, ``signing``, ``cards``, ``pages``, ``routes/<resource>.py``,
``control`` (client for the ``/_test`` helpers), ``sdk`` (a ``stripe.StripeClient`` pointed at
the server), ``recorder`` (a webhook receiver for tests), ``pytest_fixtures``.

Start: ``python -m stripe_local --port 12111`` or ``with LocalStripe() as server: ...``.
"""

from stripe_local.control import Control
from stripe_local.server import DEFAULT_API_KEY, LocalStripe

__all__ = ["DEFAULT_API_KEY", "Control", "LocalStripe"]
