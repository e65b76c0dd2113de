"""A cancelled request must never leave the shared SQLite connection inside a transaction."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.chatkit.store.sqlite import SQLiteStore


async def test_cancelling_at_begin_leaves_no_open_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "cancel.db"))
    await store.open()
    try:

        async def write() -> None:
            async with store._tx(immediate=True) as db:
                await db.execute("SELECT 1")

        # Cancel right after the task starts: while its BEGIN is queued on the worker thread.
        for _ in range(50):
            task = asyncio.create_task(write())
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with asyncio.timeout(10):  # a leaked transaction makes the next BEGIN fail or hang
            await write()
        assert not store.db.in_transaction
    finally:
        await store.close()
