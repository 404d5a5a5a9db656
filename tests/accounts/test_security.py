"""Authentication hardening: login lockout, API budgets, password policy, staff TOTP, sessions.

The rest of the suite runs with django-axes off and API budgets out of reach (test settings);
each test here switches on the real thing with the `settings` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from accounts import security
from accounts.demo import demo_accounts_seed
from accounts.models import AuditEvent, User
from accounts.throttling import RegistryBurstThrottle, RegistryRateThrottle
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests/factories.py
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # throttle counters outlive tests in the per-process cache
    yield
    cache.clear()


@pytest.fixture
def lockout(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    return settings


def _login(client: Client, email: str, password: str, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def _travel(monkeypatch, delta: timedelta) -> None:
    """Move django-axes' clock (it stamps and judges attempts with this `now`)."""
    import axes.handlers.proxy

    real_now = timezone.now
    monkeypatch.setattr(axes.handlers.proxy, "now", lambda: real_now() + delta)


# --- login lockout --------------------------------------------------------------------------


def test_five_failed_logins_lock_the_email_out_from_that_address(lockout, client):
    user = UserFactory(email="ada@example.test")
    for _ in range(4):
        response = _login(client, user.email, "wrong-password")
        assert response.status_code == 200
        assert "Please enter a correct email and password" in response.content.decode()
    fifth = _login(client, user.email, "wrong-password")
    assert fifth.status_code == 429
    assert fifth["Retry-After"] == str(15 * 60)
    page = fifth.content.decode()
    assert 'data-testid="lockout"' in page and "paused for 15 minutes" in page
    # Locked out: even the right password is refused, and no session starts.
    refused = _login(client, user.email, PASSWORD)
    assert refused.status_code == 429
    assert client.get(reverse("dashboard")).status_code == 302


def test_the_lockout_is_per_email_and_address(lockout):
    user = UserFactory(email="ada@example.test")
    other = UserFactory(email="bob@example.test")
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(5):
        _login(attacker, user.email, "wrong-password")
    assert _login(attacker, user.email, PASSWORD).status_code == 429
    # The same person from their own address, and another email from the attacker's, still work.
    assert _login(Client(REMOTE_ADDR="198.51.100.7"), user.email, PASSWORD).status_code == 302
    assert _login(attacker, other.email, PASSWORD).status_code == 302


def test_email_case_does_not_buy_more_tries(lockout, client):
    user = UserFactory(email="ada@example.test")
    spellings = ("ada@example.test", "ADA@example.test", "Ada@Example.Test", "ada@EXAMPLE.test")
    for spelling in spellings:
        _login(client, spelling, "wrong-password")
    assert _login(client, " ADA@EXAMPLE.TEST", "wrong-password").status_code == 429
    assert _login(client, user.email, PASSWORD).status_code == 429


