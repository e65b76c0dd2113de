"""Relays a ChatKit SSE stream to the client from a task of its own.

Why a task: when the client disconnects, the framework either cancels the request task or
closes the body generator with `GeneratorExit`, depending on where it was waiting. The SDK only
saves the partial answer (and we only stop the model run) on a `CancelledError` raised inside
its own code. Running the SDK's generator in a separate task, which never awaits anything but
the SDK, makes every disconnect arrive there as a `CancelledError`.

The relay also waits for the first event before the HTTP status is chosen, so errors raised
before the stream starts (an unknown thread, say) become proper 4xx answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator

from chatkit.store import NotFoundError

from service.chatkit.errors import ConversationBusy

logger = logging.getLogger(__name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}


class _End:
    pass


_END = _End()


def sse_error(message: str, *, allow_retry: bool) -> bytes:
    event = {"type": "error", "code": "custom", "message": message, "allow_retry": allow_retry}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def describe_stream_failure(exc: BaseException) -> tuple[str, bool]:
    if isinstance(exc, NotFoundError):
        return f"Not found: {exc}", False
    return "The server failed while answering. Try again.", True


class StreamRelay:
    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        # Unbounded on purpose: the pump must never wait on anything but the SDK (see above).
        self._queue: asyncio.Queue[bytes | BaseException | _End] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._first: bytes = b""

    async def start(self) -> None:
        """Run the source until its first event; raise what it raised before that."""
        self._task = asyncio.create_task(self._pump())
        try:
            first = await self._queue.get()
        except BaseException:
            await self.stop()
            raise
        if isinstance(first, ConversationBusy):
            first = sse_error(first.message, allow_retry=True)
        elif isinstance(first, BaseException):
            await self.stop()
            raise first
        if isinstance(first, _End):
            self._queue.put_nowait(first)
            first = b""
        self._first = first

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
        try:
            if self._first:
                yield self._first
            while True:
                item = await self._queue.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, BaseException):
                    message, allow_retry = describe_stream_failure(item)
                    if not isinstance(item, NotFoundError):
                        logger.error("stream failed", exc_info=item)
                    yield sse_error(message, allow_retry=allow_retry)
                    return
                yield item
        finally:
            await self.stop()

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # Let the SDK save the partial answer; our own cancellation must not cut that short.
            await asyncio.wait({task})
