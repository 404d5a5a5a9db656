"""A newcomer's first visit, in a real browser: sign up, register an organisation, invite a
colleague, create an API key, use it, revoke it."""

import pytest
from django.core import mail

from accounts.models import ApiKey, Invitation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_register_invite_and_manage_api_keys(page, live_server, artifacts):
    page.goto("/signup/")
    page.fill("#id_full_name", "Ada Lovelace")
    page.fill("#id_email", "ada@press.example")
    page.fill("#id_password", "analytical-engine-1843")
    page.click("button:has-text('Sign up')")

    page.wait_for_url("**/organisations/new/")
    page.fill("#id_name", "Lovelace Press")
    page.select_option("#id_kind", "rights_holder")
    page.select_option("#id_country", "GB")
    page.fill("#id_isni", "0000 0001 2146 438X")
    page.click("button:has-text('Register')")
    page.wait_for_url(live_server.url + "/")
    assert (
        page.locator(".msg-success").inner_text().startswith("Lovelace Press is registered as RH-")
    )

    page.click("details.menu summary")
    page.click(".menu-items >> text=Members")
    page.fill("#id_email", "charles@press.example")
    page.select_option("#id_role", "admin")
    page.click("button:has-text('Send invitation')")
    assert "Invitation sent to charles@press.example" in page.locator(".messages").inner_text()
    assert "charles@press.example" in page.locator("#invitations").inner_text()
    assert Invitation.objects.get().email == "charles@press.example"
    assert mail.outbox and "Lovelace Press" in mail.outbox[-1].subject

    page.click("details.menu summary")
    page.click(".menu-items >> text=API keys")
    page.fill("#id_name", "ingest pipeline")
    page.click("button:has-text('Create key')")
    raw_key = page.locator("[data-testid=new-key]").inner_text().strip()
    assert raw_key.startswith("bk_")
    me = page.request.get("/api/v1/me/", headers={"Authorization": f"Api-Key {raw_key}"})
    assert me.status == 200 and me.json()["organisation"]["name"] == "Lovelace Press"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-key='ingest pipeline'] button:has-text('Revoke')").click()
    page.wait_for_selector("tr[data-key='ingest pipeline'] .pill.off")
    assert ApiKey.objects.get().revoked_at is not None
    refused = page.request.get("/api/v1/me/", headers={"Authorization": f"Api-Key {raw_key}"})
    assert refused.status == 401

    page.click("nav >> text=Dashboard")
    assert page.locator("[data-testid=member-count]").inner_text() == "1"
    assert page.locator("[data-testid=key-count]").inner_text() == "0"
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert (artifacts / "dashboard.png").stat().st_size > 10_000
