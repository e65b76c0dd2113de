"""Per-operation latency of each Store at 10k threads / 100k items (p50 and p99, milliseconds).

    .venv/bin/python -m bench.store_bench [--stores sqlite,postgresql] [--samples 1000]
        [--database-url postgresql://postgres@127.0.0.1:5432/test]

Each store gets a fresh database (a temporary SQLite file; a temporary PostgreSQL schema,
dropped afterwards), seeded in bulk (executemany / COPY): 200 users with 50 threads each; 1,000
long threads of 55 items and 9,000 short ones of 5. Then every operation runs `--samples` times
in a row (after a warm-up) on random users, threads and items, through the store's public API,
as one request of the server would. A script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadItem,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from pydantic import TypeAdapter

from service.chatkit.store.base import ChatStore, to_micros
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.sqlite import SQLiteStore
from service.request_context import RequestContext

USERS = 200
THREADS_PER_USER = 50
LONG_THREADS = 1_000
LONG_ITEMS = 55
SHORT_ITEMS = 5
START = datetime(2026, 1, 1, tzinfo=UTC)
TEXT = "A sentence of ordinary length, as people type them into a chat box. " * 3
_ITEM = TypeAdapter[ThreadItem](ThreadItem)


@dataclass
class Thread:
    id: str
    owner: RequestContext
    created_at: datetime
    item_ids: list[str]


@dataclass
class Seeded:
    threads: list[Thread]
    by_user: dict[str, list[Thread]]
    long_threads: list[Thread]
    items: int
    seconds: float


def _threads() -> Iterator[Thread]:
    n = 0
    for u in range(USERS):
        owner = RequestContext(user_id=f"user-{u}", tenant_id="bench")
        for _ in range(THREADS_PER_USER):
            count = LONG_ITEMS if n < LONG_THREADS else SHORT_ITEMS
            created = START + timedelta(seconds=n * 97 % 2_592_000)
            yield Thread(f"thr_{uuid.uuid4().hex}", owner, created, [""] * count)
            n += 1


def _item(thread: Thread, index: int) -> tuple[str, str, datetime, str]:
    item_id = f"msg_{uuid.uuid4().hex}"
    created = thread.created_at + timedelta(seconds=index * 7)
    item: ThreadItem
    if index % 2 == 0:
        item = UserMessageItem(
            id=item_id,
            thread_id=thread.id,
            created_at=created,
            content=[UserMessageTextContent(text=TEXT)],
            inference_options=InferenceOptions(),
        )
    else:
        item = AssistantMessageItem(
            id=item_id,
            thread_id=thread.id,
            created_at=created,
            content=[AssistantMessageContent(text=TEXT * 4)],
        )
    return item_id, item.type, created, _ITEM.dump_json(item).decode()


def _rows() -> tuple[
    list[Thread],
    list[tuple[str, str, str, str, datetime]],
    list[tuple[str, str, str, datetime, str]],
]:
    """(threads, thread rows, item rows); thread rows hold (id, tenant, user, data, created)."""
    threads = list(_threads())
    thread_rows = []
    item_rows = []
    for thread in threads:
        meta = ThreadMetadata(id=thread.id, created_at=thread.created_at, title="A bench thread")
        data = meta.model_dump_json(exclude={"items"})
        thread_rows.append(
            (thread.id, thread.owner.tenant_id, thread.owner.user_id, data, thread.created_at)
        )
        for index in range(len(thread.item_ids)):
            item_id, type_, created, item_data = _item(thread, index)
            thread.item_ids[index] = item_id
            item_rows.append((item_id, thread.id, type_, created, item_data))
    return threads, thread_rows, item_rows


def _seeded(threads: list[Thread], items: int, seconds: float) -> Seeded:
    by_user: dict[str, list[Thread]] = {}
    for thread in threads:
        by_user.setdefault(thread.owner.user_id, []).append(thread)
    return Seeded(
        threads, by_user, [t for t in threads if len(t.item_ids) == LONG_ITEMS], items, seconds
    )


async def seed_sqlite(store: SQLiteStore) -> Seeded:
    started = time.perf_counter()
    threads, thread_rows, item_rows = _rows()
    db = store.db
    await db.execute("BEGIN IMMEDIATE")
    await db.executemany(
        "INSERT INTO threads (id, tenant_id, user_id, created_at, updated_at, data)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(i, t, u, to_micros(c), to_micros(c), d) for i, t, u, d, c in thread_rows],
    )
    await db.executemany(
        "INSERT INTO items (id, thread_id, type, created_at, data) VALUES (?, ?, ?, ?, ?)",
        [(i, t, ty, to_micros(c), d) for i, t, ty, c, d in item_rows],
    )
    await db.execute("COMMIT")
    await db.execute("ANALYZE")
    return _seeded(threads, len(item_rows), time.perf_counter() - started)


async def seed_postgres(url: str) -> Seeded:
    started = time.perf_counter()
    threads, thread_rows, item_rows = _rows()
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "threads",
            records=[(i, t, u, c, c, d) for i, t, u, d, c in thread_rows],
            columns=["id", "tenant_id", "user_id", "created_at", "updated_at", "data"],
        )
        await conn.copy_records_to_table(
            "items",
            records=item_rows,
            columns=["id", "thread_id", "type", "created_at", "data"],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return _seeded(threads, len(item_rows), time.perf_counter() - started)


Operation = Callable[[random.Random], Awaitable[object]]


def operations(store: ChatStore, data: Seeded) -> dict[str, Operation]:
    def any_thread(rng: random.Random) -> Thread:
        return rng.choice(data.threads)

    async def load_thread(rng: random.Random) -> object:
        t = any_thread(rng)
        return await store.load_thread(t.id, t.owner)

    async def load_threads(rng: random.Random) -> object:
        mine = data.by_user[f"user-{rng.randrange(USERS)}"]
        return await store.load_threads(20, None, "desc", mine[0].owner)

    async def items_desc(rng: random.Random) -> object:
        t = rng.choice(data.long_threads)
        return await store.load_thread_items(t.id, None, 20, "desc", t.owner)

    async def items_asc(rng: random.Random) -> object:
        t = rng.choice(data.long_threads)
        return await store.load_thread_items(t.id, None, 20, "asc", t.owner)

    async def items_after(rng: random.Random) -> object:
        t = rng.choice(data.long_threads)
        return await store.load_thread_items(t.id, t.item_ids[20], 20, "asc", t.owner)

    async def load_item(rng: random.Random) -> object:
        t = any_thread(rng)
        return await store.load_item(t.id, rng.choice(t.item_ids), t.owner)

    async def add_thread_item(rng: random.Random) -> object:
        t = any_thread(rng)
        item = AssistantMessageItem(
            id=f"msg_{uuid.uuid4().hex}",
            thread_id=t.id,
            created_at=datetime.now(UTC),
            content=[AssistantMessageContent(text=TEXT)],
        )
        await store.add_thread_item(t.id, item, t.owner)
        return item

    async def save_thread(rng: random.Random) -> object:
        t = any_thread(rng)
        meta = ThreadMetadata(id=t.id, created_at=t.created_at, title=f"Renamed {rng.random()}")
        await store.save_thread(meta, t.owner)
        return meta

    return {
        "load_thread": load_thread,
        "load_threads desc/20": load_threads,
        "load_thread_items desc/20": items_desc,
        "load_thread_items asc/20": items_asc,
        "load_thread_items asc/20 after cursor": items_after,
        "load_item": load_item,
        "add_thread_item": add_thread_item,
        "save_thread": save_thread,
    }


async def measure(store: ChatStore, data: Seeded, samples: int) -> dict[str, tuple[float, float]]:
    rng = random.Random(7)
    results: dict[str, tuple[float, float]] = {}
    for name, operation in operations(store, data).items():
        for _ in range(min(100, samples)):
            await operation(rng)
        timings = []
        for _ in range(samples):
            started = time.perf_counter()
            await operation(rng)
            timings.append((time.perf_counter() - started) * 1000)
        centiles = statistics.quantiles(timings, n=100, method="inclusive")
        results[name] = (statistics.median(timings), centiles[98])
    return results


@asynccontextmanager
async def sqlite_store() -> AsyncIterator[tuple[ChatStore, Seeded]]:
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(str(Path(folder) / "bench.db"))
        await store.open()
        try:
            yield store, await seed_sqlite(store)
        finally:
            await store.close()


@asynccontextmanager
async def postgres_store(url: str) -> AsyncIterator[tuple[ChatStore, Seeded]]:
    schema = f"ck_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    scoped = f"{url}{separator}search_path={schema}"
    store = PostgresStore(scoped, min_size=1, max_size=4)
    try:
        await store.open()
        yield store, await seed_postgres(scoped)
    finally:
        await store.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


async def run(stores: list[str], samples: int, database_url: str) -> None:
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for kind in stores:
        manager = sqlite_store() if kind == "sqlite" else postgres_store(database_url)
        async with manager as (store, data):
            print(
                f"{kind}: seeded {len(data.threads):,} threads / {data.items:,} items"
                f" in {data.seconds:.1f} s; {samples} samples per operation",
                flush=True,
            )
            table[kind] = await measure(store, data, samples)
    names = list(next(iter(table.values())))
    header = " | ".join(f"{kind} p50 | {kind} p99" for kind in stores)
    print(f"\n| operation (ms) | {header} |")
    print("|---|" + "---:|" * (2 * len(stores)))
    for name in names:
        cells = " | ".join(f"{table[k][name][0]:.2f} | {table[k][name][1]:.2f}" for k in stores)
        print(f"| {name} | {cells} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    asyncio.run(run(stores, args.samples, args.database_url))


if __name__ == "__main__":
    main()
