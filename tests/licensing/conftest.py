"""Fixtures of the licence and payment tests (see payments_support)."""

from tests.licensing.payments_support import (  # noqa: F401 - fixtures are found by name
    deliver,
    product,
    stripe_control,
)
