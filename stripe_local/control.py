"""``Control``: a small Python client for the ``/_test`` helpers, over HTTP.

Works against an in-process ``LocalStripe`` (``server.control``) and against one started with
``python -m stripe_local`` in another process (``Control("http://127.0.0.1:12111")``), e.g.
from a Celery worker test or ``manage.py demo``. Methods are named entity first, like
Blanket's services. Each returns the decoded JSON answer; helpers that model a customer's
action (paying, declining) return the 402 body instead of raising.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode


class ControlError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"stripe_local helper failed ({status}): {body}")
        self.status = status
        self.body = body


class Control:
    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              *, ok: tuple[int, ...] = (200,)) -> Any:
        data = json.dumps(body or {}).encode() if method != "GET" else None
        request = urllib.request.Request(  # noqa: S310 - http(s) base URL of the local server
            self.base_url + path, data=data, method=method,
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        decoded = json.loads(raw) if raw else None
        if status not in ok:
            raise ControlError(status, decoded)
        return decoded

    # -- server ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self._call("POST", "/_test/reset")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_test/health")

    # -- webhooks -------------------------------------------------------------------------------
    def webhook_endpoint_create(self, url: str, *, secret: str | None = None,
                                enabled_events: list[str] | None = None,
                                connect: bool | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {"url": url, "secret": secret, "enabled_events": enabled_events}
        if connect is not None:
            spec["connect"] = connect
        return self._call("POST", "/_test/webhook_endpoints", spec)

    def webhooks_configure(self, **config: Any) -> dict[str, Any]:
        """``mode="hold"|"immediate"``, ``max_attempts``, ``retry_delay``, ``timeout``."""
        return self._call("POST", "/_test/webhooks/config", config)

    def webhooks_hold(self) -> dict[str, Any]:
        return self.webhooks_configure(mode="hold")

    def webhooks_flush(self, *, order: str = "forward", duplicate: bool = False,
                       seed: int | None = None) -> list[dict[str, Any]]:
        body = {"order": order, "duplicate": duplicate, "seed": seed}
        return self._call("POST", "/_test/webhooks/flush", body)["deliveries"]

    def webhooks_wait(self, timeout: float = 30.0) -> bool:
        return self._call("POST", "/_test/webhooks/wait", {"timeout": timeout})["idle"]

    def webhooks_held(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_test/webhooks/held")["data"]

    def webhooks_discard(self) -> int:
        return self._call("POST", "/_test/webhooks/discard")["discarded"]

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_test/webhooks/deliveries")["data"]

    # -- failures and logs ----------------------------------------------------------------------
    def failure_add(self, path: str, *, method: str = "POST", status: int | str = 500,
                    count: int = 1, after_effect: bool = False, hang_seconds: float = 30.0,
                    error: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/_test/failures", {
            "path": path, "method": method, "status": status, "count": count,
            "after_effect": after_effect, "hang_seconds": hang_seconds, "error": error})

    def failures_clear(self) -> int:
        return self._call("DELETE", "/_test/failures")["cleared"]

    def requests(self, *, path: str | None = None, method: str | None = None,
                 ) -> list[dict[str, Any]]:
        query = urlencode({k: v for k, v in (("path", path), ("method", method)) if v})
        return self._call("GET", "/_test/requests" + (f"?{query}" if query else ""))["data"]

    def idempotent_executions(self, *, path: str | None = None) -> list[dict[str, Any]]:
        query = f"?{urlencode({'path': path})}" if path else ""
        return self._call("GET", "/_test/idempotency" + query)["data"]

    def idempotency_expire(self, key: str | None = None) -> int:
        return self._call("POST", "/_test/idempotency/expire", {"key": key})["expired"]

    # -- resources ------------------------------------------------------------------------------
    def checkout_session_pay(self, session_id: str, *, card: str = "4242424242424242",
                             email: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/_test/checkout_sessions/{session_id}/pay",
                          {"card": card, "email": email}, ok=(200, 402))

    def invoice_pay(self, invoice_id: str, *, fail: bool = False,
                    card: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/_test/invoices/{invoice_id}/pay",
                          {"fail": fail, "card": card}, ok=(200, 402))

    def invoice_mark_overdue(self, invoice_id: str) -> dict[str, Any]:
        return self._call("POST", f"/_test/invoices/{invoice_id}/mark_overdue")

    def account_complete_onboarding(self, account_id: str, *,
                                    business_name: str | None = None) -> dict[str, Any]:
        return self._call("POST", f"/_test/accounts/{account_id}/complete_onboarding",
                          {"business_name": business_name})

    def account_restrict(self, account_id: str, *,
                         disabled_reason: str = "requirements.past_due",
                         currently_due: list[str] | None = None) -> dict[str, Any]:
        return self._call("POST", f"/_test/accounts/{account_id}/restrict",
                          {"disabled_reason": disabled_reason, "currently_due": currently_due})

    def account_automatic_payout(self, account_id: str) -> list[dict[str, Any]]:
        return self._call("POST", f"/_test/accounts/{account_id}/payout")["payouts"]

    def payout_settle(self, payout_id: str, *, status: str = "paid",
                      failure_code: str | None = None,
                      failure_message: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if failure_code:
            body["failure_code"] = failure_code
        if failure_message:
            body["failure_message"] = failure_message
        return self._call("POST", f"/_test/payouts/{payout_id}/settle", body)

    def balance_fund(self, amount: int, currency: str, *,
                     account: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/_test/balance/fund",
                          {"amount": amount, "currency": currency, "account": account})

    def balance_release(self, *, account: str | None = None) -> int:
        body = {"account": account} if account else {}
        return self._call("POST", "/_test/balance/release", body)["released"]
