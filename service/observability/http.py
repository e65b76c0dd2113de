"""Every HTTP request: a request id (accepted or generated, echoed back), the URL rule it matched,
and the `chatkit_http_*` series when it ends."""

from __future__ import annotations

import time
from typing import Any, cast

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from quart import Quart, request

from service.observability.context import (
    SCOPE_KEY,
    RequestLog,
    accept_request_id,
    bind_request,
    current_request,
    header,
    unbind_request,
)
from service.observability.metrics import Metrics
from service.observability.redaction import Redactor

REQUEST_ID_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499
"""Status recorded when the client left before any response (nginx's convention)."""


class RequestObserver:
    """ASGI middleware around the Quart app (outermost, so every task Quart starts inherits the
    request's context)."""

    def __init__(self, app: Any, metrics: Metrics, redactor: Redactor) -> None:
        self._app = app
        self._metrics = metrics
        self._redactor = redactor

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request_id_header = header(scope, REQUEST_ID_HEADER)
        log = RequestLog(
            request_id=accept_request_id(request_id_header, self._redactor.hides_part_of)
        )
        cast(dict[str, Any], scope)[SCOPE_KEY] = log
        request_id = log.request_id.encode()

        async def send_with_request_id(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.start":
                log.status = message["status"]
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != REQUEST_ID_HEADER
                ]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, request_id)]}
            await send(message)

        started = time.perf_counter()
        token = bind_request(log)
        try:
            await self._app(scope, receive, send_with_request_id)
        except Exception:
            if log.status is None:
                log.status = 500
            raise
        finally:
            unbind_request(token)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            status = str(log.status if log.status is not None else CLIENT_CLOSED)
            self._metrics.http_requests.labels(log.route, method, status).inc()
            self._metrics.http_request_duration.labels(log.route, method).observe(
                time.perf_counter() - started
            )


def observe_requests(app: Quart, metrics: Metrics, redactor: Redactor) -> None:
    """Install the middleware and the hook that names each request's URL rule."""
    app.asgi_app = RequestObserver(app.asgi_app, metrics, redactor)  # type: ignore[method-assign]

    @app.before_request
    async def note_route() -> None:
        log = current_request()
        if log is not None and request.url_rule is not None:
            log.route = request.url_rule.rule
