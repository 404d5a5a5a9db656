"""OpenAPI post-processing: the error answers every operation really gives, documented.

Every error goes through `config.errors.api_exception_handler` as
`{"error": {"code", "message", "details"}}`. This hook adds that schema as the `Error` component
and, to every operation, the error statuses it can return: 401 (no or bad credentials), 403
(not allowed), 404 (another organisation's object, an unknown id, a page past the end), 429
(throttled), 400 (invalid parameters or body), and for writes 409 (a state conflict) and, with a
body, 415 (a content type it does not take). Schemathesis checks the API against exactly this
(tests/test_api_fuzz.py).
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Stable, for programs"},
                "message": {"type": "string", "description": "For people"},
                "details": {"description": "Field errors or facts about the refusal"},
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}

DESCRIPTIONS = {
    "400": "Invalid parameters or body; `details` names each field and the reason.",
    "401": "No credentials, or an unknown or revoked API key.",
    "403": "Authenticated, but this caller may not do this.",
    "404": "No such object for this caller (other organisations' objects are not found).",
    "409": "The object's state does not allow this now.",
    "415": "The body's content type is not one this operation takes.",
    "429": "Too many requests; retry after the `Retry-After` seconds.",
}
WRITES = {"post", "put", "patch", "delete"}


def error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in WRITES | {"get"}:
                continue
            codes = {"400", "401", "403", "404", "429"}
            if method in WRITES:
                codes.add("409")
                if "requestBody" in operation:
                    codes.add("415")
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                responses.setdefault(code, {"description": DESCRIPTIONS[code], "content": body})
    return result