def test_the_lockout_ends_after_the_cool_off(lockout, client, monkeypatch):
    user = UserFactory(email="ada@example.test")
    for _ in range(5):
        _login(client, user.email, "wrong-password")
    _travel(monkeypatch, timedelta(minutes=14))
    assert _login(client, user.email, PASSWORD).status_code == 429
    _travel(monkeypatch, timedelta(minutes=15, seconds=5))
    assert _login(client, user.email, PASSWORD).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_successful_login_resets_the_count(lockout, client):
    user = UserFactory(email="ada@example.test")
    for _ in range(4):
        _login(client, user.email, "wrong-password")
    assert _login(client, user.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        assert _login(client, user.email, "wrong-password").status_code == 200
    assert _login(client, user.email, PASSWORD).status_code == 302


def test_a_json_caller_gets_the_lockout_as_an_api_error(lockout, client):
    user = UserFactory(email="ada@example.test")
    for _ in range(5):
        response = _login(client, user.email, "wrong-password", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    body = response.json()
    assert body["error"]["code"] == "locked_out"
    assert body["error"]["details"] == {"retry_after_seconds": 900}


def test_the_client_address_comes_from_trusted_proxies_only(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7"
    )
    settings.TRUSTED_PROXY_COUNT = 0
    assert security.client_ip(request) == "10.0.0.1"  # a client-set header is ignored
    settings.TRUSTED_PROXY_COUNT = 1
    assert security.client_ip(request) == "198.51.100.7"  # what our one proxy saw


# --- API budgets ----------------------------------------------------------------------------


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_an_api_key_is_refused_with_429_and_retry_after_past_its_rate(
    settings, rights_holder, api_client_for
):
    _rates(settings, api_key="3/minute")
    client = api_client_for(rights_holder.organisation)
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    refused = client.get("/api/v1/me/")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json()["error"]["code"] == "throttled"
    assert set(refused.json()["error"]) == {"code", "message", "details"}
    # Another key of the same organisation has its own budget.
    second = api_client_for(rights_holder.organisation, "second")
    assert second.get("/api/v1/me/").status_code == 200


def test_people_and_api_keys_have_separate_budgets(settings, rights_holder, api_client_for):
    _rates(settings, api_key="2/minute", user="4/minute")
    key_client = api_client_for(rights_holder.organisation)
    person = rights_holder.client()
    for _ in range(2):
        assert key_client.get("/api/v1/me/").status_code == 200
    assert key_client.get("/api/v1/me/").status_code == 429
    for _ in range(4):
        assert person.get("/api/v1/me/").status_code == 200
    assert person.get("/api/v1/me/").status_code == 429


def test_anonymous_callers_have_a_budget_per_address(settings):
    _rates(settings, anon="2/minute")
    first, second = APIClient(REMOTE_ADDR="203.0.113.1"), APIClient(REMOTE_ADDR="203.0.113.2")
    assert [first.get("/api/schema/").status_code for _ in range(3)] == [200, 200, 429]
    assert second.get("/api/schema/").status_code == 200
    # A forged X-Forwarded-For does not buy a fresh budget (no trusted proxy is configured).
    forged = first.get("/api/schema/", HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert forged.status_code == 429


class _RegistryProbe(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [RegistryBurstThrottle, RegistryRateThrottle]

    def post(self, request):
        return Response({"ok": True})


def test_the_registry_burst_budget_counts_each_api_key_separately(
    settings, rights_holder, co_holder
):
    from accounts.services import api_key_create

    _rates(settings, registry_burst="2/second", registry="100/minute")
    view = _RegistryProbe.as_view()
    factory = APIRequestFactory()

    def call(raw_key=None, ip="203.0.113.5"):
        headers = {"HTTP_AUTHORIZATION": f"Api-Key {raw_key}"} if raw_key else {}
        return view(factory.post("/probe", {}, format="json", REMOTE_ADDR=ip, **headers))

    _, key_a = api_key_create(organisation=rights_holder.organisation, name="a")
    _, key_b = api_key_create(organisation=co_holder.organisation, name="b")
    assert [call(key_a).status_code for _ in range(3)] == [200, 200, 429]
    assert call(key_a)["Retry-After"] == "1"
    assert call(key_b).status_code == 200  # same address, other key: its own budget
    assert [call().status_code for _ in range(3)] == [200, 200, 429]  # anonymous, by address


# --- password policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, reason",
    [
        ("short-pass1", "at least 12 characters"),
        ("password1234", "too common"),
        ("123456789012345", "entirely numeric"),
        ("adalovelace12", "too similar to the email"),
    ],
)
def test_sign_up_names_the_password_rule_broken(client, password, reason):
    response = client.post(
        reverse("sign_up"), {"email": "ada.lovelace@example.test", "password": password}
    )
    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not User.objects.exists()


def test_password_change_applies_the_same_policy(client):
    user = UserFactory(email="ada@example.test")
    client.force_login(user)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200 and "at least 12 characters" in page.content.decode()
    weak = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "short-pass1", "new_password2": "short-pass1"},
    )
    assert weak.status_code == 200
    assert "This password is too short" in weak.content.decode()
    good = "a-much-longer-phrase-42"
    done = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": good, "new_password2": good},
    )
    assert done.status_code == 302 and done["Location"] == reverse("password_change_done")
    user.refresh_from_db()
    assert user.check_password(good)


