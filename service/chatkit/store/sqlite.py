"""The embedded default Store: one SQLite file through aiosqlite (WAL, foreign keys on)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
from chatkit.store import NotFoundError
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter

from service.chatkit.store.base import (
    ChatStore,
    FeedbackKind,
    FeedbackRecord,
    MigrationRequiredError,
    SchemaStatus,
    SchemaTooNewError,
    from_micros,
    to_micros,
)
from service.request_context import RequestContext

_ITEM = TypeAdapter[ThreadItem](ThreadItem)
_ATTACHMENT = TypeAdapter[Attachment](Attachment)

# Each entry migrates the schema from version N-1 to N. Never edit a released entry: append.
MIGRATIONS: Sequence[tuple[int, str, Sequence[str]]] = (
    (
        1,
        "threads, items, attachments, feedback",
        (
            """
            CREATE TABLE threads (
                ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX threads_by_owner ON threads (tenant_id, user_id, created_at, ordinal)",
            "CREATE INDEX threads_by_age ON threads (updated_at)",
            """
            CREATE TABLE items (
                ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL,
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                data TEXT NOT NULL,
                UNIQUE (thread_id, id)
            )
            """,
            "CREATE INDEX items_by_thread ON items (thread_id, created_at, ordinal)",
            """
            CREATE TABLE attachments (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                thread_id TEXT REFERENCES threads (id) ON DELETE SET NULL,
                created_at INTEGER NOT NULL,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX attachments_by_thread ON attachments (thread_id)",
            """
            CREATE TABLE feedback (
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                item_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('positive', 'negative')),
                created_at INTEGER NOT NULL,
                PRIMARY KEY (thread_id, item_id, tenant_id, user_id)
            )
            """,
            "CREATE INDEX feedback_by_time ON feedback (created_at)",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def sqlite_path(database_url: str) -> str:
    """`sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `sqlite:///:memory:`."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError("DATABASE_URL: a SQLite URL looks like sqlite:///./data/chatkit.db")
    path = database_url[len(prefix) :].split("?", 1)[0]
    if not path:
        raise ValueError("DATABASE_URL: the SQLite URL names no file")
    return path


def _now_micros() -> int:
    return to_micros(datetime.now(UTC))


