"""`POST /stripe/webhook/`: a plain Django view (Stripe signs the raw body; no DRF parsing)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from licensing.services.stripe_events import stripe_event_receive
from royalties.integrations.stripe_client import WebhookSignatureError, webhook_event_construct

logger = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 512 * 1024


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    if len(request.body) > MAX_WEBHOOK_BYTES:
        return JsonResponse({"error": "payload too large"}, status=413)
    try:
        event = webhook_event_construct(request.body, request.headers.get("Stripe-Signature", ""))
    except WebhookSignatureError as exc:
        logger.warning("Refused a Stripe webhook: %s", exc)
        return JsonResponse({"error": "invalid signature"}, status=400)
    row, created = stripe_event_receive(event=event)
    return JsonResponse({"received": row.event_id, "duplicate": not created})
