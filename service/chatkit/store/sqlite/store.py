"""The embedded default Store: one SQLite file (WAL, foreign keys on). Reads and single write
statements run on the event loop's thread (reads.py, writes.py); transactions, and statements
that would wait for another writer, through aiosqlite on its worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite
from chatkit.store import NotFoundError
from chatkit.types import Attachment, FeedbackKind, Page, ThreadItem, ThreadMetadata

from service.agents.tools.records import (
    EMPLOYEE_FIELDS,
    EmployeeRecord,
    NewTicket,
    Ticket,
    TicketStatus,
)
from service.chatkit.store import rows
from service.chatkit.store.base import (
    ChatStore,
    FeedbackFilter,
    FeedbackRecord,
    PruneBatch,
    SchemaStatus,
    from_micros,
    now_micros,
    to_micros,
)
from service.chatkit.store.business import (
    EMPLOYEE_COLUMNS,
    TICKET_COLUMNS,
    employee_record,
    employee_values,
    new_ticket_id,
    ticket_record,
)
from service.chatkit.store.feedback import feedback_record
from service.chatkit.store.migrations import Migration, apply_pending, check_current
from service.chatkit.store.retention import PrunedAttachment, PruneReport
from service.chatkit.store.rows import OwnedTable
from service.chatkit.store.sqlite import user_data
from service.chatkit.store.sqlite.files import MEMORY, is_permanent, open_database, unusable
from service.chatkit.store.sqlite.locks import LeaseTurnLocks
from service.chatkit.store.sqlite.reads import InlineReads
from service.chatkit.store.sqlite.schema import LATEST_VERSION, MIGRATIONS
from service.chatkit.store.sqlite.writes import InlineWrites, WorkerWrites, Writer
from service.request_context import RequestContext

Batch = tuple[PruneReport, list[PrunedAttachment]]


def sqlite_path(database_url: str) -> str:
    """`sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or `sqlite:///:memory:`."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError("DATABASE_URL: a SQLite URL looks like sqlite:///./data/chatkit.db")
    path = database_url[len(prefix) :].split("?", 1)[0]
    if not path:
        raise ValueError("DATABASE_URL: the SQLite URL names no file")
    return path


# One trip to the connection's thread per statement (execute + fetch + close would be three):
# under load every trip waits for a turn of the event loop.
class Queryable(Protocol):
    """The writer (aiosqlite, on its thread) or the reader (`InlineReads`)."""

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[sqlite3.Row]: ...


async def _one(db: Queryable, sql: str, params: Sequence[Any] = ()) -> Any:
    return next(iter(await db.execute_fetchall(sql, params)), None)


