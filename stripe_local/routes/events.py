"""Events: ``GET /v1/events`` and ``GET /v1/events/{id}``.

Mirrors https://docs.stripe.com/api/events: newest first, filtered by ``type`` (exact, or with
a ``*`` wildcard such as ``payout.*``), ``types[]`` and ``created[gte|gt|lte|lt]``. Without
``Stripe-Account`` the platform sees its own events; with it, that connected account's events
(``account.updated``, its payouts). Stripe keeps events for 30 days; here, until reset.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from stripe_local.router import Request, RouteTable
from stripe_local.wire import paginate

routes = RouteTable("api")


@routes.get("/v1/events/{id}")
def event_retrieve(req: Request) -> dict[str, Any]:
    return req.render(req.find("event", req.args["id"]))


@routes.get("/v1/events")
def event_list(req: Request) -> dict[str, Any]:
    pattern = req.params.str("type")
    types = set(req.params.strings("types"))
    items = req.store.all(
        "event", account=req.account,
        where=lambda e: (pattern is None or fnmatch.fnmatchcase(e["type"], pattern))
        and (not types or e["type"] in types),
    )
    return paginate(items, req.params, "/v1/events", req.render)
