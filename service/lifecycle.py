"""Graceful shutdown: stop being ready, refuse new streams, give open streams a drain budget.

On SIGTERM `begin_drain()` runs at once (readiness turns false, new streams get 503), then
`drain()` waits until no stream is open or the budget is spent; streams still open then are
interrupted, each ending with a notice that asks the user to send the message again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger(__name__)

INTERRUPT_GRACE_SECONDS = 5.0
"""How long interrupted streams get to save their partial answer and send the notice."""


class Interruptible(Protocol):
    def interrupt(self) -> None:
        """End as soon as possible, telling the client to retry."""


class Lifecycle:
    def __init__(self) -> None:
        self._draining = False
        self._interrupting = False
        self._streams: set[Interruptible] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._drain_listeners: list[Callable[[], None]] = []

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def on_drain(self, listener: Callable[[], None]) -> None:
        self._drain_listeners.append(listener)

    def begin_drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        logger.info("draining: not ready, no new streams; %d stream(s) open", len(self._streams))
        for listener in self._drain_listeners:
            listener()

    def add_stream(self, stream: Interruptible) -> None:
        self._streams.add(stream)
        self._idle.clear()
        if self._interrupting:
            stream.interrupt()

    def remove_stream(self, stream: Interruptible) -> None:
        self._streams.discard(stream)
        if not self._streams:
            self._idle.set()

    def interrupt_streams(self) -> None:
        self._interrupting = True
        for stream in list(self._streams):
            stream.interrupt()

    async def drain(self, budget: float, grace: float = INTERRUPT_GRACE_SECONDS) -> None:
        """Return once every stream has ended, interrupting those still open after `budget`."""
        self.begin_drain()
        if not await self._wait_idle(budget):
            logger.warning(
                "drain budget of %gs spent; interrupting %d open stream(s)",
                budget,
                len(self._streams),
            )
            self.interrupt_streams()
            if not await self._wait_idle(grace):
                logger.error("%d stream(s) did not end after interruption", len(self._streams))
        logger.info("drained")

    async def _wait_idle(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
