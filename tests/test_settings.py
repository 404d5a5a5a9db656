"""Production settings refuse insecure values; good values pass `check --deploy`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k3y-" + "aZ9" * 20,
    "ALLOWED_HOSTS": "blanket.example.org",
    "DATABASE_URL": "postgres://blanket@127.0.0.1:5432/blanket",
    "DEBUG": "false",
    "STRIPE_SECRET_KEY": "sk_live_" + "x" * 24,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "y" * 24,
    "STRIPE_API_BASE": "https://api.stripe.com",
}


def _run(env_changes: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in GOOD and k != "CELERY_BROKER_URL"}
    env.update({k: v for k, v in {**GOOD, **env_changes}.items() if v is not None})
    command = args or ("-c", "import django; django.setup()")
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is required"),
        (
            {"SECRET_KEY": "django-insecure-local-only-never-in-production"},
            "SECRET_KEY is a default",
        ),
        ({"SECRET_KEY": "short"}, "too weak"),
        ({"DEBUG": "yes"}, "DEBUG must be 'true' or 'false'"),
        ({"DEBUG": "Flase"}, "DEBUG must be 'true' or 'false'"),
        ({"DEBUG": "true"}, "DEBUG must be false in production"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS is required"),
        ({"ALLOWED_HOSTS": "*"}, "'*' is refused"),
        ({"DATABASE_URL": None}, "DATABASE_URL is required"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET is required"),
        ({"STRIPE_SECRET_KEY": "sk_test_local"}, "local test server"),
        ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "local test server"),
    ],
)
def test_production_refuses_to_start_on_insecure_settings(changes, reason):
    result = _run(changes)
    assert result.returncode != 0
    assert reason in result.stderr


def test_production_with_good_settings_passes_check_deploy():
    result = _run({}, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_a_boolean_setting_is_strict_everywhere():
    result = _run({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DEBUG": "on"})
    assert result.returncode != 0
    assert "DEBUG must be 'true' or 'false'" in result.stderr
