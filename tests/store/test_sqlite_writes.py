"""Single write statements run on the event loop's thread, and never make it wait (writes.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from service.chatkit.store.sqlite import SQLiteStore
from service.chatkit.store.sqlite.writes import InlineWrites, WorkerWrites
from tests.support.builders import ALICE, thread


async def _ticks_while(task: asyncio.Task[None]) -> int:
    """How many times the event loop came round while `task` ran (it stands still while a
    statement blocks it)."""
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.01)
        ticks += 1
    await task
    return ticks


async def test_the_loop_keeps_turning_while_a_write_waits(tmp_path: Path) -> None:
    path = tmp_path / "turning.db"
    store = SQLiteStore(str(path))
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        save = asyncio.create_task(store.save_thread(thread("thr_turning"), ALICE))
        asyncio.get_running_loop().call_later(0.5, other.execute, "COMMIT")
        async with asyncio.timeout(10):
            ticks = await _ticks_while(save)
        assert ticks >= 20  # ~0.5 s of 10 ms sleeps: the loop was never blocked for the wait
        assert (await store.load_thread("thr_turning", ALICE)).id == "thr_turning"
    finally:
        other.close()
        await store.close()


async def test_a_write_never_lands_inside_a_transaction_of_the_store(tmp_path: Path) -> None:
    """A transaction open on the worker connection holds the write lock: the statement waits
    for it, then commits on its own, and the transaction's rollback does not take it along."""
    store = SQLiteStore(str(tmp_path / "tx.db"))
    await store.open()
    try:
        inside, release = asyncio.Event(), asyncio.Event()

        async def failing_transaction() -> None:
            async with store._tx(immediate=True) as db:
                await db.execute("DELETE FROM turn_locks")
                inside.set()
                await release.wait()
                raise RuntimeError("rolled back")

        transaction = asyncio.create_task(failing_transaction())
        await inside.wait()
        save = asyncio.create_task(store.save_thread(thread("thr_tx"), ALICE))
        await asyncio.sleep(0.2)
        assert not save.done()
        release.set()
        with pytest.raises(RuntimeError):
            await transaction
        await asyncio.wait_for(save, 10)
        assert (await store.load_thread("thr_tx", ALICE)).id == "thr_tx"
    finally:
        await store.close()


async def test_the_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    """The inline connection never checkpoints (a checkpoint syncs files); every so many writes
    another connection does, off the loop, so the WAL does not grow without bound even though
    writes never pause."""
    path = tmp_path / "wal.db"
    worker = await aiosqlite.connect(path, isolation_level=None)
    await worker.execute_fetchall("PRAGMA journal_mode = WAL")
    await worker.execute_fetchall("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)")
    writes = InlineWrites(str(path), WorkerWrites(worker, asyncio.Lock()), checkpoint_every=50)
    largest = 0
    try:
        for n in range(1000):  # ~4 MB of rows; a write is never more than 1 ms away
            await writes.execute("INSERT INTO blobs (data) VALUES (?)", (b"x" * 4000,))
            await asyncio.sleep(0.001 if n % 10 == 0 else 0)
            largest = max(largest, _size(f"{path}-wal"))
    finally:
        await writes.close()
        await worker.close()
    # Without checkpoints, or with passive ones (which these writes keep overtaking), the WAL
    # holds every row: over 4 MB.
    assert largest < 2_000_000
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM blobs").fetchone() == (1000,)


def _size(path: str) -> int:
    return Path(path).stat().st_size


async def test_other_errors_are_raised_not_retried(tmp_path: Path) -> None:
    path = tmp_path / "errors.db"
    worker = await aiosqlite.connect(path, isolation_level=None)
    await worker.execute("CREATE TABLE once (id INTEGER PRIMARY KEY)")

    writes = InlineWrites(str(path), WorkerWrites(worker, asyncio.Lock()))
    try:
        await writes.execute("INSERT INTO once (id) VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError):
            await writes.execute("INSERT INTO once (id) VALUES (1)")
    finally:
        await writes.close()
        await worker.close()
