"""Hypercorn's access log as one structured line per request.

Hypercorn's own access record passes every header and environment variable as record args;
this logger writes a fixed set of fields instead (pitfall 12). The request's fields come from
the ASGI scope, because Hypercorn logs a client disconnect from its own task, outside the
request's context.
"""

from __future__ import annotations

import logging
from typing import Any

from hypercorn.logging import Logger
from hypercorn.typing import ResponseSummary, WWWScope

from service.observability.context import SCOPE_KEY, RequestLog, cap_field, header

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
"""Probes and scrapes: logged at DEBUG unless they fail."""


class AccessLogger(Logger):
    async def access(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> None:
        if self.access_logger is None:
            return
        scope: dict[str, Any] = dict(request)
        log: RequestLog | None = scope.get(SCOPE_KEY)
        status: int | None = int(response["status"]) if response is not None else None
        if status is None and log is not None:
            status = log.status
        method = str(scope.get("method", "GET"))
        path = cap_field(str(scope.get("path", "")))
        fields: dict[str, Any] = log.log_fields() if log is not None else {}
        fields.update(
            http_method=method,
            path=path,
            status=status,
            duration_ms=round(request_time * 1000, 1),
            user_agent=cap_field(header(scope, b"user-agent") or "") or None,
        )
        quiet = path in QUIET_PATHS and status is not None and status < 400
        outcome = str(status) if response is not None else f"{status} (client closed)"
        self.access_logger.log(
            logging.DEBUG if quiet else logging.INFO,
            f"{method} {path} {outcome}",
            extra={key: value for key, value in fields.items() if value is not None},
        )
