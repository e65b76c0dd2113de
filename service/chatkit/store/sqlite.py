"""The embedded default Store: one SQLite file through aiosqlite (WAL, foreign keys on)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
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
    AttachmentsPruned,
    ChatStore,
    FeedbackKind,
    FeedbackRecord,
    PrunedAttachment,
    PruneReport,
    SchemaStatus,
    from_micros,
    to_micros,
)
from service.chatkit.store.migrations import Migration, check_current, pending
from service.chatkit.store.retention import run_batches
from service.chatkit.store.sqlite_locks import LeaseTurnLocks
from service.chatkit.store.sqlite_schema import LATEST_VERSION, MIGRATIONS
from service.request_context import RequestContext

_ITEM = TypeAdapter[ThreadItem](ThreadItem)
_ATTACHMENT = TypeAdapter[Attachment](Attachment)


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
    def __init__(self, path: str, *, turn_lock_lease: float = 15.0) -> None:
        """`turn_lock_lease`: how long the turn lock of a process that died blocks its thread."""
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # One connection: statements of concurrent requests must not land inside each other's
        # transactions, so every use of the connection holds this lock.
        self._lock = asyncio.Lock()
        self._turn_locks = LeaseTurnLocks(lambda: self._tx(immediate=True), lease=turn_lock_lease)

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the SQLite store is not open")
        return self._db

    @asynccontextmanager
    async def _tx(self, *, immediate: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction; `immediate` (for every write) takes the file's write lock at once, so
        another process's write in between cannot fail it (WAL's "busy snapshot")."""
        async with self._lock:
            db = self.db
            try:
                await db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
                yield db
            except BaseException:
                # Also when cancelled while BEGIN was queued: the worker thread runs the BEGIN
                # anyway, and this rollback (a no-op outside a transaction) right after it.
                await db.rollback()
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
                await _use_wal(db)
                await db.execute("PRAGMA synchronous = NORMAL")
            self._db = db
        try:
            if migrate:
                return await self.migrate()
            async with self._tx(immediate=True) as db:
                status = await _schema_status(db)
            check_current(status.current, LATEST_VERSION)
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
            applied = await apply_migrations(db, pending(MIGRATIONS, status.current))
        return SchemaStatus(
            current=applied[-1] if applied else status.current,
            latest=LATEST_VERSION,
            applied=tuple(applied),
        )

    @asynccontextmanager
    async def turn_lock(self, thread_id: str, context: RequestContext) -> AsyncIterator[None]:
        deadline = time.monotonic() + self.turn_lock_timeout
        async with self._turn_locks.hold(thread_id, deadline):
            yield

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
        async with self._tx(immediate=True) as db:
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
        async with self._tx(immediate=True) as db:
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
        async with self._tx(immediate=True) as db:
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
        async with self._tx(immediate=True) as db:
            await _owned_thread_exists(db, thread_id, context)
            await db.execute(
                "DELETE FROM items WHERE thread_id = ? AND id = ?", (thread_id, item_id)
            )

    # --- attachments -------------------------------------------------------------------------

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        async with self._tx(immediate=True) as db:
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
        async with self._tx(immediate=True) as db:
            cursor = await db.execute(
                "DELETE FROM attachments WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (attachment_id, context.tenant_id, context.user_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Attachment {attachment_id} not found")

    # --- retention ---------------------------------------------------------------------------

    async def prune(
        self,
        older_than: datetime,
        *,
        batch_size: int = 500,
        on_attachments: AttachmentsPruned | None = None,
    ) -> PruneReport:
        cutoff = to_micros(older_than)

        async def threads() -> tuple[PruneReport, list[PrunedAttachment]]:
            # BEGIN IMMEDIATE: no write can slip between choosing the batch and deleting it.
            async with self._tx(immediate=True) as db:
                return await _prune_threads(db, cutoff, batch_size)

        async def unattached() -> tuple[PruneReport, list[PrunedAttachment]]:
            async with self._tx(immediate=True) as db:
                attachments = await _delete_attachments(
                    db,
                    "id IN (SELECT id FROM attachments WHERE thread_id IS NULL"
                    " AND created_at < ? ORDER BY created_at LIMIT ?)",
                    [cutoff, batch_size],
                )
            return _attachments_report(attachments), attachments

        report = await run_batches((threads, unattached), on_attachments)
        async with self._tx(immediate=True) as db:  # leases of processes that died
            await db.execute("DELETE FROM turn_locks WHERE expires_at < ?", (_now_micros(),))
        return report

    # --- feedback ----------------------------------------------------------------------------

    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        now = _now_micros()
        async with self._tx(immediate=True) as db:
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


async def _use_wal(db: aiosqlite.Connection, patience: float = 10.0) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself for a moment,
    and SQLite does not wait for that (busy_timeout does not apply): processes opening a new
    file together (workers starting at once) retry here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _prune_threads(
    db: aiosqlite.Connection, cutoff: int, limit: int
) -> tuple[PruneReport, list[PrunedAttachment]]:
    rows = await _all(
        db,
        "SELECT id FROM threads WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
        (cutoff, limit),
    )
    ids = [row["id"] for row in rows]
    if not ids:
        return PruneReport(), []
    among = f"thread_id IN ({', '.join('?' * len(ids))})"
    attachments = await _delete_attachments(db, among, ids)
    feedback = await db.execute(f"DELETE FROM feedback WHERE {among}", ids)
    items = await db.execute(f"DELETE FROM items WHERE {among}", ids)
    threads = await db.execute(
        f"DELETE FROM threads WHERE id IN ({', '.join('?' * len(ids))})", ids
    )
    report = PruneReport(
        threads=threads.rowcount,
        items=items.rowcount,
        feedback=feedback.rowcount,
        attachment_ids=tuple(a.attachment.id for a in attachments),
    )
    return report, attachments


async def _delete_attachments(
    db: aiosqlite.Connection, where: str, params: Sequence[Any]
) -> list[PrunedAttachment]:
    rows = await _all(
        db, f"DELETE FROM attachments WHERE {where} RETURNING tenant_id, user_id, data", params
    )
    return [
        PrunedAttachment(
            attachment=_ATTACHMENT.validate_json(row["data"]),
            tenant_id=row["tenant_id"],
            user_id=row["user_id"],
        )
        for row in rows
    ]


def _attachments_report(attachments: list[PrunedAttachment]) -> PruneReport:
    return PruneReport(attachment_ids=tuple(a.attachment.id for a in attachments))


async def apply_migrations(db: aiosqlite.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Run `migrations` inside the caller's transaction and record them; their versions."""
    for version, description, statements in migrations:
        for statement in statements:
            await db.execute(statement)
        await db.execute(
            "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
            (version, description, datetime.now(UTC).isoformat()),
        )
    return [migration.version for migration in migrations]


async def _schema_status(db: aiosqlite.Connection) -> SchemaStatus:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = await _one(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return SchemaStatus(current=int(row[0]) if row else 0, latest=LATEST_VERSION)
