"""`GET /healthz`: is the database answering, is the broker reachable (or are tasks eager)."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason goes in the body
        return f"down: {exc.__class__.__name__}"
    return "ok"


def broker_state() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL:
        return "eager"
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many transport-specific types
        return f"down: {exc.__class__.__name__}"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    database, broker = database_state(), broker_state()
    healthy = database == "ok" and broker in {"ok", "eager"}
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "database_engine": connection.vendor,
            "broker": broker,
        },
        status=200 if healthy else 503,
    )
