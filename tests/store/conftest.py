"""Every Store implementation runs the same conformance suite: add one to STORE_FACTORIES.

A factory yields a fresh, unopened store with storage of its own (a new SQLite file; a new
PostgreSQL schema, dropped afterwards), so tests run in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from service.chatkit.store.base import ChatStore
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.sqlite import SQLiteStore
from tests.support.postgres import scratch_schema

StoreFactory = Callable[[Path], AbstractAsyncContextManager[ChatStore]]


@asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[ChatStore]:
    yield SQLiteStore(str(tmp_path / "conformance.db"))


@asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[ChatStore]:
    async with scratch_schema("store") as url:
        yield PostgresStore(url, min_size=1, max_size=4)


STORE_FACTORIES: dict[str, StoreFactory] = {"sqlite": sqlite_store, "postgresql": postgres_store}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatStore]:
    async with STORE_FACTORIES[request.param](tmp_path) as instance:
        await instance.open(migrate=True)
        try:
            yield instance
        finally:
            await instance.close()
