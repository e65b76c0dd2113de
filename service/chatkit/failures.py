"""The failure table: how every failure is answered, counted and logged, in one place.

`FailureTable.classify(exc)` gives one `Failure` for any exception met while answering a
request. The HTTP error handlers, the stream's error events, the request metrics and the closing
log line all read it, so adding a failure kind is adding one row here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from chatkit.errors import CustomStreamError
from chatkit.store import NotFoundError
from quart import Response, jsonify
from werkzeug.exceptions import HTTPException

from service.agents.errors import describe_model_failure
from service.agents.factory import ModelHandle
from service.auth import AuthenticationError, IdentityProviderUnavailable
from service.chatkit.errors import ClientError, ConversationBusy, LimitExceeded, ServerDraining
from service.chatkit.store.base import StoreUnavailableError

logger = logging.getLogger(__name__)

OK = "ok"
COMPLETED = "completed"
CANCELLED = "cancelled"
ERROR = "error"
REJECTED = "rejected"

MAX_ECHOED_CHARS = 200
"""Client-supplied text (an id in a 404, say) is cut to this many characters in answers."""

DRAINING_MESSAGE = "This server is shutting down; send the message again in a moment."
INTERNAL_MESSAGE = "The server failed while answering. Try again."


def cap(text: str, limit: int = MAX_ECHOED_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Failure:
    status: int
    """The HTTP status of a JSON answer (a stream answers 200 and ends with an error event)."""
    code: str
    """The JSON error envelope's `code`."""
    outcome: str
    """`rejected` (the client's doing, or refused before any work) or `error` (ours)."""
    error_type: str
    """The cause, for metrics and logs."""
    message: str
    """One line for the person: what happened and what to do. Never carries a secret."""
    retryable: bool
    expected: bool = True
    """False for failures nobody anticipated: those are logged with their traceback."""
    retry_after: int | None = None


class FailureTable:
    def __init__(self, model: ModelHandle) -> None:
        self._model = model
        self._rows: list[tuple[type[BaseException], Callable[[BaseException], Failure]]] = [
            (AuthenticationError, _unauthenticated),
            (IdentityProviderUnavailable, _auth_unavailable),
            (NotFoundError, _not_found),
            (ClientError, _client_error),
            (HTTPException, _http_error),
            (ConversationBusy, _busy),
            (ServerDraining, _draining),
            (LimitExceeded, _limited),
            (StoreUnavailableError, _store_unavailable),
            # after our own CustomStreamError subclasses (the store's, above)
            (CustomStreamError, _custom_stream_error),
        ]

    def classify(self, exc: BaseException) -> Failure:
        for kind, describe in self._rows:
            if isinstance(exc, kind):
                return describe(exc)
        model_failure = describe_model_failure(exc, self._model)
        if model_failure is not None:
            return Failure(
                502,
                "model_error",
                ERROR,
                model_failure.kind,
                model_failure.message,
                model_failure.retryable,
            )
        return Failure(500, "internal_error", ERROR, "internal", INTERNAL_MESSAGE, True, False)


def _unauthenticated(exc: BaseException) -> Failure:
    return Failure(401, "unauthenticated", REJECTED, "auth", str(exc), False)


def _auth_unavailable(exc: BaseException) -> Failure:
    # Our outage, not the caller's mistake: a 401 would send users back to sign in.
    message = str(exc)
    return Failure(503, "auth_unavailable", ERROR, "auth_unavailable", message, True, retry_after=5)


def _not_found(exc: BaseException) -> Failure:
    return Failure(404, "not_found", REJECTED, "not_found", cap(str(exc) or "not found"), False)


def _client_error(exc: BaseException) -> Failure:
    assert isinstance(exc, ClientError)
    outcome = REJECTED if exc.status < 500 else ERROR
    return Failure(exc.status, exc.code, outcome, exc.code, cap(exc.message, 500), False)


def _http_error(exc: BaseException) -> Failure:
    assert isinstance(exc, HTTPException)
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    if status >= 500:
        return Failure(status, code, ERROR, "internal", INTERNAL_MESSAGE, True, False)
    error_type = "too_large" if status == 413 else "bad_request"
    return Failure(status, code, REJECTED, error_type, exc.description or exc.name, False)


def _busy(exc: BaseException) -> Failure:
    assert isinstance(exc, ConversationBusy)
    return Failure(409, "busy", REJECTED, "busy", exc.message, True)


def _draining(_: BaseException) -> Failure:
    return Failure(503, "draining", REJECTED, "draining", DRAINING_MESSAGE, True, retry_after=1)


def _limited(exc: BaseException) -> Failure:
    assert isinstance(exc, LimitExceeded)
    return Failure(
        429, "rate_limited", REJECTED, exc.limit, exc.message, True, retry_after=exc.retry_after
    )


def _store_unavailable(exc: BaseException) -> Failure:
    assert isinstance(exc, StoreUnavailableError)
    return Failure(
        503, "store_unavailable", ERROR, "store_unavailable", exc.message, True, retry_after=2
    )


def _custom_stream_error(exc: BaseException) -> Failure:
    assert isinstance(exc, CustomStreamError)
    return Failure(500, "custom", ERROR, "custom", exc.message, exc.allow_retry)


def error_response(failure: Failure) -> Response:
    """The JSON answer of a failed request: `{"error": {"code", "message"}}`."""
    response = jsonify({"error": {"code": failure.code, "message": failure.message}})
    response.status_code = failure.status
    if failure.retry_after is not None:
        response.headers["Retry-After"] = str(failure.retry_after)
    if failure.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def log_failure(failure: Failure, exc: BaseException) -> None:
    """A server-side failure's log line: a traceback only for the unexpected ones."""
    if not failure.expected:
        logger.error("request failed: %s", type(exc).__name__, exc_info=exc)
    elif failure.outcome == ERROR:
        logger.warning("request failed: %s", failure.error_type)
