"""Relays a ChatKit SSE stream to the client from a task of its own: transport only.

Why a task: when the client disconnects, the framework either cancels the request task or
closes the body generator with `GeneratorExit`, depending on where it was waiting. The SDK only
saves the partial answer (and we only stop the model run) on a `CancelledError` raised inside
its own code. Running the SDK's generator in a separate task, which never awaits anything but
the SDK, makes every disconnect arrive there as a `CancelledError`.

The relay also waits for the first event before the HTTP status is chosen, so errors raised
before the stream starts (an unknown thread, say) become proper 4xx answers. While the stream is
open it sends a heartbeat comment whenever no event has come for a while (idle-timeout
proxies), and ends the stream with a retry notice when a shutdown drain runs out of time. How
the stream ended is handed to the `StreamObserver` it is given; the relay keeps no books.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from service.lifecycle import Lifecycle

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
HEARTBEAT = b": heartbeat\n\n"
DRAIN_NOTICE = (
    "The server is restarting and stopped this answer. Send your message again to continue."
)


class Ending(enum.Enum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    """The client left (or the request task was cancelled)."""
    INTERRUPTED = "interrupted"
    """A shutdown drain ran out of time."""
    FAILED = "failed"
    """The source raised after the stream had begun."""


class StreamObserver(Protocol):
    def error_event(self, error: BaseException) -> bytes:
        """The SSE error event that ends a stream whose source raised `error`."""

    def ended(self, ending: Ending, error: BaseException | None) -> None:
        """Called once, when the stream is over (or failed to start); `error` with `FAILED`."""


class _End:
    pass


class _Interrupt:
    pass


_END = _End()
_INTERRUPT = _Interrupt()


def sse_error(message: str, *, allow_retry: bool) -> bytes:
    event = {"type": "error", "code": "custom", "message": message, "allow_retry": allow_retry}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class StreamRelay:
    def __init__(
        self,
        source: AsyncIterable[bytes],
        *,
        observer: StreamObserver,
        lifecycle: Lifecycle,
        heartbeat_seconds: float,
    ) -> None:
        self._source = source
        self._observer = observer
        self._lifecycle = lifecycle
        self._heartbeat_seconds = heartbeat_seconds
        # Unbounded on purpose: the pump must never wait on anything but the SDK (see above).
        self._queue: asyncio.Queue[bytes | BaseException | _End | _Interrupt] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._first: bytes = b""
        self._finished = False

    async def start(self) -> None:
        """Run the source until its first event; raise what it raised before that.

        When this raises, the stream is over: the observer has been told (`FAILED`, or
        `CANCELLED` when the request itself was cancelled)."""
        self._lifecycle.add_stream(self)
        self._task = asyncio.create_task(self._pump())
        try:
            first = await self._queue.get()
        except BaseException:
            await self.stop()
            self._finish(Ending.CANCELLED)
            raise
        if isinstance(first, BaseException):
            await self.stop()
            self._finish(Ending.FAILED, first)
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
        ending, error = Ending.CANCELLED, None
        try:
            if self._first:
                yield self._first
            while True:
                item = await self._next()
                if item is None:
                    yield HEARTBEAT
                elif isinstance(item, _End):
                    ending = Ending.COMPLETED
                    return
                elif isinstance(item, _Interrupt):
                    await self.stop()  # lets the SDK save the partial answer first
                    ending = Ending.INTERRUPTED
                    yield sse_error(DRAIN_NOTICE, allow_retry=True)
                    return
                elif isinstance(item, BaseException):
                    ending, error = Ending.FAILED, item
                    yield self._observer.error_event(item)
                    return
                else:
                    yield item
        finally:
            await self.stop()
            self._finish(ending, error)

    async def _next(self) -> bytes | BaseException | _End | _Interrupt | None:
        """The next queued item, or None when a heartbeat is due first."""
        try:
            async with asyncio.timeout(self._heartbeat_seconds):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # Let the SDK save the partial answer; our own cancellation must not cut that short.
            await asyncio.wait({task})

    def _finish(self, ending: Ending, error: BaseException | None = None) -> None:
        if self._finished:
            return
        self._finished = True
        self._lifecycle.remove_stream(self)
        self._observer.ended(ending, error)