async def _all(db: Queryable, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


async def _owned_thread_exists(db: Queryable, thread_id: str, context: RequestContext) -> None:
    row = await _one(
        db,
        "SELECT 1 FROM threads WHERE id = ? AND tenant_id = ? AND user_id = ?",
        (thread_id, context.tenant_id, context.user_id),
    )
    if row is None:
        raise NotFoundError(f"Thread {thread_id} not found")


async def _rows_after(
    db: Queryable,
    table: str,
    scope: str,
    scope_params: Sequence[Any],
    after: str | None,
    limit: int,
    order: str,
) -> list[Any] | None:
    """Up to `limit + 1` documents of `table` within `scope`, continuing after the row with id
    `after` (None when that row is not in scope)."""
    direction, op = rows.order_by(order)
    where, params = scope, [*scope_params]
    if after:
        cursor = await _one(
            db,
            f"SELECT created_at, ordinal FROM {table} WHERE {scope} AND id = ?",
            [*params, after],
        )
        if cursor is None:
            return None
        where += f" AND (created_at, ordinal) {op} (?, ?)"
        params += [cursor["created_at"], cursor["ordinal"]]
    return await _all(
        db,
        f"SELECT data FROM {table} WHERE {where}"
        f" ORDER BY created_at {direction}, ordinal {direction} LIMIT ?",
        [*params, limit + 1],
    )


class SQLiteStore(ChatStore):
    def __init__(self, path: str, *, turn_lock_lease: float = 15.0) -> None:
        """`turn_lock_lease`: how long the turn lock of a process that died blocks its thread."""
        self._path = path
        self._db: aiosqlite.Connection | None = None
        # The writer: statements of concurrent requests must not land inside each other's
        # transactions, so every use of this connection holds this lock.
        self._lock = asyncio.Lock()
        # The reader (a file in WAL mode): reads need no transaction, no lock, and do not queue
        # behind writes; they run on the event loop's thread (reads.py says why).
        self._reader: InlineReads | None = None
        # Single statements (writes.py): inline for a file, on the worker thread in memory.
        self._writer: InlineWrites | WorkerWrites | None = None
        self._turn_locks = LeaseTurnLocks(self._statement, lease=turn_lock_lease)

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
            except BaseException as exc:
                # Also when cancelled while BEGIN was queued: the worker thread runs the BEGIN
                # anyway, and this rollback (a no-op outside a transaction) right after it.
                await db.rollback()
                # Documents are always valid text (rows.encode), so only an id can fail to bind.
                if isinstance(exc, UnicodeEncodeError):
                    raise rows.unencodable_id() from None
                raise
            await db.execute("COMMIT")

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[Writer]:
        """The writer for statements each atomic on its own (no BEGIN and COMMIT): on the event
        loop's thread unless they would wait (writes.py). No lock is held between them: under
        load every hand-over of an asyncio lock waits for a turn of the event loop, and the
        writes of all requests formed a queue behind it."""
        if self._writer is None:
            raise RuntimeError("the SQLite store is not open")
        try:
            yield self._writer
        except UnicodeEncodeError:
            raise rows.unencodable_id() from None

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[Queryable]:
        """A connection for reads; in memory (one connection) the writer, between transactions."""
        try:
            if self._reader is not None:
                yield self._reader
                return
            async with self._lock:
                yield self.db
        except UnicodeEncodeError:
            raise rows.unencodable_id() from None

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> SchemaStatus:
        if self._db is None:
            self._db = await open_database(self._path)
        try:
            if migrate:
                status = await self.migrate()
            else:
                async with self._tx(immediate=True) as db:
                    status = await _schema_status(db)
                check_current(status.current, LATEST_VERSION)
            if self._writer is None:
                worker = WorkerWrites(self.db, self._lock)
                in_memory = self._path == MEMORY
                self._writer = worker if in_memory else InlineWrites(self._path, worker)
                self._reader = None if in_memory else InlineReads(self._path)
            return status
        except BaseException as exc:
            await self.close()
            if isinstance(exc, sqlite3.Error) and is_permanent(exc):  # a read-only file, say
                raise unusable(self._path, exc) from exc
            raise

    async def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def ping(self) -> None:
        async with self._lock:
            await _one(self.db, "SELECT 1")

    async def migrate(self) -> SchemaStatus:
        # BEGIN IMMEDIATE takes the write lock first, so two processes never migrate at once.
        async with self._tx(immediate=True) as db:

            async def record(migration: Migration) -> None:
                await db.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at)"
                    " VALUES (?, ?, ?)",
                    (migration.version, migration.description, datetime.now(UTC).isoformat()),
                )

            status = await _schema_status(db)
            return await apply_pending(MIGRATIONS, status.current, db.execute, record)

    @asynccontextmanager
    async def turn_lock(self, thread_id: str, context: RequestContext) -> AsyncIterator[None]:
        deadline = time.monotonic() + self.turn_lock_timeout
        async with self._turn_locks.hold(thread_id, deadline):
            yield

    # --- threads -----------------------------------------------------------------------------

    async def _owned_data(self, table: OwnedTable, row_id: str, context: RequestContext) -> Any:
        async with self._read() as db:
            row = await _one(
                db,
                f"SELECT data FROM {table} WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (row_id, context.tenant_id, context.user_id),
            )
        if row is None:
            raise rows.not_found(table, row_id)
        return row["data"]

    async def _delete_owned(self, table: OwnedTable, row_id: str, context: RequestContext) -> None:
        async with self._statement() as db:
            cursor = await db.execute(
                f"DELETE FROM {table} WHERE id = ? AND tenant_id = ? AND user_id = ?",
                (row_id, context.tenant_id, context.user_id),
            )
            if cursor.rowcount == 0:
                raise rows.not_found(table, row_id)

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        data = rows.encode(rows.THREAD, thread)
        async with self._statement() as db:
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
                    now_micros(),
                    data,
                ),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Thread {thread.id} not found")

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        owner = (context.tenant_id, context.user_id)
        async with self._read() as db:
            found = await _rows_after(
                db, "threads", "tenant_id = ? AND user_id = ?", owner, after, limit, order
            )
        return rows.page(found, limit, rows.thread_document, f"Thread {after} not found")

    # --- items -------------------------------------------------------------------------------

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        # Ownership inside the page query: one statement on the way to the first token, and a
        # second only when the page comes back empty (not found, or no items yet).
        owned = (
            "thread_id = ? AND EXISTS (SELECT 1 FROM threads"
            " WHERE id = ? AND tenant_id = ? AND user_id = ?)"
        )
        async with self._read() as db:
            found = await _rows_after(
                db,
                "items",
                owned,
                [thread_id, thread_id, context.tenant_id, context.user_id],
                after,
                limit,
                order,
            )
            if not found:
                await _owned_thread_exists(db, thread_id, context)
        missing = f"Item {after} not found in thread {thread_id}"
        return rows.page(found, limit, rows.item_document, missing)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        data = rows.encode(rows.ITEM, item)
        # Two statements, no transaction: each is atomic, the first saves the item only into a
        # thread the caller owns, and the second only marks the thread as used (lost on a crash
        # in between, it leaves the thread looking idle a little longer).
        async with self._statement() as db:
            saved = await db.execute(
                "INSERT INTO items (id, thread_id, type, created_at, data)"
                " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM threads"
                " WHERE id = ? AND tenant_id = ? AND user_id = ?)"
                " ON CONFLICT (thread_id, id) DO UPDATE SET"
                " type = excluded.type, data = excluded.data",
                (
                    item.id,
                    thread_id,
                    item.type,
                    to_micros(item.created_at),
                    data,
                    thread_id,
                    context.tenant_id,
                    context.user_id,
                ),
            )
            if saved.rowcount == 0:
                raise NotFoundError(f"Thread {thread_id} not found")
            await db.execute(
                "UPDATE threads SET updated_at = ? WHERE id = ?", (now_micros(), thread_id)
            )

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        async with self._read() as db:
            await _owned_thread_exists(db, thread_id, context)
            row = await _one(
                db, "SELECT data FROM items WHERE thread_id = ? AND id = ?", (thread_id, item_id)
            )
        if row is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return rows.item_document(row["data"])

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
        data = rows.encode(rows.ATTACHMENT, attachment)
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
                    now_micros(),
                    data,
                ),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"Attachment {attachment.id} not found")

    # --- retention ---------------------------------------------------------------------------

    def _prune_batches(self, older_than: datetime, batch_size: int) -> Sequence[PruneBatch]:
        cutoff = to_micros(older_than)

        async def threads() -> Batch:
            # BEGIN IMMEDIATE: no write can slip between choosing the batch and deleting it.
            async with self._tx(immediate=True) as db:
                return await _prune_threads(db, cutoff, batch_size)

        async def unattached() -> Batch:
            async with self._tx(immediate=True) as db:
                attachments = await user_data.delete_attachment_rows(
                    db,
                    "id IN (SELECT id FROM attachments WHERE thread_id IS NULL"
                    " AND created_at < ? ORDER BY created_at LIMIT ?)",
                    [cutoff, batch_size],
                )
            return rows.prune_report(attachments), attachments

        async def expired_turn_locks() -> Batch:  # leases of processes that died; one pass
            async with self._tx(immediate=True) as db:
                await db.execute("DELETE FROM turn_locks WHERE expires_at < ?", (now_micros(),))
            return PruneReport(), []

        return threads, unattached, expired_turn_locks

    # --- data rights (SQL in user_data.py) ----------------------------------------------------

    def _delete_user_batches(
        self, tenant_id: str, user_id: str, batch_size: int
    ) -> Sequence[PruneBatch]:
        def batch(delete: user_data.UserBatch) -> PruneBatch:
            async def run() -> Batch:
                async with self._tx(immediate=True) as db:
                    return await delete(db, tenant_id, user_id, batch_size)

            return run

        return tuple(
            batch(delete)
            for delete in (
                user_data.delete_threads,
                user_data.delete_attachments,
                user_data.delete_feedback,
            )
        )

    async def _user_attachment_documents(self, tenant_id: str, user_id: str) -> list[Any]:
        async with self._tx() as db:  # a whole user's rows: on the worker thread
            return await user_data.attachment_documents(db, tenant_id, user_id)

    async def _user_feedback(self, tenant_id: str, user_id: str) -> list[FeedbackRecord]:
        async with self._tx() as db:
            return await user_data.feedback_records(db, tenant_id, user_id)

    # --- feedback ----------------------------------------------------------------------------

    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        now = now_micros()
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

    async def _select_feedback(self, where: FeedbackFilter, limit: int) -> list[FeedbackRecord]:
        since = to_micros(where.since) if where.since else None
        async with self._read() as db:
            found = await _all(
                db,
                "SELECT thread_id, item_id, kind, tenant_id, user_id, created_at FROM feedback"
                " WHERE (?1 IS NULL OR thread_id = ?1) AND (?2 IS NULL OR created_at >= ?2)"
                " AND (?3 IS NULL OR tenant_id = ?3) ORDER BY created_at DESC LIMIT ?4",
                (where.thread_id, since, where.tenant_id, limit),
            )
        return [feedback_record(row, from_micros(row["created_at"])) for row in found]

    # --- business data (the tools' EmployeeDirectory and TicketDesk) -----------------------

    async def upsert_employees(self, employees: Sequence[EmployeeRecord]) -> int:
        marks = ", ".join("?" * len(EMPLOYEE_FIELDS))
        updates = ", ".join(f"{name} = excluded.{name}" for name in EMPLOYEE_FIELDS[2:])
        now = now_micros()
        async with self._tx(immediate=True) as db:
            await db.executemany(
                f"INSERT INTO employees ({EMPLOYEE_COLUMNS}, updated_at) VALUES ({marks}, ?)"
                f" ON CONFLICT (tenant_id, employee_id) DO UPDATE SET {updates},"
                " updated_at = excluded.updated_at",
                [(*employee_values(employee), now) for employee in employees],
            )
        return len(employees)

    async def find_employee(self, tenant_id: str, employee_id: str) -> EmployeeRecord | None:
        async with self._read() as db:
            row = await _one(
                db,
                f"SELECT {EMPLOYEE_COLUMNS} FROM employees WHERE tenant_id = ? AND employee_id = ?",
                (tenant_id, employee_id),
            )
        return None if row is None else employee_record(row)

    async def search_employees(
        self, tenant_id: str, name_or_email: str, limit: int
    ) -> list[EmployeeRecord]:
        async with self._read() as db:
            found = await _all(
                db,
                f"SELECT {EMPLOYEE_COLUMNS} FROM employees WHERE tenant_id = ?1"
                " AND (lower(email) = lower(?2) OR lower(name) = lower(?2))"
                " ORDER BY employee_id LIMIT ?3",
                (tenant_id, name_or_email, limit),
            )
        return [employee_record(row) for row in found]

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        ticket_id, now = new_ticket_id(), now_micros()
        async with self._tx(immediate=True) as db:
            await db.execute(
                f"INSERT INTO tickets ({TICKET_COLUMNS}, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                (
                    ticket_id,
                    ticket.tenant_id,
                    ticket.requester_id,
                    ticket.subject,
                    ticket.body,
                    ticket.priority,
                    now,
                    now,
                ),
            )
        created = await self.load_ticket(ticket.tenant_id, ticket_id)
        assert created is not None
        return created

    async def load_ticket(self, tenant_id: str, ticket_id: str) -> Ticket | None:
        async with self._read() as db:
            row = await _one(
                db,
                f"SELECT {TICKET_COLUMNS}, created_at, updated_at FROM tickets"
                " WHERE tenant_id = ? AND id = ?",
                (tenant_id, ticket_id),
            )
        return None if row is None else _ticket(row)

    async def list_tickets(self, tenant_id: str, requester_id: str, limit: int) -> list[Ticket]:
        async with self._read() as db:
            found = await _all(
                db,
                f"SELECT {TICKET_COLUMNS}, created_at, updated_at FROM tickets"
                " WHERE tenant_id = ? AND requester_id = ?"
                " ORDER BY created_at DESC, ordinal DESC LIMIT ?",
                (tenant_id, requester_id, limit),
            )
        return [_ticket(row) for row in found]

    async def set_ticket_status(
        self, tenant_id: str, ticket_id: str, status: TicketStatus
    ) -> Ticket | None:
        async with self._tx(immediate=True) as db:
            row = await _one(
                db,
                "UPDATE tickets SET status = ?, updated_at = ? WHERE tenant_id = ? AND id = ?"
                f" RETURNING {TICKET_COLUMNS}, created_at, updated_at",
                (status, now_micros(), tenant_id, ticket_id),
            )
        return None if row is None else _ticket(row)


def _ticket(row: Any) -> Ticket:
    return ticket_record(row, from_micros(row["created_at"]), from_micros(row["updated_at"]))


async def _prune_threads(db: aiosqlite.Connection, cutoff: int, limit: int) -> Batch:
    chosen = await _all(
        db,
        "SELECT id FROM threads WHERE updated_at < ? ORDER BY updated_at LIMIT ?",
        (cutoff, limit),
    )
    return await user_data.remove_threads(db, [row["id"] for row in chosen])


async def _schema_status(db: aiosqlite.Connection) -> SchemaStatus:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    row = await _one(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return SchemaStatus(current=int(row[0]) if row else 0, latest=LATEST_VERSION)
