"""One turn at a time per thread, within this process (the default for a single process).

The cross-process locks of the SQLite and PostgreSQL stores take this lock first, so turns of
one process queue here and only one of them at a time waits on the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from service.chatkit.errors import ConversationBusy


class LocalTurnLocks:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, thread_id: str, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Wait until `deadline` (`time.monotonic()`), by default `timeout` from now."""
        wait = self.timeout if deadline is None else max(0.0, deadline - time.monotonic())
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._users[thread_id] = self._users.get(thread_id, 0) + 1
        try:
            try:
                await asyncio.wait_for(lock.acquire(), wait)
            except TimeoutError:
                raise ConversationBusy() from None
            try:
                yield
            finally:
                lock.release()
        finally:
            self._users[thread_id] -= 1
            if self._users[thread_id] == 0:
                del self._users[thread_id], self._locks[thread_id]


async def try_until(
    try_once: Callable[[], Awaitable[bool]], deadline: float, *, cap: float = 0.25
) -> bool:
    """Call `try_once` until it succeeds or `time.monotonic()` passes `deadline`, backing off."""
    delay = 0.02
    while True:
        if await try_once():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, cap)