async def _one(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    async with db.execute(sql, params) as cursor:
        return await cursor.fetchone()


async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def _owned_thread_exists(
    db: aiosqlite.Connection, thread_id: str, context: RequestContext
) -> None:
    row = await _one(
        db,
        "SELECT 1 FROM threads WHERE id = ? AND tenant_id = ? AND user_id = ?",
        (thread_id, context.tenant_id, context.user_id),
    )
    if row is None:
        raise NotFoundError(f"Thread {thread_id} not found")


def _keyset(order: str, cursor: Any) -> tuple[str, list[Any]]:
    """The WHERE fragment continuing after `cursor` in `(created_at, ordinal)` order."""
    op = "<" if order == "desc" else ">"
    created_at, ordinal = cursor["created_at"], cursor["ordinal"]
    return (
        f" AND (created_at {op} ? OR (created_at = ? AND ordinal {op} ?))",
        [created_at, created_at, ordinal],
    )


class SQLiteStore(ChatStore):
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # One connection: statements of concurrent requests must not land inside each other's
        # transactions, so every use of the connection holds this lock.
        self._lock = asyncio.Lock()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self, *, immediate: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            db = self.db
            await db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> SchemaStatus:
        if self._db is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(self._path, isolation_level=None)
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA busy_timeout = 10000")
            await db.execute("PRAGMA foreign_keys = ON")
            if self._path != ":memory:":
                await db.execute("PRAGMA journal_mode = WAL")
                await db.execute("PRAGMA synchronous = NORMAL")
            self._db = db
        try:
            if migrate:
                return await self.migrate()
            async with self._tx() as db:
                status = await _schema_status(db)
            _check_not_newer(status.current)
            if status.current < LATEST_VERSION:
                raise MigrationRequiredError(
                    f"the database schema is at version {status.current}, this release needs "
                    f"{LATEST_VERSION}: run `chatkit-backend migrate` "
                    "or set DATABASE_AUTO_MIGRATE=true"
                )
            return status
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        async with self._lock:
            await _one(self.db, "SELECT 1")

    async def migrate(self) -> SchemaStatus:
        # BEGIN IMMEDIATE takes the write lock first, so two processes never migrate at once.
        async with self._tx(immediate=True) as db:
            status = await _schema_status(db)
            _check_not_newer(status.current)
            applied: list[int] = []
            for version, description, statements in MIGRATIONS:
                if version <= status.current:
                    continue
                for statement in statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at)"
                    " VALUES (?, ?, ?)",
                    (version, description, datetime.now(UTC).isoformat()),
                )
                applied.append(version)
        return SchemaStatus(
            current=applied[-1] if applied else status.current,
            latest=LATEST_VERSION,
            applied=tuple(applied),
        )

    # --- threads -----------------------------------------------------------------------------

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        async with self._tx() as db:
            row = await _one(
                db,
                "SELECT data FROM threads WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (thread_id, context.tenant_id, context.user_id),
            )
        if row is None:
            raise NotFoundError(f"Thread {thread_id} not found")
        return ThreadMetadata.model_validate_json(row["data"])

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        data = json.dumps(thread.model_dump(mode="json", exclude={"items"}))
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO threads (id, tenant_id, user_id, created_at, updated_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET"
                " data = excluded.data, updated_at = excluded.updated_at"
                " WHERE threads.tenant_id = excluded.tenant_id"
                " AND threads.user_id = excluded.user_id",
                (
                    thread.id,
                    context.tenant_id,
                    context.user_id,
                    to_micros(thread.created_at),
                    _now_micros(),
                    data,
                ),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Thread {thread.id} not found")

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        where = "tenant_id = ? AND user_id = ?"
        params: list[Any] = [context.tenant_id, context.user_id]
        direction = "DESC" if order == "desc" else "ASC"
        async with self._tx() as db:
            if after:
                cursor = await _one(
                    db,
                    "SELECT created_at, ordinal FROM threads"
                    " WHERE id = ? AND tenant_id = ? AND user_id = ?",
                    (after, context.tenant_id, context.user_id),
                )
                if cursor is None:
                    raise NotFoundError(f"Thread {after} not found")
                fragment, extra = _keyset(order, cursor)
                where, params = where + fragment, params + extra
            rows = await _all(
                db,
                f"SELECT data FROM threads WHERE {where}"
                f" ORDER BY created_at {direction}, ordinal {direction} LIMIT ?",
                [*params, limit + 1],
            )
        threads = [ThreadMetadata.model_validate_json(row["data"]) for row in rows[:limit]]
        has_more = len(rows) > limit
        return Page(data=threads, has_more=has_more, after=threads[-1].id if has_more else None)

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM threads WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (thread_id, context.tenant_id, context.user_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Thread {thread_id} not found")

    # --- items -------------------------------------------------------------------------------

    async def load_thread_items(
        self,
        thread_id: str,
        after: str | None,
        limit: int,
        order: str,
        context: RequestContext,
    ) -> Page[ThreadItem]:
        where, params = "thread_id = ?", [thread_id]
        direction = "DESC" if order == "desc" else "ASC"
        async with self._tx() as db:
            await _owned_thread_exists(db, thread_id, context)
            if after:
                cursor = await _one(
                    db,
                    "SELECT created_at, ordinal FROM items WHERE thread_id = ? AND id = ?",
                    (thread_id, after),
                )
                if cursor is None:
                    raise NotFoundError(f"Item {after} not found in thread {thread_id}")
                fragment, extra = _keyset(order, cursor)
                where, params = where + fragment, params + extra
            rows = await _all(
                db,
                f"SELECT data FROM items WHERE {where}"
                f" ORDER BY created_at {direction}, ordinal {direction} LIMIT ?",
                [*params, limit + 1],
            )
        items = [_ITEM.validate_json(row["data"]) for row in rows[:limit]]
        has_more = len(rows) > limit
        return Page(data=items, has_more=has_more, after=items[-1].id if has_more else None)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        await self.save_item(thread_id, item, context)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        async with self._tx() as db:
            await _owned_thread_exists(db, thread_id, context)
            await db.execute(
                "INSERT INTO items (id, thread_id, type, created_at, data)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (thread_id, id) DO UPDATE SET"
                " type = excluded.type, data = excluded.data",
                (item.id, thread_id, item.type, to_micros(item.created_at), _ITEM.dump_json(item)),
            )
            await db.execute(
                "UPDATE threads SET updated_at = ? WHERE id = ?", (_now_micros(), thread_id)
            )

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        async with self._tx() as db:
            await _owned_thread_exists(db, thread_id, context)
            row = await _one(
                db, "SELECT data FROM items WHERE thread_id = ? AND id = ?", (thread_id, item_id)
            )
        if row is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return _ITEM.validate_json(row["data"])

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        # Idempotent within an owned thread: the SDK removes items that may never have been saved.
        async with self._tx() as db:
            await _owned_thread_exists(db, thread_id, context)
            await db.execute(
                "DELETE FROM items WHERE thread_id = ? AND id = ?", (thread_id, item_id)
            )

    # --- attachments -------------------------------------------------------------------------

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        async with self._tx() as db:
            if attachment.thread_id is not None:
                await _owned_thread_exists(db, attachment.thread_id, context)
            cursor = await db.execute(
                "INSERT INTO attachments (id, tenant_id, user_id, thread_id, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET"
                " thread_id = excluded.thread_id, data = excluded.data"
                " WHERE attachments.tenant_id = excluded.tenant_id"
                " AND attachments.user_id = excluded.user_id",
                (
                    attachment.id,
                    context.tenant_id,
                    context.user_id,
                    attachment.thread_id,
                    _now_micros(),
                    _ATTACHMENT.dump_json(attachment),
                ),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Attachment {attachment.id} not found")

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        async with self._tx() as db:
            row = await _one(
                db,
                "SELECT data FROM attachments WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (attachment_id, context.tenant_id, context.user_id),
            )
        if row is None:
            raise NotFoundError(f"Attachment {attachment_id} not found")
        return _ATTACHMENT.validate_json(row["data"])

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM attachments WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (attachment_id, context.tenant_id, context.user_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Attachment {attachment_id} not found")

    # --- feedback ----------------------------------------------------------------------------

    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        now = _now_micros()
        async with self._tx() as db:
            await _owned_thread_exists(db, thread_id, context)
            for item_id in item_ids:
                found = await _one(
                    db, "SELECT 1 FROM items WHERE thread_id = ? AND id = ?", (thread_id, item_id)
                )
                if found is None:
                    raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
                await db.execute(
                    "INSERT INTO feedback"
                    " (thread_id, item_id, tenant_id, user_id, kind, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (thread_id, item_id, tenant_id, user_id)"
                    " DO UPDATE SET kind = excluded.kind, created_at = excluded.created_at",
                    (thread_id, item_id, context.tenant_id, context.user_id, kind, now),
                )

    async def load_feedback(
        self,
        *,
        thread_id: str | None = None,
        since: datetime | None = None,
        tenant_id: str | None = None,
        limit: int = 1000,
    ) -> list[FeedbackRecord]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        for clause, value in (
            ("thread_id = ?", thread_id),
            ("created_at >= ?", to_micros(since) if since else None),
            ("tenant_id = ?", tenant_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        async with self._tx() as db:
            rows = await _all(
                db,
                "SELECT thread_id, item_id, kind, tenant_id, user_id, created_at FROM feedback"
                f" WHERE {' AND '.join(where)} ORDER BY created_at DESC LIMIT ?",
                [*params, limit],
            )
        return [
            FeedbackRecord(
                thread_id=row["thread_id"],
                item_id=row["item_id"],
                kind=row["kind"],
                tenant_id=row["tenant_id"],
                user_id=row["user_id"],
                created_at=from_micros(row["created_at"]),
            )
            for row in rows
        ]


async def _schema_status(db: aiosqlite.Connection) -> SchemaStatus:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = await _one(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return SchemaStatus(current=int(row[0]) if row else 0, latest=LATEST_VERSION)


def _check_not_newer(current: int) -> None:
    if current > LATEST_VERSION:
        raise SchemaTooNewError(
            f"the database schema is at version {current}, newer than this release knows "
            f"({LATEST_VERSION}); upgrade chatkit-backend instead of running an older one"
        )
