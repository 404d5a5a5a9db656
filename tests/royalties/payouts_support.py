"""Builders for the payout tests: an approved cycle (the hand-computed scenario of
test_cycles: the rights holder is owed 78,660 and the co-holder 2,484, EUR minor units), the
local Stripe with a funded platform balance, and holders' connected accounts."""

from __future__ import annotations

import pytest

from accounts.models import Membership
from accounts.scoping import Caller
from royalties.models import Payout, PayoutAccount
from royalties.services import payouts
from tests.licensing.declarations_support import ISBN_A, ISBN_B
from tests.licensing.factories import catalogue_for, work_in
from tests.royalties import cycles_support as cs

ISBN_C = "9780262033848"
RIGHTS_HOLDER_OWED = 78_660
CO_HOLDER_OWED = 2_484


def holder_caller(persona) -> Caller:
    role = Membership.objects.get(user=persona.user, organisation=persona.organisation).role
    return Caller(user=persona.user, organisation=persona.organisation, role=role)


def build_approved_cycle(operator, approver, licensee, rights_holder, co_holder, period="2026-Q3"):
    catalogue = catalogue_for(rights_holder, "Backlist")
    shares_c = [
        {"holder": rights_holder.organisation.code, "share": "50"},
        {"holder": co_holder.organisation.code, "share": "30"},
    ]
    work_in(catalogue, rights_holder, "A", isbn=ISBN_A)
    work_in(catalogue, rights_holder, "B", isbn=ISBN_B)
    work_in(catalogue, rights_holder, "C", isbn=ISBN_C, shares=shares_c)
    cs.policy(operator, admin_fee_bp=1000)
    licence = cs.paid_licence(licensee, operator)
    cs.usage(
        licensee, licence, [("isbn", ISBN_A, 600), ("isbn", ISBN_B, 300), ("isbn", ISBN_C, 100)]
    )
    cycle = cs.allocate(operator, period)
    return cs.approve(approver, cycle), licence


def connect(persona, control) -> PayoutAccount:
    """Connect the holder's payout account through the service and finish Stripe's onboarding
    (what the holder does in the browser); the account is synced as the webhook would."""
    payouts.payout_account_connect(
        caller=holder_caller(persona),
        return_url="http://testserver/payouts/return/",
        refresh_url="http://testserver/payouts/refresh/",
    )
    account = PayoutAccount.objects.get(organisation=persona.organisation)
    control.account_complete_onboarding(account.stripe_account_id)
    return payouts.payout_account_sync(stripe_account_id=account.stripe_account_id)


def transfers_by_payout(stripe_client) -> dict[str, int]:
    """Transfers that exist at the local Stripe, counted per payout id (their metadata)."""
    counts: dict[str, int] = {}
    for transfer in stripe_client.v1.transfers.list({"limit": 100}).auto_paging_iter():
        key = str(transfer.metadata.to_dict().get("payout_id"))
        counts[key] = counts.get(key, 0) + 1
    return counts


def executed_transfer_keys(control) -> dict[str, int]:
    """Idempotency keys under which the local Stripe really created a transfer (replays of a
    saved answer are not executions), counted per payout."""
    counts: dict[str, int] = {}
    for execution in control.idempotent_executions(path="/v1/transfers"):
        if execution["status"] == 200 and str(execution["object_id"]).startswith("tr_"):
            payout_id = execution["key"].split(":")[1]
            counts[payout_id] = counts.get(payout_id, 0) + 1
    return counts


def payout_of(persona, cycle) -> Payout:
    return Payout.objects.get(cycle=cycle, holder=persona.organisation)


@pytest.fixture
def payout_stripe(stripe_control, settings):
    """The local Stripe for payouts: short back-offs so the sweeper acts at once in tests, and
    a platform balance that covers the cycle."""
    settings.PAYOUT_BACKOFF_SECONDS = 0
    settings.PAYOUT_STUCK_SECONDS = 0
    stripe_control.balance_fund(1_000_000, "eur")
    return stripe_control
