"""What is known about the request being served, for log lines and the request metrics.

One `RequestLog` per HTTP request lives in a ContextVar, for log correlation only: every log
line emitted while serving the request (in the SSE pump or a tool call too, since tasks copy
the context) carries the request's id and the fields below. Anything that decides what happens
travels in explicit objects instead (`RequestContext`, `Turn`)."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_LOGGED_FIELD_CHARS = 256

SCOPE_KEY = "chatkit_backend.request_log"
"""Where the request's `RequestLog` sits in the ASGI scope, for code that runs outside the
request's context (Hypercorn logs a client disconnect from its own task)."""


def accept_request_id(header: str | None, looks_secret: Callable[[str], bool]) -> str:
    """The caller's `X-Request-ID` when it is a sane token, otherwise a new id.

    An id the log redactor would hide (one that looks like a key) is replaced too: it could
    not be found in the logs, which is all a request id is for."""
    if header is not None and _REQUEST_ID.match(header) and not looks_secret(header):
        return header
    return uuid.uuid4().hex


def user_hash(user_id: str) -> str:
    """A stable pseudonym for log lines: the first 16 hex digits of SHA-256 of the user id."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


@dataclass(slots=True)
class RequestLog:
    request_id: str
    route: str = "unmatched"
    status: int | None = None
    request_type: str | None = None
    thread_id: str | None = None
    tenant_id: str | None = None
    user_hash: str | None = None

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"request_id": self.request_id}
        for name in ("request_type", "thread_id", "tenant_id", "user_hash"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = cap_field(value)
        return fields


def cap_field(value: str) -> str:
    """Client-supplied values (ids) are logged cut to `MAX_LOGGED_FIELD_CHARS` characters."""
    if len(value) <= MAX_LOGGED_FIELD_CHARS:
        return value
    return value[: MAX_LOGGED_FIELD_CHARS - 1] + "…"


_current: ContextVar[RequestLog | None] = ContextVar("request_log", default=None)


def current_request() -> RequestLog | None:
    return _current.get()


def bind_request(log: RequestLog | None) -> Token[RequestLog | None]:
    """Make `log` the current request's; returns a token for `unbind_request`."""
    return _current.set(log)


def unbind_request(token: Token[RequestLog | None]) -> None:
    _current.reset(token)


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
