"""One turn at a time per thread, within this process (the default for a single process)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from service.chatkit.errors import ConversationBusy


class LocalTurnLocks:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, thread_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(thread_id, asyncio.Lock())
        self._users[thread_id] = self._users.get(thread_id, 0) + 1
        try:
            try:
                await asyncio.wait_for(lock.acquire(), self.timeout)
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
