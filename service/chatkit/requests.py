"""Parses a ChatKit request body, explaining in one line what is wrong with a bad one."""

from __future__ import annotations

import json
from typing import Any, get_args

from chatkit.types import ChatKitReq, NonStreamingReq, StreamingReq
from pydantic import TypeAdapter, ValidationError

from service.chatkit.errors import InvalidRequest

_ADAPTER = TypeAdapter[ChatKitReq](ChatKitReq)
REQUEST_TYPES: frozenset[str] = frozenset(
    model.model_fields["type"].default
    for model in (*get_args(StreamingReq), *get_args(NonStreamingReq))
)


def parse_chatkit_request(body: bytes) -> ChatKitReq:
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object with a 'type'")
    request_type = payload.get("type")
    if not isinstance(request_type, str):
        raise InvalidRequest("request body has no 'type'")
    if request_type not in REQUEST_TYPES:
        raise InvalidRequest(f"unknown request type {request_type!r}")
    try:
        return _ADAPTER.validate_python(payload)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid {request_type!r} request: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    # The first location element is the union tag (the request type): drop it.
    location = ".".join(str(part) for part in error["loc"][1:])
    return f"{location}: {error['msg']}" if location else str(error["msg"])
