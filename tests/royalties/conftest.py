"""Fixtures of the royalties tests: the local Stripe wiring of the licence tests, and the
payout helpers."""

from tests.licensing.payments_support import (  # noqa: F401 - fixtures are found by name
    deliver,
    stripe_control,
)
from tests.royalties.payouts_support import payout_stripe  # noqa: F401
