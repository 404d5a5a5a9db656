"""API rate limits: one budget per API key, per logged-in person and per anonymous address.

Counters live in Django's cache (settings.CACHES: per-process memory by default, Redis when
CACHE_URL is set). Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] and are read on
every request, so a changed setting applies at once (DRF's own classes read them once, at
import). A refused request is a 429 with `Retry-After`, in the error body of config/errors.py.

The three budget classes are the API's defaults. A view that sets its own `throttle_classes`
replaces them, so such a view should list `ApiKeyRateThrottle` itself, or use the registry
classes below, which count API keys by key.
"""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiKey


def _api_key_of(request) -> ApiKey | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            return super().get_rate()


class ApiKeyRateThrottle(_SettingsRateThrottle):
    """Requests made with one API key, whoever holds it and from wherever."""

    scope = "api_key"

    def get_cache_key(self, request, view) -> str | None:
        api_key = _api_key_of(request)
        if api_key is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": api_key.pk}


class SessionUserRateThrottle(_SettingsRateThrottle):
    """Requests of one logged-in person (session auth); API keys have their own budget."""

    scope = "user"

    def get_cache_key(self, request, view) -> str | None:
        user = request.user
        if _api_key_of(request) is not None or not (user and user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class AnonymousRateThrottle(_SettingsRateThrottle):
    """Requests with no credentials, by client address (TRUSTED_PROXY_COUNT decides which)."""

    scope = "anon"

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def caller_ident(throttle: SimpleRateThrottle, request) -> str:
    api_key = _api_key_of(request)
    if api_key is not None:
        return f"key-{api_key.pk}"
    user = request.user
    if user and user.is_authenticated:
        return f"user-{user.pk}"
    return f"ip-{throttle.get_ident(request)}"


class RegistryRateThrottle(_SettingsRateThrottle):
    """The registry check's sustained budget: per API key, per person, or per address."""

    scope = "registry"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": caller_ident(self, request)}


class RegistryBurstThrottle(RegistryRateThrottle):
    """The registry check's short-window budget (e.g. 20/second) on top of the sustained one."""

    scope = "registry_burst"
