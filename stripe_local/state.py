"""In-memory state: objects, ids, ownership by account, events, expansion.

Every API object is a plain dict shaped as Stripe returns it, plus private ``_`` keys
(``_account``: the Connect account that owns it, ``None`` for the platform; ``_seq``: creation
order). One re-entrant lock guards everything; the server holds it for the whole of each API
call, so requests are serialised - simpler than Stripe, and it means the "concurrent request
with the same idempotency key" 409 never happens here.

Ownership mirrors Connect: a request with ``Stripe-Account: acct_x`` sees and creates objects
of ``acct_x`` only (its payouts, balance, balance transactions, events); without the header it
acts as the platform. Retrieving another account's object is ``resource_missing``, as on
Stripe.

Events (https://docs.stripe.com/api/events) are recorded for every state change with a
snapshot of the object as it was, ``previous_attributes`` for updates, ``request`` (id and
idempotency key of the API call that caused it, both null for hosted pages and test helpers)
and ``account`` for events that happened on a connected account. Listeners (the webhook
dispatcher) receive each event as it is recorded.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Callable
from typing import Any

from stripe_local.errors import invalid_request
from stripe_local.wire import list_object, public

API_VERSION = "2026-10-28.endive"  # what stripe-python 16.1 sends; events are shaped for it
_ALPHABET = string.ascii_letters + string.digits

Includable = Callable[["Store", dict[str, Any]], Any]


def random_token(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.base_url = ""
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # Fields Stripe leaves out unless expanded ("includable"), e.g. checkout line_items.
        self.includables: dict[tuple[str, str], Includable] = {}
        self.current_request: dict[str, str | None] = {"id": None, "idempotency_key": None}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[str, dict[str, Any]] = {}
            self.deleted: set[str] = set()
            self.account_links: dict[str, dict[str, Any]] = {}
            self._seq = 0

    # -- ids and time ---------------------------------------------------------------------------
    @staticmethod
    def now() -> int:
        return int(time.time())

    def new_id(self, prefix: str) -> str:
        while True:
            object_id = f"{prefix}_{random_token()}"
            if object_id not in self.objects:
                return object_id

    # -- objects ------------------------------------------------------------------------------
    def add(self, obj: dict[str, Any], *, account: str | None = None) -> dict[str, Any]:
        self._seq += 1
        obj["_account"] = account
        obj["_seq"] = self._seq
        self.objects[obj["id"]] = obj
        return obj

    def remove(self, object_id: str) -> None:
        self.objects.pop(object_id, None)
        self.deleted.add(object_id)

    def get(self, object_id: str, *, kind: str | None = None, account: Any = ...,
            ) -> dict[str, Any] | None:
        """By id; ``kind`` checks ``object``; ``account`` (if given) checks the owner."""
        obj = self.objects.get(object_id)
        if obj is None:
            return None
        if kind is not None and obj.get("object") != kind:
            return None
        if account is not ... and obj["_account"] != account:
            return None
        return obj

    def all(self, kind: str, *, account: Any = ...,
            where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Objects of one type, newest first (Stripe's list order)."""
        found = [
            o for o in self.objects.values()
            if o.get("object") == kind
            and (account is ... or o["_account"] == account)
            and (where is None or where(o))
        ]
        found.sort(key=lambda o: o["_seq"], reverse=True)
        return found

    # -- events -------------------------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any], *, account: str | None = None,
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"object": public(obj)}
        if previous is not None:
            data["previous_attributes"] = public(previous)
        event: dict[str, Any] = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": dict(self.current_request),
            "type": event_type,
        }
        if account is not None:
            event["account"] = account
        self.add(event, account=account)
        for listener in self.listeners:
            listener(event)
        return event

    # -- expansion ----------------------------------------------------------------------------
    def expand(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """``expand[]=latest_charge.balance_transaction`` and friends, up to four levels."""
        result = public(obj)
        for path in paths:
            parts = path.split(".")
            if len([part for part in parts if part != "data"]) > 4:
                raise invalid_request(
                    f"You cannot expand more than 4 levels of a property. Property: {path}",
                    param="expand",
                )
            self._expand_into(result, parts, path)
        return result

    def _expand_into(self, node: Any, parts: list[str], path: str) -> None:
        if not parts or node is None:
            return
        if isinstance(node, dict) and node.get("object") == "list":
            if parts[0] != "data":
                raise invalid_request(f"This property cannot be expanded ({path}).",
                                      param="expand")
            for item in node["data"]:
                self._expand_into(item, parts[1:], path)
            return
        if not isinstance(node, dict):
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        field, rest = parts[0], parts[1:]
        include = self.includables.get((node.get("object", ""), field))
        if field not in node and include is not None:
            source = self.objects.get(node.get("id", ""))
            node[field] = public(include(self, source)) if source is not None else None
        elif field not in node:
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        value = node[field]
        if isinstance(value, str):
            target = self.objects.get(value)
            if target is None:
                raise invalid_request(f"This property cannot be expanded ({path}).",
                                      param="expand")
            node[field] = value = public(target)
        elif value is not None and not isinstance(value, dict):
            raise invalid_request(f"This property cannot be expanded ({path}).", param="expand")
        self._expand_into(value, rest, path)


def sub_list(items: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """An embedded list (``transfer.reversals``, ``invoice.lines``) with its ``total_count``."""
    return list_object(items, url, total_count=len(items))
