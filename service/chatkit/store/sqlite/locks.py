"""Turn locks shared by every process using one SQLite file (WORKERS > 1): leased rows.

A held thread has a row in `turn_locks` naming its holder and a lease expiry (wall-clock
microseconds, comparable across processes). The holder renews the lease while the turn runs;
a crashed process stops renewing, and its rows expire after `lease` seconds, when the next
waiter takes them over. Waiters poll; each attempt is one statement, atomic on its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from service.chatkit.errors import ConversationBusy
from service.chatkit.store.base import now_micros
from service.chatkit.store.locks import LocalTurnLocks, try_until
from service.chatkit.store.sqlite.writes import Writer

logger = logging.getLogger(__name__)

Statement = Callable[[], AbstractAsyncContextManager[Writer]]
_RENEW_BATCH = 500


class LeaseTurnLocks:
    def __init__(self, statement: Statement, *, lease: float = 15.0) -> None:
        """`statement`: the writer connection for one statement (atomic on its own)."""
        self._statement = statement
        self.lease = lease
        self._local = LocalTurnLocks(timeout=lease)
        # One holder name for this store: its local lock lets one turn per thread reach here.
        self._holder = uuid.uuid4().hex
        self._held: set[str] = set()
        self._renewal: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def hold(self, thread_id: str, deadline: float) -> AsyncIterator[None]:
        """Hold the thread's lock, waiting until `deadline` (`time.monotonic()`) at most."""
        async with self._local.hold(thread_id, deadline=deadline):
            if not await try_until(lambda: self._try(thread_id), deadline):
                raise ConversationBusy()
            self._held.add(thread_id)
            if self._renewal is None or self._renewal.done():
                self._renewal = asyncio.create_task(self._renew())
            try:
                yield
            finally:
                self._held.discard(thread_id)
                if not self._held and self._renewal is not None:
                    self._renewal.cancel()
                # Shielded: a second cancellation of the turn must not leave the row behind.
                await asyncio.shield(self._release(thread_id))

    async def _try(self, thread_id: str) -> bool:
        """Take the row, or take over a lease that ran out, in one statement."""
        now = now_micros()
        async with self._statement() as db:
            cursor = await db.execute(
                "INSERT INTO turn_locks (thread_id, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (thread_id) DO UPDATE SET"
                " holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE turn_locks.expires_at <= ?",
                (thread_id, self._holder, now + int(self.lease * 1_000_000), now),
            )
            return cursor.rowcount == 1

    async def _renew(self) -> None:
        """Renew every lease this store holds, a batch per statement, while it holds any: a
        thousand long turns cost a few statements every `lease / 3` seconds, not a thousand."""
        while self._held:
            await asyncio.sleep(self.lease / 3)
            held = sorted(self._held)
            renewed = 0
            try:
                for start in range(0, len(held), _RENEW_BATCH):
                    batch = held[start : start + _RENEW_BATCH]
                    async with self._statement() as db:
                        cursor = await db.execute(
                            "UPDATE turn_locks SET expires_at = ? WHERE holder = ?"
                            f" AND thread_id IN ({', '.join('?' * len(batch))})",
                            (now_micros() + int(self.lease * 1_000_000), self._holder, *batch),
                        )
                        renewed += cursor.rowcount
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("could not renew the turn locks", exc_info=True)
                continue
            lost = len(self._held.intersection(held)) - renewed  # turns that ended are not lost
            if lost > 0:
                logger.warning("%d turn lock(s) expired while their turns were running", lost)

    async def _release(self, thread_id: str) -> None:
        try:
            async with self._statement() as db:
                await db.execute(
                    "DELETE FROM turn_locks WHERE thread_id = ? AND holder = ?",
                    (thread_id, self._holder),
                )
        except Exception:
            # The lease runs out on its own; the thread is busy until then.
            logger.warning("could not release the turn lock of %s", thread_id, exc_info=True)
