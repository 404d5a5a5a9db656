"""The local Stripe's own fixtures (``stripe_local.pytest_fixtures``), for these tests.

Elsewhere, list the plugin in the root conftest:
``pytest_plugins = ["stripe_local.pytest_fixtures"]``.
"""

from stripe_local.pytest_fixtures import (  # noqa: F401 - fixtures are found by name
    local_stripe,
    local_stripe_control,
    local_stripe_server,
    stripe_client,
    stripe_client_factory,
    stripe_webhook_recorder,
)
