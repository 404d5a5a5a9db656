"""``/_test/...``: controls that exist only on the local server (JSON in, JSON out, no auth).

Resource-specific helpers live beside their resource (``checkout.py``, ``invoices.py``,
``accounts.py``, ``payouts.py``, ``balance.py``); these are the cross-cutting ones: reset,
webhook endpoints and delivery modes, failure injection, and the request and idempotency logs
that fault-injection tests count on.
"""

from __future__ import annotations

from typing import Any

from stripe_local.errors import invalid_request
from stripe_local.router import Request, RouteTable

routes = RouteTable("test")


@routes.get("/_test/health")
def health(req: Request) -> dict[str, Any]:
    return {"ok": True, "base_url": req.base_url}


@routes.post("/_test/reset")
def reset(req: Request) -> dict[str, Any]:
    req.app.reset()
    return {"reset": True}


# -- webhooks -----------------------------------------------------------------------------------
@routes.post("/_test/webhook_endpoints")
def webhook_endpoint_create(req: Request) -> dict[str, Any]:
    return req.app.webhooks.endpoint_add(req.json()).as_dict()


@routes.get("/_test/webhook_endpoints")
def webhook_endpoint_list(req: Request) -> dict[str, Any]:
    return {"data": [e.as_dict() for e in req.app.webhooks.endpoints.values()]}


@routes.post("/_test/webhooks/config")
def webhook_configure(req: Request) -> dict[str, Any]:
    """``{"mode": "hold"|"immediate", "max_attempts": 3, "retry_delay": 0.2, "timeout": 10}``."""
    return req.app.webhooks.configure(req.json())


@routes.get("/_test/webhooks/config")
def webhook_config(req: Request) -> dict[str, Any]:
    return req.app.webhooks.config()


@routes.post("/_test/webhooks/flush", locked=False)
def webhook_flush(req: Request) -> dict[str, Any]:
    """``{"order": "forward"|"reverse"|"shuffle", "seed": 1, "duplicate": true}``."""
    body = req.json()
    deliveries = req.app.webhooks.flush(
        order=body.get("order", "forward"), duplicate=bool(body.get("duplicate", False)),
        seed=body.get("seed"), timeout=float(body.get("timeout", 30)))
    return {"deliveries": deliveries}


@routes.post("/_test/webhooks/wait", locked=False)
def webhook_wait(req: Request) -> dict[str, Any]:
    return {"idle": req.app.webhooks.wait_idle(float(req.json().get("timeout", 30)))}


@routes.get("/_test/webhooks/held")
def webhook_held(req: Request) -> dict[str, Any]:
    return {"data": req.app.webhooks.held()}


@routes.post("/_test/webhooks/discard")
def webhook_discard(req: Request) -> dict[str, Any]:
    return {"discarded": req.app.webhooks.discard_held()}


@routes.get("/_test/webhooks/deliveries")
def webhook_deliveries(req: Request) -> dict[str, Any]:
    return {"data": list(req.app.webhooks.log)}


# -- failure injection --------------------------------------------------------------------------
@routes.post("/_test/failures")
def failure_add(req: Request) -> dict[str, Any]:
    return req.app.failures.add(req.json()).as_dict()


@routes.get("/_test/failures")
def failure_list(req: Request) -> dict[str, Any]:
    return {"data": [r.as_dict() for r in req.app.failures.rules]}


@routes.delete("/_test/failures")
def failure_clear(req: Request) -> dict[str, Any]:
    count = len(req.app.failures.rules)
    req.app.failures.rules.clear()
    return {"cleared": count}


# -- logs ---------------------------------------------------------------------------------------
@routes.get("/_test/requests")
def request_log(req: Request) -> dict[str, Any]:
    """Every API request: ``?path=/v1/transfers&method=POST`` (glob path allowed)."""
    import fnmatch

    args = req.query_args()
    path, method = args.get("path"), args.get("method")
    data = [
        r for r in req.app.request_log
        if (path is None or fnmatch.fnmatchcase(r["path"], path))
        and (method is None or r["method"] == method.upper())
    ]
    return {"data": data}


@routes.get("/_test/idempotency")
def idempotency_log(req: Request) -> dict[str, Any]:
    """Requests that executed under a key (replays excluded): count effects per key."""
    path = req.query_args().get("path")
    data = [e for e in req.app.idempotency.executions if path is None or e["path"] == path]
    return {"data": data}


@routes.post("/_test/idempotency/expire")
def idempotency_expire(req: Request) -> dict[str, Any]:
    key = req.json().get("key")
    if key is not None and not isinstance(key, str):
        raise invalid_request("key must be a string")
    return {"expired": req.app.idempotency.expire(key)}
