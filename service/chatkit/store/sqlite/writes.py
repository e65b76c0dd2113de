"""Single write statements on the event loop's thread, when they need not wait.

A turn writes a few rows (its turn lock, the user's message, the answer, the thread). Through
the writer's worker thread each statement waited for a turn of the event loop, under the lock
that keeps statements out of each other's transactions, so under load the writes of all
requests queued behind each other a loop turn or more apiece: at 100 concurrent turns a
follow-up waited ~0.2 s for its turn lock statement alone. In WAL mode with
`synchronous = NORMAL` a commit appends to the WAL without syncing it, and a one-row statement
takes tens of microseconds, so single statements run here, with no busy timeout. When the
file's write lock is held (another process writing, or a transaction of ours on the worker
thread) SQLite answers "busy" at once and the statement goes to the worker thread, which waits
for the lock as before.

Checkpoints, which sync the files, never run here: this connection's automatic checkpoint is
off, and every `checkpoint_every` writes a connection of its own on a worker thread checkpoints
in RESTART mode. A passive checkpoint would race the writes that go on meanwhile, and the WAL
only starts over from its beginning after a checkpoint that no write overtook: under steady load
it grew without end. RESTART holds new writes back while it copies (they go to the writer's
thread and wait there), for at most `CHECKPOINT_PATIENCE` seconds when a reader is slow to let go.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import aiosqlite

logger = logging.getLogger(__name__)

_WAIT_ELSEWHERE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
CHECKPOINT_EVERY = 1000
CHECKPOINT_PATIENCE = 0.5


class Written(Protocol):
    """What a write statement tells (both drivers' cursors)."""

    @property
    def rowcount(self) -> int: ...


class Writer(Protocol):
    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Written: ...


class WorkerWrites:
    """Statements on the worker thread (an in-memory database has only that connection), each
    under the lock that keeps them out of the store's transactions on that connection."""

    def __init__(self, worker: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._worker = worker
        self._lock = lock

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Written:
        async with self._lock:
            return await self._worker.execute(sql, parameters)

    async def close(self) -> None:
        """Nothing of its own to close: the worker connection is the store's."""


class InlineWrites:
    def __init__(
        self,
        path: str,
        worker: WorkerWrites,
        *,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        """`worker`: where a statement that would wait goes."""
        self._path = path
        self._connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("busy_timeout = 0", "foreign_keys = ON", "synchronous = NORMAL"):
            self._connection.execute(f"PRAGMA {pragma}")
        self._connection.execute("PRAGMA wal_autocheckpoint = 0")
        self._worker = worker
        self._checkpoint_every = checkpoint_every
        self._since_checkpoint = 0
        self._checkpointing: asyncio.Task[None] | None = None

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Written:
        try:
            cursor = self._connection.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in _WAIT_ELSEWHERE:
                raise
            return await self._worker.execute(sql, parameters)
        self._since_checkpoint += 1
        if self._since_checkpoint >= self._checkpoint_every:
            self._start_checkpoint()
        return cursor

    def _start_checkpoint(self) -> None:
        if self._checkpointing is not None and not self._checkpointing.done():
            return
        self._since_checkpoint = 0
        self._checkpointing = asyncio.create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        try:
            await asyncio.to_thread(_checkpoint, self._path)
        except Exception:  # the WAL grows until the next one; nothing is lost
            logger.warning("could not checkpoint the SQLite WAL", exc_info=True)

    async def close(self) -> None:
        task, self._checkpointing = self._checkpointing, None
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        self._connection.close()


def _checkpoint(path: str) -> None:
    connection = sqlite3.connect(path, timeout=CHECKPOINT_PATIENCE, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
    finally:
        connection.close()
