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


async def test_reads_do_not_wait_for_a_write_in_progress(tmp_path: Path) -> None:
    """A turn's reads (thread, history) are answered while another request holds the writer
    in a transaction: WAL readers need neither the writer nor its lock."""
    from tests.support.builders import ALICE, thread, user_message

    store = SQLiteStore(str(tmp_path / "reads.db"))
    await store.open()
    try:
        await store.save_thread(thread("thr_r"), ALICE)
        await store.add_thread_item("thr_r", user_message("thr_r", "hello", item_id="msg_1"), ALICE)
        writing, release = asyncio.Event(), asyncio.Event()

        async def long_write() -> None:
            async with store._tx(immediate=True):  # the writer, held open by another request
                writing.set()
                await release.wait()

        writer = asyncio.create_task(long_write())
        await writing.wait()
        loaded = await asyncio.wait_for(store.load_thread("thr_r", ALICE), 5)
        page = await asyncio.wait_for(store.load_thread_items("thr_r", None, 10, "asc", ALICE), 5)
        assert loaded.id == "thr_r"
        assert [item.id for item in page.data] == ["msg_1"]
        release.set()
        await writer
    finally:
        await store.close()
