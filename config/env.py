"""Strict reading of settings from the environment.

django-environ parses URLs for us, but its booleans treat any unknown word as False ("Flase",
"no thanks"), which is how a production DEBUG ends up wrong without anyone noticing. Every
boolean here is `true` or `false` (any case) or the process refuses to start.
"""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def env_bool(name: str, *, default: bool) -> bool:
    raw = env.str(name, default=None)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be 'true' or 'false', not {raw!r}")


def env_int(name: str, *, default: int) -> int:
    raw = env.str(name, default=None)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, *, default: list[str] | None = None) -> list[str]:
    raw = env.str(name, default=None)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_str(name: str, *, default: str | None = None) -> str | None:
    raw = env.str(name, default=None)
    if raw is None or raw == "":
        return default
    return raw


def env_db(name: str = "DATABASE_URL", *, default: str) -> dict:
    url = env_str(name, default=default)
    try:
        return environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(f"{name} is not a database URL: {exc}") from exc
