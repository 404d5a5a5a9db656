"""The HTTP server: ``LocalStripe`` and the request pipeline in front of the resources.

Pipeline for ``/v1`` requests, in Stripe's order:

1. authenticate ``Authorization: Bearer sk_test_...`` (HTTP Basic ``sk_test_...:`` too, as curl
   sends it); a missing or unknown key is a 401 with Stripe's messages;
2. ``Stripe-Account: acct_...`` must name an existing connected account (403 otherwise); the
   request then acts as that account;
3. decode parameters (form body for POST, query string for GET/DELETE);
4. failure injection at the edge ("timeout" before anything happens);
5. idempotency: replay a saved response or refuse a mismatched reuse of the key;
6. the endpoint, under the global lock; its result is saved under the key if execution began;
7. failure injection after the effect (the response "lost" on its way back).

Every response carries ``Request-Id`` and ``Stripe-Version``, and ``Idempotency-Key`` when one
was sent. Simplified: no rate limiting (inject 429s instead), no API-version-dependent shapes
(everything is shaped as for ``API_VERSION``), one global lock instead of per-object locks.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stripe_local import pages
from stripe_local.control import Control
from stripe_local.errors import (
    StripeError,
    api_error,
    authentication_error,
    permission_error,
    unrecognized_url,
)
from stripe_local.failures import FailureInjector
from stripe_local.idempotency import IdempotencyLayer, SavedResponse
from stripe_local.router import Request, Response, Router, error_response
from stripe_local.routes import all_routes, register_includables
from stripe_local.state import API_VERSION, Store, random_token
from stripe_local.webhooks import WebhookDispatcher
from stripe_local.wire import Params, decode_form

DEFAULT_API_KEY = "sk_test_local"
MAX_BODY = 1024 * 1024
REQUEST_LOG_SIZE = 100_000  # the newest requests, for tests that count calls
logger = logging.getLogger("stripe_local")


@dataclass
class Outcome:
    response: Response | None = None
    hang: float | None = None  # hold the connection this long, then close it unanswered


def _mask(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "****"


class LocalStripeApp:
    """Everything but the sockets: routing, auth, idempotency, failures, webhooks, state."""

    def __init__(self, api_keys: tuple[str, ...] = (DEFAULT_API_KEY,)) -> None:
        self.api_keys = set(api_keys)
        self.store = Store()
        register_includables(self.store)
        self.webhooks = WebhookDispatcher()
        self.store.listeners.append(self.webhooks.publish)
        self.failures = FailureInjector()
        self.idempotency = IdempotencyLayer()
        self.router = Router(all_routes())
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    def reset(self) -> None:
        with self.store.lock:
            self.store.reset()
            self.idempotency.reset()
            self.failures.reset()
            self.webhooks.reset()
            self.request_log.clear()

    # -- entry point --------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes,
               ) -> Outcome:
        path, _, query = raw_path.partition("?")
        route, args = self.router.match(method, path)
        if route is None:
            if path.startswith("/v1/"):
                return Outcome(error_response(unrecognized_url(method, path)))
            if path.startswith("/_test/"):
                return Outcome(Response.json({"error": {"message": f"No helper {method} {path}",
                                                        "type": "invalid_request_error"}}, 404))
            return Outcome(Response.html(pages.message_page("Not found", path), 404))
        req = Request(method, path, query, headers, body, self.store, args, app=self)
        if route.kind == "api":
            return self._api(route.handler, req)
        try:
            if route.locked:
                with self.store.lock:
                    result = route.handler(req)
            else:
                result = route.handler(req)
        except StripeError as exc:
            if route.kind == "page":
                return Outcome(Response.html(pages.message_page("Error", exc.message),
                                             exc.status))
            return Outcome(error_response(exc))
        return Outcome(result if isinstance(result, Response) else Response.json(result))

    # -- /v1 ----------------------------------------------------------------------------------
    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        key = ""
        if auth.startswith("Bearer "):
            key = auth[7:].strip()
        elif auth.startswith("Basic "):
            try:
                key = base64.b64decode(auth[6:]).decode("utf-8").split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise authentication_error(
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.")
        if key not in self.api_keys:
            raise authentication_error(f"Invalid API Key provided: {_mask(key)}")
        return key

    def _parse(self, req: Request) -> tuple[str, str | None, Params]:
        api_key = self._authenticate(req.headers)
        account = req.headers.get("stripe-account") or None
        if account is not None:
            with self.store.lock:
                known = self.store.get(account, kind="account") is not None
            if not known:
                raise permission_error(
                    f"The provided key '{_mask(api_key)}' does not have access to account "
                    f"'{account}' (or that account does not exist). Application access may "
                    "have been revoked.")
        raw = req.body.decode("utf-8", "replace") if req.method == "POST" else req.query
        return api_key, account, Params(decode_form(raw))

    def _on_begin(self, req: Request) -> None:
        rule = self.failures.take(req.method, req.path, "endpoint")
        if rule is not None:
            req.injected = f"endpoint:{rule.status}"
            raise rule.stripe_error()

    def _api(self, handler: Any, req: Request) -> Outcome:
        request_id = "req_" + random_token(14)
        entry: dict[str, Any] = {
            "id": request_id, "method": req.method, "path": req.path, "account": None,
            "idempotency_key": None, "status": None, "replayed": False, "injected": None,
            "created": time.time(),
        }
        self.request_log.append(entry)
        common = {"Request-Id": request_id,
                  "Stripe-Version": req.headers.get("stripe-version", API_VERSION)}
        try:
            api_key, account, params = self._parse(req)
        except StripeError as exc:
            response = error_response(exc)
            response.headers.update(common)
            entry["status"] = response.status
            return Outcome(response)
        key = req.headers.get("idempotency-key") if req.method == "POST" else None
        entry.update(account=account, idempotency_key=key)

        before = self.failures.take(req.method, req.path, "before")
        if before is not None:
            entry["injected"] = "timeout"
            return Outcome(hang=before.hang_seconds)

        with self.store.lock:
            self.store.current_request = {"id": request_id, "idempotency_key": key}
            try:
                response = self._execute(handler, req, request_id, api_key, account, params,
                                         key, entry)
            finally:
                self.store.current_request = {"id": None, "idempotency_key": None}
        response.headers.update(common)
        if key:
            response.headers["Idempotency-Key"] = key
        entry["status"] = response.status
        entry["injected"] = req.injected

        after = self.failures.take(req.method, req.path, "after")
        if after is not None:
            if after.status == "timeout":
                entry["injected"] = "timeout-after-effect"
                return Outcome(hang=after.hang_seconds)
            entry["injected"] = f"after-effect:{after.status}"
            lost = error_response(after.stripe_error())
            lost.headers.update(common)
            return Outcome(lost)
        return Outcome(response)

    def _execute(self, handler: Any, req: Request, request_id: str, api_key: str,
                 account: str | None, params: Params, key: str | None,
                 entry: dict[str, Any]) -> Response:
        scope = (api_key, account)
        try:
            if key:
                self.idempotency.check_key(key)
                saved = self.idempotency.lookup(scope, key, req.method, req.path, params.data)
                if saved is not None:
                    entry["replayed"] = True
                    replay = Response(saved.status, saved.body, {
                        "Content-Type": "application/json", "Idempotent-Replayed": "true",
                        "Original-Request": saved.request_id})
                    if saved.status >= 500:
                        replay.headers["Stripe-Should-Retry"] = "false"
                    return replay
        except StripeError as exc:
            return error_response(exc)

        req.params, req.account, req.api_key = params, account, api_key
        req.idempotency_key, req.request_id = key, request_id
        req.on_begin = self._on_begin
        result: Any = None
        try:
            if req.method != "POST":
                req.begin()
            result = handler(req)
            response = result if isinstance(result, Response) else Response.json(result)
            req.began = True  # a success executed, even if the route never said so
        except StripeError as exc:
            response = error_response(exc)
        except Exception:  # a bug in the local server: answer as Stripe would, log loudly
            logger.error("stripe_local: unhandled error in %s %s\n%s", req.method, req.path,
                         traceback.format_exc())
            response = error_response(api_error())
        if key and req.began:
            object_id = result.get("id") if isinstance(result, dict) else None
            self.idempotency.save(SavedResponse(
                key=key, scope=scope, method=req.method, path=req.path, params=params.data,
                status=response.status, body=response.body, request_id=request_id,
                created=int(time.time()), object_id=object_id))
            if response.status >= 500:
                response.headers["Stripe-Should-Retry"] = "false"
        return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls
    server_version = "stripe-local"
    sys_version = ""
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        outcome = self.server.app.handle(self.command, self.path, headers, body)
        if outcome.hang is not None:
            self.server.app.failures.hang(outcome.hang)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        response = outcome.response
        assert response is not None
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: LocalStripeApp, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.app = app
        self.verbose = verbose


class LocalStripe:
    """A Stripe-compatible server on 127.0.0.1, in a background thread.

    >>> with LocalStripe() as server:          # or: url = server.start(); ...; server.stop()
    ...     client = stripe.StripeClient("sk_test_local",
    ...                                  base_addresses={"api": server.url, ...})
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 api_keys: tuple[str, ...] = (DEFAULT_API_KEY,), verbose: bool = False) -> None:
        self.host, self.port = host, port
        self.app = LocalStripeApp(api_keys)
        self.verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalStripe is not running; call start()")
        return self.app.store.base_url

    @property
    def api_key(self) -> str:
        return sorted(self.app.api_keys)[0]

    @property
    def control(self) -> Control:
        return Control(self.url)

    def start(self) -> str:
        if self._server is not None:
            return self.url
        self._server = _Server((self.host, self.port), self.app, self.verbose)
        host, port = self._server.server_address[:2]
        self.port = int(port)
        self.app.store.base_url = f"http://{host}:{port}"
        self.app.webhooks.start()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="stripe-local-http", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self.app.failures.reset()  # release hanging requests
        self._server.shutdown()
        self._server.server_close()
        self.app.webhooks.stop()
        self._server = None

    def reset(self) -> None:
        self.app.reset()

    def wait(self) -> None:
        """Block until interrupted (the CLI)."""
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> LocalStripe:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
