"""Webhook delivery: every recorded event POSTed, signed, to every matching endpoint.

Mirrors https://docs.stripe.com/webhooks:

- each delivery is a JSON POST of the event, signed per attempt with the endpoint's secret
  (``Stripe-Signature: t=...,v1=...``, see ``signing.py``), verifiable with
  ``stripe.Webhook.construct_event``;
- a non-2xx answer or a connection error is retried, a bounded number of times
  (``max_attempts``, default 3) with exponential backoff from ``retry_delay`` (default 0.2 s).
  Stripe retries for up to three days; the shape - later, possibly after newer events, and
  eventually giving up - is the same;
- order is not guaranteed and the same event may arrive more than once: tests make that
  happen on purpose with ``hold`` mode and ``flush`` (``order: "reverse"|"shuffle"``,
  ``duplicate: true``).

Endpoints (``POST /_test/webhook_endpoints``) take ``url``, ``secret`` (generated if absent),
``enabled_events`` (default ``["*"]``) and ``connect``: ``true`` receives only events of
connected accounts (a Connect endpoint), ``false`` only the platform's own, absent both (one
endpoint for everything - a convenience Stripe does not offer).

Delivery runs on one background thread, in event order, never under the API lock, so a
receiver may call back into the server while handling an event. ``wait_idle`` blocks until
everything queued has been delivered or given up.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from stripe_local.errors import invalid_request
from stripe_local.signing import generate_secret, sign_payload
from stripe_local.state import random_token


@dataclass
class Endpoint:
    id: str
    url: str
    secret: str
    enabled_events: list[str] = field(default_factory=lambda: ["*"])
    connect: bool | None = None

    def wants(self, event: dict[str, Any]) -> bool:
        is_connect = "account" in event
        if self.connect is not None and self.connect != is_connect:
            return False
        return any(fnmatch.fnmatchcase(event["type"], p) for p in self.enabled_events)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "object": "webhook_endpoint", "url": self.url,
                "secret": self.secret, "enabled_events": self.enabled_events,
                "connect": self.connect}


@dataclass
class Delivery:
    id: int
    event_id: str
    event_type: str
    payload: bytes
    endpoint: Endpoint
    generation: int
    attempt: int = 1


class WebhookDispatcher:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._generation = 0
        self._in_flight = 0  # survives reset: a delivery in progress still finishes
        self._reset_state()

    def _reset_state(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.mode = "immediate"
        self.max_attempts = 3
        self.retry_delay = 0.2
        self.timeout = 10.0
        self._queue: list[tuple[float, int, Delivery]] = []
        self._held: list[Delivery] = []
        self.log: list[dict[str, Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="stripe-local-webhooks",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        with self._cond:
            self._generation += 1
            self._reset_state()
            self._cond.notify_all()

    # -- configuration ------------------------------------------------------------------------
    def endpoint_add(self, spec: dict[str, Any]) -> Endpoint:
        url = spec.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise invalid_request("url is required (http:// or https://)", param="url")
        events = spec.get("enabled_events") or ["*"]
        connect = spec.get("connect")
        if connect not in (None, True, False):
            raise invalid_request("connect must be true, false or absent", param="connect")
        endpoint = Endpoint(id="we_" + random_token(), url=url,
                            secret=spec.get("secret") or generate_secret(),
                            enabled_events=list(events), connect=connect)
        with self._cond:
            self.endpoints[endpoint.id] = endpoint
        return endpoint

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            if "mode" in spec:
                if spec["mode"] not in ("immediate", "hold"):
                    raise invalid_request('mode must be "immediate" or "hold"', param="mode")
                self.mode = spec["mode"]
            if "max_attempts" in spec:
                self.max_attempts = max(1, int(spec["max_attempts"]))
            if "retry_delay" in spec:
                self.retry_delay = max(0.0, float(spec["retry_delay"]))
            if "timeout" in spec:
                self.timeout = max(0.1, float(spec["timeout"]))
            return self.config()

    def config(self) -> dict[str, Any]:
        return {"mode": self.mode, "max_attempts": self.max_attempts,
                "retry_delay": self.retry_delay, "timeout": self.timeout,
                "held": len(self._held), "queued": len(self._queue)}

    # -- publishing (called under the API lock: must not block) ----------------------------------
    def publish(self, event: dict[str, Any]) -> None:
        with self._cond:
            targets = [e for e in self.endpoints.values() if e.wants(event)]
            event["pending_webhooks"] = len(targets)
            if not targets:
                return
            payload = json.dumps(_public_event(event), indent=2).encode("utf-8")
            for endpoint in targets:
                delivery = Delivery(next(self._ids), event["id"], event["type"], payload,
                                    endpoint, self._generation)
                if self.mode == "hold":
                    self._held.append(delivery)
                else:
                    self._push(delivery, 0.0)

    def _push(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._queue, (time.monotonic() + delay, delivery.id, delivery))
        self._cond.notify_all()

    # -- test controls ------------------------------------------------------------------------
    def held(self) -> list[dict[str, Any]]:
        """Held deliveries, each signed now: what Stripe would POST (for in-process tests)."""
        with self._cond:
            items = list(self._held)
        result = []
        for d in items:
            body, headers = sign_payload(d.payload, d.endpoint.secret)
            result.append({"event_id": d.event_id, "type": d.event_type, "url": d.endpoint.url,
                           "payload": body.decode("utf-8"), "headers": headers})
        return result

    def discard_held(self) -> int:
        with self._cond:
            count, self._held = len(self._held), []
        return count

    def flush(self, *, order: str = "forward", duplicate: bool = False, seed: int | None = None,
              timeout: float = 30.0) -> list[dict[str, Any]]:
        """Deliver everything held, in the order asked for, and wait for the outcome."""
        with self._cond:
            batch, self._held = self._held, []
            if order == "reverse":
                batch.reverse()
            elif order == "shuffle":
                random.Random(seed).shuffle(batch)  # noqa: S311 - test ordering, not secrecy
            elif order != "forward":
                raise invalid_request('order must be "forward", "reverse" or "shuffle"')
            if duplicate:
                batch = batch + [
                    Delivery(next(self._ids), d.event_id, d.event_type, d.payload, d.endpoint,
                             d.generation) for d in batch
                ]
            ids = set()
            for delivery in batch:
                ids.add(delivery.id)
                self._push(delivery, 0.0)
        self.wait_idle(timeout)
        with self._cond:
            return [entry for entry in self.log if entry["delivery"] in ids]

    def wait_idle(self, timeout: float = 30.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._in_flight == 0,
                                       timeout=timeout)

    # -- the delivery thread ------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._cond.wait(timeout=wait)
                if self._stopped:
                    return
                _, _, delivery = heapq.heappop(self._queue)
                if delivery.generation != self._generation:
                    continue
                self._in_flight += 1
                timeout = self.timeout
            entry = self._attempt(delivery, timeout)
            with self._cond:
                self._in_flight -= 1
                if delivery.generation == self._generation:
                    self.log.append(entry)
                    if not entry["ok"] and delivery.attempt < self.max_attempts:
                        delivery.attempt += 1
                        self._push(delivery, self.retry_delay * 2 ** (delivery.attempt - 2))
                self._cond.notify_all()

    @staticmethod
    def _attempt(delivery: Delivery, timeout: float) -> dict[str, Any]:
        body, headers = sign_payload(delivery.payload, delivery.endpoint.secret)
        request = urllib.request.Request(  # noqa: S310 - endpoint URLs are checked http(s)
            delivery.endpoint.url, data=body, headers=headers, method="POST")
        status: int | None = None
        error = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError) as exc:
            error = str(exc)
        return {
            "delivery": delivery.id, "event_id": delivery.event_id, "type": delivery.event_type,
            "endpoint": delivery.endpoint.id, "url": delivery.endpoint.url,
            "attempt": delivery.attempt, "status": status, "error": error,
            "ok": status is not None and 200 <= status < 300, "at": time.time(),
        }


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}
