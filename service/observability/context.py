"""What is known about the request being served, for logs and metrics.

One `RequestLog` per HTTP request lives in a ContextVar. Tasks started while serving the
request (the SSE pump, tool calls) copy the context and so share the same object: what they
note on it (an error cause, the new thread's id) is visible to the request's own code, and every
log line emitted in any of them carries the request's id.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

SCOPE_KEY = "chatkit_backend.request_log"
"""Where the request's `RequestLog` sits in the ASGI scope, for code that runs outside the
request's context (Hypercorn logs a client disconnect from its own task)."""


def accept_request_id(header: str | None) -> str:
    """The caller's `X-Request-ID` when it is a sane token, otherwise a new id."""
    if header is not None and _REQUEST_ID.match(header):
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
    error_type: str | None = None
    """The cause of a failure, noted where it is known (the model call, the turn)."""
    store_failed: bool = False
    """A Store call failed during this request (classifies server errors)."""

    def log_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"request_id": self.request_id}
        for name in ("request_type", "thread_id", "tenant_id", "user_hash"):
            value = getattr(self, name)
            if value is not None:
                fields[name] = value
        return fields


_current: ContextVar[RequestLog | None] = ContextVar("request_log", default=None)


def current_request() -> RequestLog | None:
    return _current.get()


def bind_request(log: RequestLog | None) -> Token[RequestLog | None]:
    """Make `log` the current request's; returns a token for `unbind_request`."""
    return _current.set(log)


def unbind_request(token: Token[RequestLog | None]) -> None:
    _current.reset(token)


def note_error_type(kind: str) -> None:
    """Record why the current request failed (e.g. a `ModelFailure.kind`); no-op outside one."""
    log = _current.get()
    if log is not None:
        log.error_type = kind


def note_store_failure() -> None:
    """Record that a Store call failed during the current request; no-op outside one."""
    log = _current.get()
    if log is not None:
        log.store_failed = True