def test_sign_up_ignores_a_next_link_to_another_site(client):
    response = client.post(
        reverse("sign_up") + "?next=https://evil.example/phish",
        {"email": "ada@example.test", "password": "a-long-passphrase-1"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("organisation_create")


# --- staff TOTP -----------------------------------------------------------------------------


def _code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The code the staff member's app shows, computed from the device's secret."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def _enrol(client: Client, user: User) -> TOTPDevice:
    page = client.get(reverse("otp_enrol"))
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    html = page.content.decode()
    assert "<svg" in html and "otpauth://totp/" in html
    assert security_secret(device) in html
    response = client.post(reverse("otp_enrol"), {"token": _code(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    return device


def security_secret(device: TOTPDevice) -> str:
    from accounts.two_factor import totp_secret

    return totp_secret(device=device)


def test_staff_enrol_totp_then_every_login_asks_for_the_code(operator, monkeypatch):
    staff = operator.user
    enrolling = Client()
    enrolling.force_login(staff)
    device = _enrol(enrolling, staff)
    assert AuditEvent.objects.filter(action="user.totp_enrolled", actor=staff).exists()
    assert enrolling.get(reverse("dashboard")).status_code == 200  # this session proved it

    client = Client()
    assert _login(client, staff.email, PASSWORD).status_code == 302
    held = client.get(reverse("dashboard"))
    assert held.status_code == 302
    assert held["Location"].startswith(reverse("otp_verify"))
    assert client.get("/api/v1/me/").json()["error"]["code"] == "otp_required"

    wrong = client.post(reverse("otp_verify"), {"token": "000000", "next": "/members/"})
    assert wrong.status_code == 200 and "That code is not right" in wrong.content.decode()
    assert client.get(reverse("dashboard")).status_code == 302

    # Each wrong code makes the next try wait (1 s, 2 s, 4 s...): guessing is slow.
    code = _code(device, steps_ahead=1)  # enrolment used this step's code; none works twice
    too_soon = client.post(reverse("otp_verify"), {"token": code, "next": "/members/"})
    assert "Too many wrong codes" in too_soon.content.decode()
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(seconds=2))
    ok = client.post(reverse("otp_verify"), {"token": code, "next": "/members/"})
    assert ok.status_code == 302 and ok["Location"] == "/members/"
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.get("/api/v1/me/").status_code == 200


def test_a_used_code_is_not_accepted_again(operator):
    staff = operator.user
    enrolling = Client()
    enrolling.force_login(staff)
    device = _enrol(enrolling, staff)
    client = Client()
    _login(client, staff.email, PASSWORD)
    code = _code(device, steps_ahead=1)
    assert client.post(reverse("otp_verify"), {"token": code}).status_code == 302
    replay = Client()
    _login(replay, staff.email, PASSWORD)
    assert replay.post(reverse("otp_verify"), {"token": code}).status_code == 200
    assert replay.get(reverse("dashboard")).status_code == 302


def test_staff_without_a_device_pass_unless_totp_is_required(settings, operator, rights_holder):
    staff = operator.client()
    assert staff.get(reverse("dashboard")).status_code == 200
    settings.STAFF_REQUIRE_OTP = True
    held = staff.get(reverse("dashboard"))
    assert held.status_code == 302 and held["Location"].startswith(reverse("otp_enrol"))
    assert staff.get("/api/v1/me/").status_code == 403
    assert staff.get(reverse("otp_enrol")).status_code == 200
    # People who are not staff never need it, and cannot enrol.
    member = rights_holder.client()
    assert member.get(reverse("dashboard")).status_code == 200
    assert member.get(reverse("otp_enrol")).status_code == 403


def test_api_keys_are_not_asked_for_a_code(settings, operator, api_client_for):
    settings.STAFF_REQUIRE_OTP = True
    client = api_client_for(operator.organisation)
    assert client.get("/api/v1/me/").status_code == 200


# --- sessions -------------------------------------------------------------------------------


def test_staff_sessions_end_with_the_browser(operator, rights_holder):
    staff = Client()
    assert _login(staff, operator.user.email, PASSWORD).status_code == 302
    assert staff.session.get_expire_at_browser_close()
    member = Client()
    assert _login(member, rights_holder.user.email, PASSWORD).status_code == 302
    assert not member.session.get_expire_at_browser_close()


def test_the_session_cookie_is_http_only_and_same_site(client):
    UserFactory(email="ada@example.test")
    response = _login(client, "ada@example.test", PASSWORD)
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_production_cookies_and_transport_settings_are_strict():
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        SECRET_KEY="k3y-" + "aZ9" * 20,
        ALLOWED_HOSTS="blanket.example.org",
        DATABASE_URL="postgres://blanket@127.0.0.1:5432/blanket",
        STRIPE_SECRET_KEY="sk_live_" + "x" * 24,
        STRIPE_WEBHOOK_SECRET="whsec_" + "y" * 24,
        STRIPE_API_BASE="https://api.stripe.com",
    )
    names = [
        "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_NAME", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_NAME", "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "AXES_ENABLED",
        "STAFF_SESSION_EXPIRE_AT_BROWSER_CLOSE", "DEMO_SEED_ALLOWED", "MIDDLEWARE",
        "AUTHENTICATION_BACKENDS",
    ]  # fmt: skip
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["SESSION_COOKIE_SECURE"] and got["SESSION_COOKIE_HTTPONLY"]
    assert got["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert got["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert got["CSRF_COOKIE_SECURE"] and got["CSRF_COOKIE_NAME"].startswith("__Host-")
    assert got["SECURE_SSL_REDIRECT"] and got["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert got["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert got["AXES_ENABLED"] and got["STAFF_SESSION_EXPIRE_AT_BROWSER_CLOSE"]
    assert got["DEMO_SEED_ALLOWED"] is False
    middleware = got["MIDDLEWARE"]
    assert middleware[-1] == "axes.middleware.AxesMiddleware"
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware[auth + 1 : auth + 3] == [
        "django_otp.middleware.OTPMiddleware",
        "accounts.middleware.StaffOtpMiddleware",
    ]
    assert got["AUTHENTICATION_BACKENDS"][0] == "axes.backends.AxesStandaloneBackend"


def test_the_demo_refuses_to_seed_its_published_password_in_production(settings):
    settings.DEMO_SEED_ALLOWED = False
    with pytest.raises(ImproperlyConfigured):
        demo_accounts_seed(society_name="Anything")
    assert not User.objects.exists()
