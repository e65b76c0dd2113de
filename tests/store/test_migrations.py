"""Schema migrations of both dialects: from empty, from the previous version with its data,
refusals (too new; too old without automatic migration), and pods migrating at once."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import aiosqlite
import pytest
from chatkit.types import FileAttachment

from service.chatkit.store.base import (
    ChatStore,
    MigrationRequiredError,
    SchemaStatus,
    SchemaTooNewError,
)
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.postgres import schema as postgres_schema
from service.chatkit.store.postgres import store as postgres
from service.chatkit.store.sqlite import SQLiteStore
from service.chatkit.store.sqlite import schema as sqlite_schema
from service.chatkit.store.sqlite import store as sqlite
from tests.support.builders import ALICE, assistant_message, thread, user_message
from tests.support.postgres import query, scratch_schema

LATEST = sqlite_schema.LATEST_VERSION


@dataclass
class Dialect:
    name: str
    store_module: ModuleType
    schema_module: ModuleType
    new_store: Callable[[], ChatStore]
    execute: Callable[[str], Awaitable[object]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def dialect(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Dialect]:
    if request.param == "sqlite":
        path = str(tmp_path / "migrations.db")

        async def execute_sqlite(sql: str) -> None:
            async with aiosqlite.connect(path) as db:
                await db.execute(sql)
                await db.commit()

        yield Dialect("sqlite", sqlite, sqlite_schema, lambda: SQLiteStore(path), execute_sqlite)
        return
    async with scratch_schema("migrations") as url:

        async def execute_postgres(sql: str) -> object:
            return await query(url, sql)

        yield Dialect(
            "postgresql",
            postgres,
            postgres_schema,
            lambda: PostgresStore(url, max_size=2),
            execute_postgres,
        )


def at_version_1(monkeypatch: pytest.MonkeyPatch, dialect: Dialect) -> None:
    """Make the store module believe it is the release whose latest schema was version 1."""
    migrations = dialect.schema_module.MIGRATIONS
    monkeypatch.setattr(dialect.store_module, "MIGRATIONS", migrations[:1])
    monkeypatch.setattr(dialect.store_module, "LATEST_VERSION", 1)


async def test_from_empty_every_version_is_applied_once(dialect: Dialect) -> None:
    store = dialect.new_store()
    status = await store.open(migrate=True)
    assert status.applied == tuple(range(1, LATEST + 1))
    assert status.current == status.latest == LATEST
    await store.close()
    again = dialect.new_store()
    assert (await again.open(migrate=True)).applied == ()
    await again.close()


async def test_from_the_previous_version_with_its_data(
    dialect: Dialect, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as previous_release:
        at_version_1(previous_release, dialect)
        old = dialect.new_store()
        assert (await old.open(migrate=True)).applied == (1,)
        t = thread(title="from v1")
        await old.save_thread(t, ALICE)
        question = user_message(t.id, "question")
        answer = assistant_message(t.id, "answer")
        for item in (question, answer):
            await old.add_thread_item(t.id, item, ALICE)
        await old.save_feedback(t.id, [answer.id], "positive", ALICE)
        attachment = FileAttachment(id="atc_v1", name="a.txt", mime_type="text/plain")
        await old.save_attachment(attachment, ALICE)
        await old.close()

    refused = dialect.new_store()
    with pytest.raises(MigrationRequiredError, match="chatkit-backend migrate"):
        await refused.open(migrate=False)

    store = dialect.new_store()
    status = await store.open(migrate=True)
    try:
        assert status.applied == tuple(range(2, LATEST + 1))
        assert await store.load_thread(t.id, ALICE) == t
        page = await store.load_thread_items(t.id, None, 10, "asc", ALICE)
        assert page.data == [question, answer]
        assert await store.load_attachment("atc_v1", ALICE) == attachment
        assert [r.item_id for r in await store.load_feedback(thread_id=t.id)] == [answer.id]
        async with store.turn_lock(t.id, ALICE):  # what version 2 brought works
            pass
    finally:
        await store.close()


@pytest.mark.parametrize("migrate", [True, False])
async def test_a_newer_schema_is_refused(dialect: Dialect, migrate: bool) -> None:
    store = dialect.new_store()
    await store.open(migrate=True)
    await store.close()
    await dialect.execute(
        f"INSERT INTO schema_migrations (version, description, applied_at)"
        f" VALUES ({LATEST + 1}, 'from the future', '2030-01-01T00:00:00+00:00')"
    )
    newer = dialect.new_store()
    with pytest.raises(SchemaTooNewError, match="newer than this release"):
        await newer.open(migrate=migrate)


async def test_pods_starting_together_migrate_once(dialect: Dialect) -> None:
    stores = [dialect.new_store() for _ in range(4)]
    results = await asyncio.gather(
        *(store.open(migrate=True) for store in stores), return_exceptions=True
    )
    try:
        statuses = [r for r in results if isinstance(r, SchemaStatus)]
        assert statuses == results, results  # every pod started
        applied = sorted(status.applied for status in statuses)
        assert applied == [(), (), (), tuple(range(1, LATEST + 1))]
        assert all(status.current == LATEST for status in statuses)
    finally:
        for store in stores:
            await store.close()


def test_both_dialects_number_their_versions_alike() -> None:
    for migrations in (sqlite_schema.MIGRATIONS, postgres_schema.MIGRATIONS):
        assert [m.version for m in migrations] == list(range(1, LATEST + 1))
        assert all(m.description and m.statements for m in migrations)
    assert postgres_schema.LATEST_VERSION == sqlite_schema.LATEST_VERSION


def test_the_released_sqlite_version_1_is_unchanged() -> None:
    # Released databases were created by exactly these statements: append, never edit.
    released = "\n".join(sqlite_schema.MIGRATIONS[0].statements).encode()
    assert hashlib.sha256(released).hexdigest() == RELEASED_SQLITE_V1_SHA256


RELEASED_SQLITE_V1_SHA256 = "2cd786c6f07b1bf5761ccc2cf29f3aae0f412ab97ea7c8056a2a2acc3472a9d6"
