"""Routes, requests and responses - the small web framework under the resources.

Three kinds of route, which the server treats differently:

- ``api``: ``/v1/...`` - Bearer auth, ``Stripe-Account``, form parameters, idempotency,
  failure injection, Stripe's JSON error bodies.
- ``page``: the hosted pages a browser sees (Checkout, hosted invoice, Connect onboarding).
  No API key, like Stripe's own hosted pages.
- ``test``: ``/_test/...`` helpers that only exist locally (JSON in, JSON out).

``Request.begin()`` marks the point where "endpoint execution begins" in Stripe's idempotency
documentation: parameters are validated and referenced objects found; from here on the
request has effects and its result, success or error, is saved under its idempotency key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from stripe_local.errors import StripeError, invalid_request, resource_missing
from stripe_local.wire import Params, encode_json, public

if TYPE_CHECKING:
    from stripe_local.state import Store

Handler = Callable[["Request"], Any]


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, encode_json(data), {"Content-Type": "application/json"})

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, url: str, status: int = 303) -> Response:
        return cls(status, b"", {"Location": url})


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    kind: str
    locked: bool = True
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$"
        )


class RouteTable:
    """Per-module route registry: ``routes = RouteTable("api")`` then ``@routes.post(...)``."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, *, kind: str | None = None,
            locked: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, pattern, handler, kind or self.kind, locked))
            return handler
        return register

    def get(self, pattern: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.add("GET", pattern, **kw)

    def post(self, pattern: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.add("POST", pattern, **kw)

    def delete(self, pattern: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.add("DELETE", pattern, **kw)


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            m = route.regex.match(path)
            if m and route.method == method:
                return route, m.groupdict()
        return None, {}


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    store: Store
    args: dict[str, str] = field(default_factory=dict)
    params: Params = field(default_factory=Params)
    account: str | None = None
    api_key: str | None = None
    idempotency_key: str | None = None
    request_id: str | None = None
    began: bool = False
    on_begin: Callable[[Request], None] | None = None
    app: Any = None  # the server's LocalStripeApp, for the /_test helpers
    injected: str | None = None  # set when failure injection struck this request

    @property
    def base_url(self) -> str:
        return self.store.base_url

    def begin(self) -> None:
        """Validation is over; effects start here (and the result becomes saveable)."""
        if not self.began:
            self.began = True
            if self.on_begin:
                self.on_begin(self)

    # -- reading API objects ------------------------------------------------------------------
    def find(self, kind: str, object_id: str, *, param: str | None = None) -> dict[str, Any]:
        """An object of this type visible to the calling account, or Stripe's "No such" error."""
        obj = self.store.get(object_id, kind=kind, account=self.account)
        if obj is None:
            raise resource_missing(kind, object_id, param=param)
        return obj

    def render(self, obj: dict[str, Any], expand: list[str] | None = None) -> dict[str, Any]:
        """The public JSON of ``obj`` with this request's ``expand[]`` applied."""
        return self.store.expand(obj, self.params.expand() if expand is None else expand)

    # -- reading JSON and form bodies (test helpers and pages) ---------------------------------
    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise invalid_request(f"Invalid JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise invalid_request("The JSON body must be an object")
        return data

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def query_args(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))


def error_response(error: StripeError) -> Response:
    response = Response.json(error.body(), error.status)
    response.headers.update(error.headers)
    return response


__all__ = ["Request", "Response", "Route", "RouteTable", "Router", "error_response", "public"]
