"""Payouts in a real browser, through the local Stripe: a rights holder opens Payouts, clicks
Connect, completes Stripe's hosted onboarding form and comes back to an active payout account
(the return page re-reads the account from Stripe; the `account.updated` webhooks, held and
delivered afterwards, change nothing). Then an approver opens the approved cycle's payout
monitor, starts the payout run and watches it go from 0% to 100% (the rights holder paid; the
co-holder, with no account, held with the reason), reconciles it and sees "clean"; the holder
sees the payout in its history.

The cycle is the hand-computed one of the payout tests (rights holder 78,660; co-holder 2,484;
EUR minor units); the local Stripe's platform balance is funded to cover it."""

from __future__ import annotations

import pytest

from royalties.models import CycleStatus, PayoutAccount, PayoutRun, PayoutStatus
from royalties.tasks_payouts import payout_run_dispatch_task
from tests.licensing.payments_support import WEBHOOK_SECRET
from tests.royalties import payouts_support as ps

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def _log_in(page, live_server, email: str) -> None:
    page.goto("/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(live_server.url + "/")


def _context(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    return context


def test_holder_connects_through_stripe_onboarding_and_staff_pay_and_reconcile(
    page,
    browser,
    live_server,
    artifacts,
    local_stripe,
    settings,
    monkeypatch,
    operator,
    approver,
    licensee,
    rights_holder,
    co_holder,
):
    settings.STRIPE_API_BASE = local_stripe.url
    settings.STRIPE_SECRET_KEY = local_stripe.api_key
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    control = local_stripe.control
    control.webhook_endpoint_create(live_server.url + "/stripe/webhook/", secret=WEBHOOK_SECRET)
    control.webhooks_hold()
    control.balance_fund(1_000_000, "eur")
    cycle, _ = ps.build_approved_cycle(operator, approver, licensee, rights_holder, co_holder)

    # The rights holder connects its payout account through Stripe's hosted onboarding.
    _log_in(page, live_server, rights_holder.user.email)
    page.click("nav >> text=Payouts")
    page.wait_for_selector("#payout-account[data-state=not_connected]")
    assert "No payouts yet" in page.locator("#payout-history").inner_text()
    page.click("#connect")
    page.wait_for_url(local_stripe.url + "/connect/onboard/**")
    account = PayoutAccount.objects.get(organisation=rights_holder.organisation)
    assert account.stripe_account_id in page.locator("body").inner_text()
    page.screenshot(path=str(artifacts / "payout-onboarding.png"), full_page=True)
    page.click("button[name=action][value=submit]")
    page.wait_for_url(live_server.url + "/payouts/")
    page.wait_for_selector("#payout-account[data-state=active]")
    assert "Your payout account is active" in page.locator(".messages").inner_text()
    account.refresh_from_db()
    assert account.can_receive and account.details_submitted
    page.screenshot(path=str(artifacts / "payout-account-active.png"), full_page=True)

    # Stripe's account.updated webhooks arrive late and twice: nothing changes.
    deliveries = control.webhooks_flush(duplicate=True)
    assert deliveries and {d["status"] for d in deliveries} == {200}
    account.refresh_from_db()
    assert account.state == "active"

    # An approver starts the payout run from the cycle's monitor and watches it.
    staff_context = _context(browser, live_server)
    staff = staff_context.new_page()
    _log_in(staff, live_server, approver.user.email)
    staff.goto(f"/cycles/{cycle.pk}/")
    staff.click("#payout-monitor-link")
    staff.wait_for_selector("#payout-run[data-status=none]")
    queued = []
    monkeypatch.setattr(payout_run_dispatch_task, "delay", queued.append)
    staff.click("#start-run")
    staff.wait_for_selector("#payout-run[data-status=running][data-live=true]")
    assert staff.get_attribute("#payout-run [role=progressbar]", "aria-valuenow") == "0"
    assert staff.locator("[data-testid=count-pending]").inner_text() == "2"
    staff.wait_for_selector("html[data-charts-ready=true]")
    staff.screenshot(path=str(artifacts / "payout-run-started.png"), full_page=True)

    # Hold the page's polls while this thread runs the submissions (the live server shares the
    # test database connection), then let the page see the result.
    held, holding = [], [True]
    staff.route(
        "**/payouts/progress/",
        lambda route: held.append(route) if holding[0] else route.continue_(),
    )
    staff.wait_for_timeout(1_200)
    run = PayoutRun.objects.get(cycle=cycle)
    assert queued == [run.pk]
    payout_run_dispatch_task(run.pk)
    holding[0] = False
    for route in held:
        route.continue_()

    staff.wait_for_selector("#payout-run[data-status=done]", timeout=10_000)
    assert staff.get_attribute("#payout-run [role=progressbar]", "aria-valuenow") == "100"
    assert staff.locator("[data-testid=run-percent]").inner_text() == "100%"
    assert staff.locator("[data-testid=cycle-status]").inner_text() == "Paid"
    assert staff.locator("[data-testid=amount-paid]").inner_text() == "786.60 EUR"
    assert staff.locator("[data-testid=amount-held]").inner_text() == "24.84 EUR"
    assert "No payout account is connected" in staff.locator("#holds").inner_text()
    assert staff.locator("#resume-run").count() == 0
    staff.wait_for_selector("html[data-charts-ready=true]")
    staff.screenshot(path=str(artifacts / "payout-run-done.png"), full_page=True)

    staff.click("#reconcile")
    staff.wait_for_selector("#reconciliation[data-clean=true]")
    assert staff.locator("[data-testid=reconciliation-result]").inner_text() == "Clean"
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CLOSED
    staff.screenshot(path=str(artifacts / "payout-reconciled.png"), full_page=True)
    staff_context.close()

    # The holder sees the payout, paid, in its history.
    mine = ps.payout_of(rights_holder, cycle)
    assert mine.status == PayoutStatus.PAID and mine.amount_minor == ps.RIGHTS_HOLDER_OWED
    page.goto("/payouts/")
    row = page.locator(f"#payout-history tr[data-payout='{mine.pk}']")
    assert row.get_attribute("data-status") == "paid"
    assert mine.transfer_id in row.inner_text() and "786.60 EUR" in row.inner_text()
    assert page.locator("#payout-history tbody tr").count() == 1
    page.screenshot(path=str(artifacts / "payout-history.png"), full_page=True)
