"""How a ChatKit request ended: counted in `chatkit_requests_total` and logged, once.

Outcomes: `ok` (JSON request answered), `completed` (stream ended normally), `cancelled`
(client left), `error` (stream ended with an error event, or a server-side failure), `rejected`
(refused before any work, or the client's mistake). `error_type` names the cause; both come from
the failure table.
"""

from __future__ import annotations

import logging
import time

from service.chatkit.failures import (
    CANCELLED,
    COMPLETED,
    ERROR,
    OK,
    Failure,
    FailureTable,
    log_failure,
)
from service.chatkit.streaming import Ending, sse_error
from service.observability.metrics import Metrics
from service.request_context import Turn

logger = logging.getLogger(__name__)

TYPE_INVALID = "invalid"
"""The body could not be read or parsed as a ChatKit request."""
TYPE_UNKNOWN = "unknown"
"""Refused before the body was read (authentication)."""


class OutcomeRecorder:
    def __init__(self, metrics: Metrics, failures: FailureTable) -> None:
        self.metrics = metrics
        self.failures = failures

    def answered(self, request_type: str, started: float) -> None:
        self.record(request_type, OK, "", started)

    def failed(self, request_type: str, error: BaseException, started: float) -> Failure:
        """Record a request that failed before any answer; returns how to answer it."""
        failure = self.failures.classify(error)
        log_failure(failure, error)
        self.record(request_type, failure.outcome, failure.error_type, started)
        return failure

    def cancelled(self, request_type: str, started: float) -> None:
        self.record(request_type, CANCELLED, "", started)

    def error_event(self, error: BaseException) -> bytes:
        """The SSE error event that tells the person what went wrong."""
        failure = self.failures.classify(error)
        return sse_error(failure.message, allow_retry=failure.retryable)

    def stream(self, turn: Turn) -> TurnRecorder:
        return TurnRecorder(self, turn)

    def record(self, request_type: str, outcome: str, error_type: str, started: float) -> None:
        seconds = time.perf_counter() - started
        self.metrics.chatkit_requests.labels(request_type, outcome, error_type).inc()
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


class TurnRecorder:
    """The books of one stream: in flight while open, then its outcome from the `Turn`."""

    def __init__(self, recorder: OutcomeRecorder, turn: Turn) -> None:
        self._recorder = recorder
        self._turn = turn
        self._started = time.perf_counter()
        recorder.metrics.streams_in_flight.inc()

    def error_event(self, error: BaseException) -> bytes:
        return self._recorder.error_event(error)

    def ended(self, ending: Ending, error: BaseException | None) -> None:
        turn, metrics = self._turn, self._recorder.metrics
        metrics.streams_in_flight.dec()
        if error is not None:
            turn.fail(error)
        if turn.error is not None:
            failure = self._recorder.failures.classify(turn.error)
            if error is not None:
                log_failure(failure, error)
            outcome, error_type = failure.outcome, failure.error_type
        elif ending is Ending.INTERRUPTED:
            outcome, error_type = ERROR, "draining"
        elif ending is Ending.CANCELLED:
            outcome, error_type = CANCELLED, ""
        else:
            outcome, error_type = COMPLETED, ""
        metrics.stream_duration.labels(turn.request_type, outcome).observe(
            time.perf_counter() - self._started
        )
        self._recorder.record(turn.request_type, outcome, error_type, self._started)
