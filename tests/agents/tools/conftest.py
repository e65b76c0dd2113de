"""A real SQLite store holding two tenants' directories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.chatkit.store.sqlite import SQLiteStore
from tests.agents.tools.helpers import ADA, GRACE_AT_GLOBEX


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    instance = SQLiteStore(str(tmp_path / "tools.db"))
    await instance.open()
    await instance.upsert_employees([ADA, GRACE_AT_GLOBEX])
    try:
        yield instance
    finally:
        await instance.close()
