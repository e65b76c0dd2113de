"""How a ChatKit request ended: counted in `chatkit_requests_total` and logged, once.

Outcomes: `ok` (JSON request answered), `completed` (stream ended normally), `cancelled`
(client left), `error` (stream ended with an error event, or a server-side failure), `rejected`
(refused before any work). `error_type` names the cause of an error or rejection.
"""

from __future__ import annotations

import logging

from chatkit.store import NotFoundError
from werkzeug.exceptions import HTTPException

from service.auth import AuthenticationError
from service.chatkit.errors import ClientError
from service.observability.context import RequestLog
from service.observability.metrics import Metrics

logger = logging.getLogger(__name__)

OK = "ok"
COMPLETED = "completed"
CANCELLED = "cancelled"
ERROR = "error"
REJECTED = "rejected"

TYPE_INVALID = "invalid"
"""The body could not be read or parsed as a ChatKit request."""
TYPE_UNKNOWN = "unknown"
"""Refused before the body was read (authentication)."""


def classify_failure(exc: BaseException, request: RequestLog | None) -> tuple[str, str]:
    """(outcome, error_type) of a request that raised before answering."""
    if isinstance(exc, AuthenticationError):
        return REJECTED, "auth"
    if isinstance(exc, NotFoundError):
        return REJECTED, "not_found"
    if isinstance(exc, ClientError):
        return (REJECTED if exc.status < 500 else ERROR), exc.code
    if isinstance(exc, HTTPException) and exc.code is not None and exc.code < 500:
        return REJECTED, "too_large" if exc.code == 413 else "bad_request"
    return ERROR, server_failure(request)


def server_failure(request: RequestLog | None) -> str:
    """The cause of a server-side failure: the one noted during the request, else a guess."""
    if request is not None and request.error_type:
        return request.error_type
    if request is not None and request.store_failed:
        return "store_unavailable"
    return "internal"


def report_request(
    metrics: Metrics, request_type: str, outcome: str, error_type: str, seconds: float
) -> None:
    metrics.chatkit_requests.labels(request_type, outcome, error_type).inc()
    cause = f" ({error_type})" if error_type else ""
    logger.log(
        logging.WARNING if outcome == ERROR else logging.INFO,
        f"{request_type} {outcome}{cause}",
        extra={
            "request_type": request_type,
            "outcome": outcome,
            "error_type": error_type or None,
            "duration_ms": round(seconds * 1000, 1),
        },
    )
