"""Turn locks between processes: two store instances on one database share nothing in memory,
exactly like two replicas (PostgreSQL) or two Hypercorn workers on one SQLite file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import asyncpg
import pytest

from service.chatkit.errors import ConversationBusy
from service.chatkit.store.base import ChatStore, to_micros
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.postgres.locks import advisory_key
from service.chatkit.store.sqlite import SQLiteStore
from tests.support.builders import ALICE, thread
from tests.support.postgres import scratch_schema, terminate


@dataclass
class Replicas:
    kind: str
    a: ChatStore
    b: ChatStore
    url: str


@pytest.fixture(params=["sqlite", "postgresql"])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    async with shared_database(request.param, tmp_path) as (url, new_store):
        a, b = new_store(), new_store()
        try:
            await a.open(migrate=True)
            await b.open(migrate=True)
            yield Replicas(request.param, a, b, url)
        finally:
            await a.close()
            await b.close()


@asynccontextmanager
async def shared_database(
    kind: str, tmp_path: Path
) -> AsyncIterator[tuple[str, Callable[[], ChatStore]]]:
    """A database and a way to open another "process" on it."""
    if kind == "sqlite":
        path = str(tmp_path / "shared.db")
        yield path, lambda: SQLiteStore(path)
        return
    async with scratch_schema("locks") as url:
        yield url, lambda: PostgresStore(url, max_size=3)


async def a_thread(store: ChatStore) -> str:
    t = thread()
    await store.save_thread(t, ALICE)
    return t.id


async def test_turns_through_two_instances_never_overlap(replicas: Replicas) -> None:
    thread_id = await a_thread(replicas.a)
    log: list[str] = []

    async def turn(store: ChatStore, name: str) -> None:
        for n in range(3):
            async with store.turn_lock(thread_id, ALICE):
                log.append(f"{name}{n} start")
                await asyncio.sleep(0.03)
                log.append(f"{name}{n} end")

    await asyncio.gather(turn(replicas.a, "a"), turn(replicas.b, "b"))
    assert len(log) == 12
    for start, end in zip(log[::2], log[1::2], strict=True):
        assert start.replace("start", "end") == end, log


async def test_a_held_thread_is_busy_for_the_other_instance_until_released(
    replicas: Replicas,
) -> None:
    thread_id = await a_thread(replicas.a)
    other_id = await a_thread(replicas.a)
    replicas.b.turn_lock_timeout = 0.3
    async with replicas.a.turn_lock(thread_id, ALICE):
        started = time.monotonic()
        with pytest.raises(ConversationBusy):
            async with replicas.b.turn_lock(thread_id, ALICE):
                pass
        assert time.monotonic() - started >= 0.25
        async with replicas.b.turn_lock(other_id, ALICE):  # other threads are free
            pass
    async with replicas.b.turn_lock(thread_id, ALICE):
        pass


async def test_a_waiting_turn_gets_the_thread_when_it_is_released(replicas: Replicas) -> None:
    thread_id = await a_thread(replicas.a)
    released = asyncio.Event()

    async def hold_briefly() -> None:
        async with replicas.a.turn_lock(thread_id, ALICE):
            await asyncio.sleep(0.3)
            released.set()

    holder = asyncio.create_task(hold_briefly())
    await asyncio.sleep(0.05)
    async with replicas.b.turn_lock(thread_id, ALICE):
        assert released.is_set()
    await holder


async def test_a_cancelled_turn_releases_the_thread(replicas: Replicas) -> None:
    thread_id = await a_thread(replicas.a)
    holding = asyncio.Event()

    async def stream() -> None:
        async with replicas.a.turn_lock(thread_id, ALICE):
            holding.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stream())
    await holding.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    replicas.b.turn_lock_timeout = 2.0
    async with replicas.b.turn_lock(thread_id, ALICE):
        pass


# --- a holder that died ------------------------------------------------------------------


async def test_postgres_lock_of_a_dead_session_is_released_by_the_server(tmp_path: Path) -> None:
    async with shared_database("postgresql", tmp_path) as (url, new_store):
        store = new_store()
        await store.open()
        try:
            thread_id = await a_thread(store)
            store.turn_lock_timeout = 0.3
            other_replica = await asyncpg.connect(url)
            await other_replica.execute("SELECT pg_advisory_lock($1)", advisory_key(thread_id))
            with pytest.raises(ConversationBusy):
                async with store.turn_lock(thread_id, ALICE):
                    pass
            other_replica.terminate()  # the replica crashes mid-turn
            store.turn_lock_timeout = 5.0
            async with store.turn_lock(thread_id, ALICE):
                pass
        finally:
            await store.close()


async def test_postgres_lock_connection_killed_mid_turn_recovers(tmp_path: Path) -> None:
    async with shared_database("postgresql", tmp_path) as (url, new_store):
        store = new_store()
        await store.open()
        try:
            thread_id = await a_thread(store)
            async with store.turn_lock(thread_id, ALICE):
                assert await terminate(url) >= 2  # the pool's and the lock connection
                await asyncio.sleep(0.1)
            # Ending that turn did not fail, and the next one reconnects.
            async with store.turn_lock(thread_id, ALICE):
                await store.load_thread(thread_id, ALICE)
        finally:
            await store.close()


async def _sqlite_lock_row(path: str, thread_id: str, expires_in: float) -> None:
    expires_at = to_micros(datetime.now(UTC)) + int(expires_in * 1_000_000)
    async with aiosqlite.connect(path) as db:
        await db.execute(
            "INSERT INTO turn_locks (thread_id, holder, expires_at) VALUES (?, 'dead', ?)",
            (thread_id, expires_at),
        )
        await db.commit()


async def test_sqlite_lease_of_a_dead_process_expires(tmp_path: Path) -> None:
    path = str(tmp_path / "leases.db")
    store = SQLiteStore(path)
    await store.open()
    try:
        expired, held = await a_thread(store), await a_thread(store)
        await _sqlite_lock_row(path, expired, expires_in=-1)
        await _sqlite_lock_row(path, held, expires_in=1.5)
        store.turn_lock_timeout = 0.2
        async with store.turn_lock(expired, ALICE):  # taken over at once
            pass
        with pytest.raises(ConversationBusy):
            async with store.turn_lock(held, ALICE):
                pass
        store.turn_lock_timeout = 3.0
        started = time.monotonic()
        async with store.turn_lock(held, ALICE):  # once its lease runs out
            assert time.monotonic() - started < 2.5
    finally:
        await store.close()


async def test_sqlite_lease_is_renewed_while_a_long_turn_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "renewal.db")
    a, b = SQLiteStore(path, turn_lock_lease=0.6), SQLiteStore(path)
    try:
        await a.open()
        await b.open()
        thread_id = await a_thread(a)
        b.turn_lock_timeout = 0.1
        async with a.turn_lock(thread_id, ALICE):
            for _ in range(5):  # well past the lease
                await asyncio.sleep(0.3)
                with pytest.raises(ConversationBusy):
                    async with b.turn_lock(thread_id, ALICE):
                        pass
        async with b.turn_lock(thread_id, ALICE):
            pass
    finally:
        await a.close()
        await b.close()


async def test_sqlite_leases_of_many_concurrent_turns_are_all_renewed(tmp_path: Path) -> None:
    """One renewal loop renews every lease the process holds, including turns that began
    after it started and whatever number of them is held."""
    path = str(tmp_path / "renewals.db")
    a, b = SQLiteStore(path, turn_lock_lease=0.6), SQLiteStore(path)
    try:
        await a.open()
        await b.open()
        threads = [await a_thread(a) for _ in range(30)]
        b.turn_lock_timeout = 0.05
        everyone_in, done = asyncio.Event(), asyncio.Event()
        holding = 0

        async def turn(thread_id: str, start_after: float) -> None:
            nonlocal holding
            await asyncio.sleep(start_after)
            async with a.turn_lock(thread_id, ALICE):
                holding += 1
                if holding == len(threads):
                    everyone_in.set()
                await done.wait()

        turns = [
            asyncio.create_task(turn(thread_id, 0.02 * i)) for i, thread_id in enumerate(threads)
        ]
        await everyone_in.wait()
        for _ in range(4):  # well past the lease
            await asyncio.sleep(0.3)
            for thread_id in threads:
                with pytest.raises(ConversationBusy):
                    async with b.turn_lock(thread_id, ALICE):
                        pass
        done.set()
        await asyncio.gather(*turns)
        for thread_id in threads:
            async with b.turn_lock(thread_id, ALICE):
                pass
    finally:
        await a.close()
        await b.close()
