"""The v1 wire format: form-encoded requests in, JSON out.

Requests (what stripe-python's ``_api_encode`` produces): ``application/x-www-form-urlencoded``
bodies for POST and query strings for GET/DELETE, nested with brackets -
``metadata[licence_id]=7``, ``line_items[0][price_data][unit_amount]=1500``, ``expand[0]=x`` -
and also the ``expand[]=x`` form Stripe itself puts in list ``url``s. Every value arrives as a
string; booleans are ``true``/``false``; an empty string unsets a field (``metadata[k]=``).
``Params`` reads typed values out of the decoded tree and raises Stripe's own messages
("Invalid integer: abc", "Received unknown parameter: foo", "Missing required param: x.").

Responses: JSON objects with ``object``, ``id``, ``created`` and ``livemode: false``; lists are
``{"object": "list", "data", "has_more", "url"}`` sorted newest first, paged with ``limit``
(1-100, default 10), ``starting_after`` and ``ending_before``. Keys that start with ``_`` are
the local server's bookkeeping and never leave it (``public``).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from stripe_local.errors import StripeError, invalid_request, missing_param

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_key(key: str) -> list[str]:
    """``a[b][0][]`` -> ``["a", "b", "0", ""]``; raises on unbalanced brackets."""
    head, _, rest = key.partition("[")
    if not head:
        raise invalid_request(f"Invalid parameter name: {key}")
    parts = [head]
    if rest:
        rest = "[" + rest
        consumed = "".join(f"[{m}]" for m in _KEY_PART.findall(rest))
        if consumed != rest:
            raise invalid_request(f"Invalid parameter name: {key}")
        parts.extend(_KEY_PART.findall(rest))
    return parts


def decode_form(raw: str) -> dict[str, Any]:
    """Decode a form/query string into nested dicts and lists of strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True, strict_parsing=False):
        parts = parse_key(key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":
                if not last:
                    raise invalid_request(f"Invalid array parameter: {key}", param=parts[0])
                if isinstance(node, list):
                    node.append(value)
                elif all(k.isdigit() for k in node):  # expand[0]=a&expand[]=b
                    node[str(len(node))] = value
                else:
                    raise invalid_request(f"Invalid array parameter: {key}", param=parts[0])
                break
            if not isinstance(node, dict):
                raise invalid_request(f"Invalid parameter: {key}", param=parts[0])
            if last:
                if isinstance(node.get(part), dict | list):
                    raise invalid_request(f"Invalid parameter: {key}", param=parts[0])
                node[part] = value
            else:
                nxt = node.get(part)
                want_list = parts[i + 1] == ""
                if nxt is None or nxt == "":
                    nxt = [] if want_list else {}
                    node[part] = nxt
                elif not isinstance(nxt, dict | list):
                    raise invalid_request(f"Invalid parameter: {key}", param=parts[0])
                node = nxt
    return _listify(root)


def _listify(node: Any) -> Any:
    """Dicts keyed only by integers (``line_items[0]``, ``expand[1]``) become lists."""
    if isinstance(node, list):
        return [_listify(v) for v in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


class Params:
    """Typed, validating access to one level of decoded parameters."""

    def __init__(self, data: dict[str, Any] | None = None, prefix: str = "") -> None:
        self.data = data or {}
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def only(self, *allowed: str) -> Params:
        """Stripe refuses parameters it does not know; so does the local server."""
        for key in self.data:
            if key not in allowed and key != "expand":
                supported = ", ".join(sorted(allowed))
                raise invalid_request(
                    f"Received unknown parameter: {self.name(key)} "
                    f"(stripe_local implements: {supported})",
                    param=self.name(key),
                )
        return self

    def str(self, key: str, *, required: bool = False, choices: tuple[str, ...] | None = None,
            max_length: int = 5000, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self.name(key))
            return default
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {self.name(key)}", param=self.name(key))
        if len(value) > max_length:
            raise invalid_request(
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
                param=self.name(key),
            )
        if choices and value not in choices:
            raise invalid_request(
                f"Invalid {self.name(key)}: must be one of {', '.join(choices)}",
                param=self.name(key),
            )
        return value

    def int(self, key: str, *, required: bool = False, minimum: int | None = None,
            default: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self.name(key))
            return default
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise invalid_request(f"Invalid integer: {value}", param=self.name(key))
        number = int(value)
        if minimum is not None and number < minimum:
            raise invalid_request(
                f"This value must be greater than or equal to {minimum}.", param=self.name(key)
            )
        return number

    def bool(self, key: str, *, default: bool | None = None) -> bool | None:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if value not in ("true", "false"):
            raise invalid_request(f"Invalid boolean: {value}", param=self.name(key))
        return value == "true"

    def obj(self, key: str, *, required: bool = False) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self.name(key))
            return None
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {self.name(key)}", param=self.name(key))
        return Params(value, self.name(key))

    def items(self, key: str, *, required: bool = False) -> list[Params]:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(self.name(key))
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))
        return [Params(v, f"{self.name(key)}[{i}]") for i, v in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid_request(f"Invalid array: {self.name(key)}", param=self.name(key))
        return list(value)

    def expand(self) -> list[str]:
        return self.strings("expand")

    def currency(self, key: str = "currency", *, required: bool = True) -> str | None:
        value = self.str(key, required=required)
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise invalid_request(f"Invalid currency: {value}.", param=self.name(key))
        return value.lower()

    def metadata(self, key: str = "metadata") -> dict[str, str | None] | None:
        """Metadata changes: ``None`` if absent, ``{}`` + clear-all if sent as ``""``.

        Values of ``None`` in the result mean "unset this key" (``metadata[k]=``).
        Limits as Stripe documents them: 50 keys, 40-character keys, 500-character values.
        """
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {"__clear__": None}
        if not isinstance(value, dict):
            raise invalid_request("Invalid object", param=self.name(key))
        changes: dict[str, str | None] = {}
        for k, v in value.items():
            if not isinstance(v, str):
                raise invalid_request(f"Invalid value for metadata key {k}", param=self.name(key))
            if len(k) > 40:
                raise invalid_request(
                    f"Metadata keys must be at most 40 characters: {k}", param=self.name(key)
                )
            if len(v) > 500:
                raise invalid_request(
                    f"Metadata values must be at most 500 characters: {k}", param=self.name(key)
                )
            changes[k] = v if v != "" else None
        return changes


def metadata_apply(existing: dict[str, str], changes: dict[str, str | None] | None,
                   ) -> dict[str, str]:
    if changes is None:
        return existing
    result = {} if "__clear__" in changes else dict(existing)
    for k, v in changes.items():
        if k == "__clear__":
            continue
        if v is None:
            result.pop(k, None)
        else:
            result[k] = v
    if len(result) > 50:
        raise invalid_request("Metadata can have at most 50 keys.", param="metadata")
    return result


def public(value: Any) -> Any:
    """A deep copy without the server's private ``_`` keys: what a client may see."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [public(v) for v in value]
    return copy.copy(value)


def encode_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode("utf-8")


def list_object(data: list[Any], url: str, *, has_more: bool = False,
                total_count: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"object": "list", "data": data, "has_more": has_more, "url": url}
    if total_count is not None:
        result["total_count"] = total_count
    return result


def created_matches(created: int, flt: Any) -> bool:
    """``created=123`` or ``created[gte]=..&created[lt]=..``."""
    if flt is None or flt == "":
        return True
    if isinstance(flt, str):
        return created == int(flt)
    ops = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__,
           "lte": created.__le__}
    for op, bound in flt.items():
        if op not in ops or not re.fullmatch(r"-?\d+", bound):
            raise invalid_request(f"Invalid created filter: {op}", param=f"created[{op}]")
        if not ops[op](int(bound)):
            return False
    return True


def paginate(items: list[dict[str, Any]], params: Params, url: str,
             render: Any = public) -> dict[str, Any]:
    """Page a newest-first list exactly as Stripe's cursor pagination does."""
    limit = params.int("limit", default=10)
    if limit is None or not 1 <= limit <= 100:
        raise invalid_request("Invalid limit: must be between 1 and 100.", param="limit")
    flt = params.raw("created")
    if flt is not None:
        items = [o for o in items if created_matches(o.get("created", 0), flt)]
    after = params.str("starting_after")
    before = params.str("ending_before")
    ids = [o["id"] for o in items]
    if after:
        if after not in ids:
            raise StripeError(f"No such object: '{after}'", param="starting_after",
                              code="resource_missing")
        rest = items[ids.index(after) + 1:]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        if before not in ids:
            raise StripeError(f"No such object: '{before}'", param="ending_before",
                              code="resource_missing")
        head = items[: ids.index(before)]
        page, has_more = head[-limit:], len(head) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return list_object([render(o) for o in page], url, has_more=has_more)
