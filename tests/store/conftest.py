"""Every Store implementation runs the same conformance suite: add one to STORE_FACTORIES."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from service.chatkit.store.base import ChatStore
from service.chatkit.store.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Awaitable[ChatStore]]


async def _sqlite(tmp_path: Path) -> ChatStore:
    return SQLiteStore(str(tmp_path / "conformance.db"))


STORE_FACTORIES: dict[str, StoreFactory] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatStore]:
    instance = await STORE_FACTORIES[request.param](tmp_path)
    await instance.open(migrate=True)
    try:
        yield instance
    finally:
        await instance.close()
