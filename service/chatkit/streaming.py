"""Relays a ChatKit SSE stream to the client from a task of its own.

Why a task: when the client disconnects, the framework either cancels the request task or
closes the body generator with `GeneratorExit`, depending on where it was waiting. The SDK only
saves the partial answer (and we only stop the model run) on a `CancelledError` raised inside
its own code. Running the SDK's generator in a separate task, which never awaits anything but
the SDK, makes every disconnect arrive there as a `CancelledError`.

The relay also waits for the first event before the HTTP status is chosen, so errors raised
before the stream starts (an unknown thread, say) become proper 4xx answers.

While the stream is open the relay sends a heartbeat comment whenever no event has come for a
while (idle-timeout proxies), counts the stream as in flight, ends it with a retry notice when a
shutdown drain runs out of time, and records how it ended when it does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from chatkit.errors import CustomStreamError
from chatkit.store import NotFoundError

from service.chatkit.errors import ConversationBusy
from service.chatkit.outcomes import (
    CANCELLED,
    COMPLETED,
    ERROR,
    REJECTED,
    report_request,
    server_failure,
)
from service.lifecycle import Lifecycle
from service.observability.context import current_request
from service.observability.metrics import Metrics

logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
HEARTBEAT = b": heartbeat\n\n"
DRAIN_NOTICE = (
    "The server is restarting and stopped this answer. Send your message again to continue."
)

_ERROR_EVENT = b'data: {"type":"error"'
_THREAD_CREATED_EVENT = b'data: {"type":"thread.created"'


class _End:
    pass


class _Interrupt:
    pass


_END = _End()
_INTERRUPT = _Interrupt()


def sse_error(message: str, *, allow_retry: bool) -> bytes:
    event = {"type": "error", "code": "custom", "message": message, "allow_retry": allow_retry}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _thread_id(thread_created: bytes) -> str | None:
    try:
        return str(json.loads(thread_created[len(b"data: ") :])["thread"]["id"])
    except (ValueError, KeyError, TypeError):
        return None  # only a log field: never worth failing the stream for


def describe_stream_failure(exc: BaseException) -> tuple[str, bool]:
    if isinstance(exc, NotFoundError):
        return f"Not found: {exc}", False
    if isinstance(exc, CustomStreamError):
        return exc.message, exc.allow_retry
    return "The server failed while answering. Try again.", True


@dataclass(frozen=True, slots=True)
class RelayOptions:
    metrics: Metrics
    lifecycle: Lifecycle
    heartbeat_seconds: float


class StreamRelay:
    def __init__(
        self, source: AsyncIterable[bytes], *, request_type: str, options: RelayOptions
    ) -> None:
        self._source = source
        self._type = request_type
        self._options = options
        # Unbounded on purpose: the pump must never wait on anything but the SDK (see above).
        self._queue: asyncio.Queue[bytes | BaseException | _End | _Interrupt] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._first: bytes = b""
        self._started = time.perf_counter()
        self._error_seen = False
        self._rejection: str | None = None
        self._finished = False

    async def start(self) -> None:
        """Run the source until its first event; raise what it raised before that."""
        self._open()
        self._task = asyncio.create_task(self._pump())
        try:
            first = await self._queue.get()
        except BaseException:
            await self.stop()
            self._close()
            raise
        if isinstance(first, ConversationBusy):
            self._rejection = "busy"
            first = sse_error(first.message, allow_retry=True)
        elif isinstance(first, BaseException):
            await self.stop()
            self._close()
            raise first
        if isinstance(first, _End | _Interrupt):
            self._queue.put_nowait(first)
            first = b""
        self._first = first

    def interrupt(self) -> None:
        """Called by the drain: end the stream after the events already queued."""
        self._queue.put_nowait(_INTERRUPT)

    async def _pump(self) -> None:
        try:
            async for chunk in self._source:
                self._queue.put_nowait(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._queue.put_nowait(exc)
        finally:
            self._queue.put_nowait(_END)

    async def events(self) -> AsyncIterator[bytes]:
        """The response body. Closing it early (client gone) cancels the source's task."""
        outcome, error_type = CANCELLED, ""
        try:
            if self._first:
                yield self._seen(self._first)
            while True:
                item = await self._next()
                if item is None:
                    yield HEARTBEAT
                    continue
                if isinstance(item, _End):
                    outcome, error_type = self._ending()
                    return
                if isinstance(item, _Interrupt):
                    await self.stop()  # lets the SDK save the partial answer first
                    outcome, error_type = ERROR, "draining"
                    yield sse_error(DRAIN_NOTICE, allow_retry=True)
                    return
                if isinstance(item, BaseException):
                    message, allow_retry = describe_stream_failure(item)
                    if isinstance(item, NotFoundError):
                        outcome, error_type = ERROR, "not_found"
                    else:
                        logger.error("stream failed", exc_info=item)
                        outcome, error_type = ERROR, server_failure(current_request())
                    yield sse_error(message, allow_retry=allow_retry)
                    return
                yield self._seen(item)
        finally:
            await self.stop()
            self._finish(outcome, error_type)

    async def _next(self) -> bytes | BaseException | _End | _Interrupt | None:
        """The next queued item, or None when a heartbeat is due first."""
        try:
            async with asyncio.timeout(self._options.heartbeat_seconds):
                return await self._queue.get()
        except TimeoutError:
            return None

    def _seen(self, chunk: bytes) -> bytes:
        if chunk.startswith(_ERROR_EVENT):
            self._error_seen = True
        elif chunk.startswith(_THREAD_CREATED_EVENT):
            request = current_request()
            if request is not None:
                request.thread_id = _thread_id(chunk)
        return chunk

    def _ending(self) -> tuple[str, str]:
        if self._rejection is not None:
            return REJECTED, self._rejection
        if self._error_seen:
            return ERROR, server_failure(current_request())
        return COMPLETED, ""

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # Let the SDK save the partial answer; our own cancellation must not cut that short.
            await asyncio.wait({task})

    # --- bookkeeping -------------------------------------------------------------------------

    def _open(self) -> None:
        self._options.lifecycle.add_stream(self)
        self._options.metrics.streams_in_flight.inc()

    def _close(self) -> None:
        self._options.lifecycle.remove_stream(self)
        self._options.metrics.streams_in_flight.dec()

    def _finish(self, outcome: str, error_type: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._close()
        seconds = time.perf_counter() - self._started
        metrics = self._options.metrics
        metrics.stream_duration.labels(self._type, outcome).observe(seconds)
        report_request(metrics, self._type, outcome, error_type, seconds)
