"""Parses a ChatKit request body, explaining in one line what is wrong with a bad one.

The body is parsed and validated in one pass by pydantic's JSON parser, which refuses what
Python's `json` would let through only to fail later: nesting deeper than a few hundred levels,
integers of thousands of digits, and lone UTF-16 surrogates (valid JSON escapes, but text that
no database, serializer or log can store). NUL characters are refused too (PostgreSQL cannot
store them).
"""

from __future__ import annotations

import re
from typing import Any

from chatkit.types import ChatKitReq
from pydantic import TypeAdapter, ValidationError

from service.chatkit.errors import InvalidRequest

_ADAPTER = TypeAdapter[ChatKitReq](ChatKitReq)
# `\u0000` preceded by an even number of backslashes (an odd number escapes the backslash).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def parse_chatkit_request(body: bytes) -> ChatKitReq:
    try:
        request = _ADAPTER.validate_json(body)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc.errors()[0])) from None
    if _NUL_ESCAPE.search(body):
        raise InvalidRequest(
            "request body contains a NUL character (\\u0000), which is not allowed"
        )
    return request


def _describe(error: Any) -> str:
    kind, message = error["type"], str(error["msg"])
    if kind == "json_invalid":
        detail = message.removeprefix("Invalid JSON: ")
        if "surrogate" in detail or "hex escape" in detail:
            detail = f"a \\u escape is not a whole character (lone surrogate?): {detail}"
        return f"request body is not valid JSON: {detail}"
    if kind == "union_tag_not_found":
        return "request body has no 'type'"
    if kind == "union_tag_invalid":
        tag = str(error.get("ctx", {}).get("tag", ""))
        return f"unknown request type {_cut(tag)!r}"
    location = [str(part) for part in error["loc"]]
    if not location:
        return "request body must be a JSON object with a 'type'"
    # The first location element is the union tag (the request type): drop it.
    request_type, path = location[0], ".".join(location[1:])
    detail = f"{path}: {message}" if path else message
    return f"invalid {_cut(request_type)!r} request: {_cut(detail, 300)}"


def _cut(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
