"""Turn locks across replicas: PostgreSQL session-level advisory locks.

Each process keeps one connection of its own (outside the pool, so long turns never starve
the pool) on which it takes `pg_try_advisory_lock(key(thread))`, polling until the deadline.
The lock lives as long as that session: if the process dies or the connection breaks, the
server releases it. Session locks are re-entrant within one session, so turns of one process
first queue on an in-process lock; only one of them at a time asks the database.

Needs a direct connection or a session-pooling proxy (not PgBouncer's transaction pooling).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg

from service.chatkit.errors import ConversationBusy
from service.chatkit.store.base import StoreUnavailableError
from service.chatkit.store.locks import LocalTurnLocks, try_until
from service.chatkit.store.postgres.errors import describe, is_unavailable

logger = logging.getLogger(__name__)

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
Connect: TypeAlias = Callable[[], Awaitable[Connection]]


def advisory_key(thread_id: str) -> int:
    """A signed 64-bit key for the thread (the advisory lock space is one bigint)."""
    # surrogatepass: an id with a lone surrogate still gets a key (and then finds no thread).
    text = thread_id.encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(text, digest_size=8, person=b"chatkit-turn").digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryTurnLocks:
    def __init__(self, connect: Connect, address: str) -> None:
        """`address`: the server's host and port, for log lines and errors."""
        self._connect = connect
        self._address = address
        self._conn: Connection | None = None
        self._mutex = asyncio.Lock()  # one statement at a time on the lock connection
        self._local = LocalTurnLocks(timeout=0.0)
        self._held: set[int] = set()

    @asynccontextmanager
    async def hold(self, thread_id: str, deadline: float) -> AsyncIterator[None]:
        """Hold the thread's lock, waiting until `deadline` (`time.monotonic()`) at most."""
        async with self._local.hold(thread_id, deadline=deadline):
            key = advisory_key(thread_id)
            holder: list[Connection] = []

            async def attempt() -> bool:
                conn = await self._try(key)
                if conn is not None:
                    holder.append(conn)
                return conn is not None

            if not await try_until(attempt, deadline):
                raise ConversationBusy()
            try:
                yield
            finally:
                # Shielded: a turn cancelled twice must still unlock, or the thread stays busy
                # until this process's lock connection closes.
                await asyncio.shield(self._release(holder[0], key))

    async def _try(self, key: int) -> Connection | None:
        async with self._mutex:
            for attempt in (1, 2):
                conn = await self._connection()
                try:
                    acquired = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
                except Exception as exc:
                    if not is_unavailable(exc, conn.is_closed()):
                        raise
                    self._drop(conn)
                    if attempt == 2:
                        raise StoreUnavailableError(self._lost(exc)) from exc
                    continue
                if acquired:
                    self._held.add(key)
                    return conn
                return None
        raise AssertionError("unreachable")

    async def _release(self, conn: Connection, key: int) -> None:
        async with self._mutex:
            self._held.discard(key)
            if conn is not self._conn or conn.is_closed():
                return  # that session ended, and the server released its locks with it
            try:
                await conn.fetchval("SELECT pg_advisory_unlock($1)", key)
            except Exception as exc:
                # Closing the session is the only sure way to free the lock now.
                logger.warning("could not release a turn lock (%s); reconnecting", self._lost(exc))
                self._drop(conn)

    async def _connection(self) -> Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        self._conn = None
        self._held.clear()
        try:
            conn = await self._connect()
        except Exception as exc:
            if is_unavailable(exc):
                raise StoreUnavailableError(self._lost(exc)) from exc
            raise
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        return conn

    def _lost(self, exc: BaseException) -> str:
        return f"turn lock, database at {self._address}: {describe(exc)}"

    def _terminated(self, conn: Any) -> None:
        if conn is self._conn:
            self._warn_lost()

    def _drop(self, conn: Connection) -> None:
        if conn is self._conn:
            self._conn = None
            self._warn_lost()
            self._held.clear()
        conn.terminate()

    def _warn_lost(self) -> None:
        if self._held:
            logger.warning(
                "the turn-lock connection closed while %d turn(s) held locks; "
                "those threads are unprotected until their turns end",
                len(self._held),
            )

    async def close(self) -> None:
        async with self._mutex:
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is not None and not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), 5.0)
                except Exception:
                    conn.terminate()
