"""Who is asking: the per-request context every Store method and server hook receives."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    user_id: str
    tenant_id: str
    role: str = "user"
    locale: str | None = None
    request_id: str | None = None
