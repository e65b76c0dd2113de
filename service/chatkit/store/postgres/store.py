"""The Store for many replicas: PostgreSQL through an asyncpg pool.

Same semantics as the SQLite store (base.py). Every write is one statement or one transaction,
so a lost connection never leaves half of it visible. Failures of the database or of the way
to it raise `StoreUnavailableError` (a clear ChatKit error event mid-stream, 503 otherwise);
an operation that loses its connection is tried once more on a fresh one, which is safe
because every write here is an upsert or an idempotent delete. The pool replaces broken
connections by itself, so the store recovers when the database returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
from asyncpg import exceptions as pg
from asyncpg.pool import PoolConnectionProxy
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
    StoreUnavailableError,
    from_micros,
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
from service.chatkit.store.postgres import user_data
from service.chatkit.store.postgres.address import server_address
from service.chatkit.store.postgres.errors import describe, is_unavailable
from service.chatkit.store.postgres.locks import AdvisoryTurnLocks
from service.chatkit.store.postgres.schema import LATEST_VERSION, MIGRATIONS
from service.chatkit.store.retention import PrunedAttachment, PruneReport
from service.chatkit.store.rows import OwnedTable
from service.request_context import RequestContext

logger = logging.getLogger(__name__)

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
T = TypeVar("T")
Batch = tuple[PruneReport, list[PrunedAttachment]]

# Concurrent `migrate` calls (pods starting together) serialise on this advisory lock.
MIGRATION_LOCK_KEY = 0x636B5F6D69677261  # "ck_migra"
COMMAND_TIMEOUT = 30.0
"""Longest a statement may run, and longest a request waits for a pooled connection."""
_TICKET_ROW = f"{TICKET_COLUMNS}, created_at, updated_at"
"""Every column of a ticket row, timestamps included."""
_SELECT_TICKETS = f"SELECT {_TICKET_ROW} FROM tickets"
_SELECT_EMPLOYEES = f"SELECT {EMPLOYEE_COLUMNS} FROM employees"


def _moment(value: datetime) -> datetime:
    """Aware UTC at microsecond precision; naive values (the SDK's `datetime.now()`) are local."""
    return from_micros(to_micros(value))


def _now() -> datetime:
    return datetime.now(UTC)


def _count(status: str) -> int:
    """Rows affected, from a command tag such as `INSERT 0 1` or `DELETE 3`."""
    return int(status.rsplit(" ", 1)[-1])


def _unencodable(exc: pg.DataError) -> bool:
    """A parameter asyncpg could not encode (a lone surrogate), or one PostgreSQL refuses as
    text (NUL): only ids can be such (documents are always valid text), and no row has them."""
    return isinstance(exc, pg.CharacterNotInRepertoireError) or isinstance(
        exc.__cause__, UnicodeEncodeError
    )


async def _pool_reset(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Pool connections never change session state; only end a transaction left open.

    (asyncpg's default reset sends a query on every release: one round trip per operation.)
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PostgresStore(ChatStore):
    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self._dsn = dsn
        self._address = server_address(dsn)  # for log lines: host and port, no credentials
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._ready = False
        self._not_ready_reason = "the store has not been opened yet"
        self._turn_locks = AdvisoryTurnLocks(self._connect_one, self._address)

    def _server_settings(self) -> dict[str, str] | None:
        # Explicit settings override the URL's, so only fill in what the URL leaves out.
        query = parse_qs(urlsplit(self._dsn).query)
        return None if "application_name" in query else {"application_name": "chatkit-backend"}

    async def _connect_one(self) -> asyncpg.Connection[asyncpg.Record]:
        return await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            server_settings=self._server_settings(),
        )

    # --- running statements ------------------------------------------------------------------

    async def _run(
        self,
        work: Callable[[Conn], Awaitable[T]],
        *,
        transaction: bool = False,
        before_ready: bool = False,
    ) -> T:
        pool = self._pool
        if pool is None or not (self._ready or before_ready):
            raise StoreUnavailableError(f"not connected to the database: {self._not_ready_reason}")
        for attempt in (1, 2):
            try:
                return await self._attempt(pool, work, transaction)
            except _ConnectionLost as lost:
                # A connection that died unnoticed (idle, or killed a moment ago) fails its
                # first statement; a fresh one may well work. A failure to get one is final.
                if attempt == 2 or lost.acquiring:
                    detail = f"database at {self._address}: {describe(lost.error)}"
                    logger.warning("database unavailable: %s", detail)
                    raise StoreUnavailableError(detail) from lost.error
            except pg.DataError as exc:
                if _unencodable(exc):
                    raise rows.unencodable_id() from None
                raise
        raise AssertionError("unreachable")

    async def _attempt(
        self, pool: asyncpg.Pool[asyncpg.Record], work: Callable[[Conn], Awaitable[T]], tx: bool
    ) -> T:
        try:
            conn = await pool.acquire(timeout=self._command_timeout)
        except Exception as exc:
            if is_unavailable(exc):
                raise _ConnectionLost(exc, acquiring=True) from exc
            raise
        try:
            if tx:
                async with conn.transaction():
                    return await work(conn)
            return await work(conn)
        except Exception as exc:
            if is_unavailable(exc, _closed(conn)):
                raise _ConnectionLost(exc) from exc
            raise
        finally:
            await pool.release(conn)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> SchemaStatus:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                    server_settings=self._server_settings(),
                    reset=_pool_reset,
                )
            except Exception as exc:
                self._not_ready_reason = f"database at {self._address}: {describe(exc)}"
                if is_unavailable(exc):
                    raise StoreUnavailableError(
                        f"cannot connect to the database at {self._address}: {describe(exc)}"
                    ) from exc
                raise
        try:
            if migrate:
                status = await self.migrate()
            else:
                status = await self._run(_schema_status, before_ready=True)
                check_current(status.current, LATEST_VERSION)
        except BaseException as exc:
            await self.close()
            self._not_ready_reason = describe(exc)
            raise
        self._ready = True
        return status

    async def close(self) -> None:
        self._ready = False
        self._not_ready_reason = "the store is closed"
        pool, self._pool = self._pool, None
        await self._turn_locks.close()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10.0)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    async def migrate(self) -> SchemaStatus:
        async def work(conn: Conn) -> SchemaStatus:
            # Taken first in the transaction, held until it ends: pods starting together
            # apply the migrations once, one after the other.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            await _create_migrations_table(conn)

            async def record(migration: Migration) -> None:
                await conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                    migration.version,
                    migration.description,
                )

            status = await _schema_status(conn)
            return await apply_pending(MIGRATIONS, status.current, conn.execute, record)

        return await self._run(work, transaction=True, before_ready=True)

    @asynccontextmanager
    async def turn_lock(self, thread_id: str, context: RequestContext) -> AsyncIterator[None]:
        if not self._ready:
            raise StoreUnavailableError(f"not connected to the database: {self._not_ready_reason}")
        async with self._turn_locks.hold(thread_id, time.monotonic() + self.turn_lock_timeout):
            yield

    # --- threads -----------------------------------------------------------------------------

    async def _owned_data(self, table: OwnedTable, row_id: str, context: RequestContext) -> str:
        data: str = await self._owned(
            f"SELECT data FROM {table} WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
            table,
            row_id,
            context,
        )
        return data

    async def _delete_owned(self, table: OwnedTable, row_id: str, context: RequestContext) -> None:
        await self._owned(
            f"DELETE FROM {table} WHERE id = $1 AND tenant_id = $2 AND user_id = $3 RETURNING id",
            table,
            row_id,
            context,
        )

    async def _owned(
        self, statement: str, table: OwnedTable, row_id: str, context: RequestContext
    ) -> Any:
        """The first value of `statement` on the user's row `row_id`; `NotFoundError` if none."""
        value = await self._run(
            lambda conn: conn.fetchval(statement, row_id, context.tenant_id, context.user_id)
        )
        if value is None:
            raise rows.not_found(table, row_id)
        return value

    async def _execute(self, statement: str, *params: Any) -> int:
        """Run one statement; the number of rows it affected."""
        return _count(await self._run(lambda conn: conn.execute(statement, *params)))

    async def _one(self, record: Callable[[Any], T], statement: str, *params: Any) -> T | None:
        """Run one query; its first row as `record` makes it, or None when there is none."""
        row = await self._run(lambda conn: conn.fetchrow(statement, *params))
        return None if row is None else record(row)

    async def _all(self, record: Callable[[Any], T], statement: str, *params: Any) -> list[T]:
        """Run one query; every row as `record` makes it."""
        return [record(row) for row in await self._run(lambda conn: conn.fetch(statement, *params))]

    async def save_thread(self, thread: ThreadMetadata, context: RequestContext) -> None:
        saved = await self._execute(
            "INSERT INTO threads (id, tenant_id, user_id, created_at, updated_at, data)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (id) DO UPDATE SET"
            " data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
            " WHERE threads.tenant_id = EXCLUDED.tenant_id"
            " AND threads.user_id = EXCLUDED.user_id",
            thread.id,
            context.tenant_id,
            context.user_id,
            _moment(thread.created_at),
            _now(),
            rows.encode(rows.THREAD, thread),
        )
        if saved == 0:
            raise NotFoundError(f"Thread {thread.id} not found")

    async def load_threads(
        self, limit: int, after: str | None, order: str, context: RequestContext
    ) -> Page[ThreadMetadata]:
        direction, op = rows.order_by(order)

        async def work(conn: Conn) -> list[asyncpg.Record] | None:
            params: list[Any] = [context.tenant_id, context.user_id]
            where = "tenant_id = $1 AND user_id = $2"
            if after:
                cursor = await conn.fetchrow(
                    "SELECT created_at, ordinal FROM threads"
                    " WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
                    after,
                    context.tenant_id,
                    context.user_id,
                )
                if cursor is None:
                    return None
                where += f" AND (created_at, ordinal) {op} ($3, $4)"
                params += [cursor["created_at"], cursor["ordinal"]]
            return await conn.fetch(
                f"SELECT data FROM threads WHERE {where}"
                f" ORDER BY created_at {direction}, ordinal {direction} LIMIT ${len(params) + 1}",
                *params,
                limit + 1,
            )

        found = await self._run(work)
        return rows.page(found, limit, rows.thread_document, f"Thread {after} not found")

    # --- items -------------------------------------------------------------------------------

    async def load_thread_items(
        self, thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        direction, op = rows.order_by(order)
        owner = (thread_id, context.tenant_id, context.user_id)

        async def work(conn: Conn) -> list[asyncpg.Record]:
            where, params = "i.thread_id = $1", [*owner]
            if after:
                cursor = await conn.fetchrow(
                    "SELECT i.created_at, i.ordinal FROM threads t"
                    " LEFT JOIN items i ON i.thread_id = t.id AND i.id = $4"
                    " WHERE t.id = $1 AND t.tenant_id = $2 AND t.user_id = $3",
                    *owner,
                    after,
                )
                if cursor is None:
                    raise NotFoundError(f"Thread {thread_id} not found")
                if cursor["ordinal"] is None:
                    raise NotFoundError(f"Item {after} not found in thread {thread_id}")
                where += f" AND (i.created_at, i.ordinal) {op} ($4, $5)"
                params += [cursor["created_at"], cursor["ordinal"]]
            found = await conn.fetch(
                "SELECT i.data FROM items i JOIN threads t ON t.id = i.thread_id"
                f" WHERE {where} AND t.tenant_id = $2 AND t.user_id = $3"
                f" ORDER BY i.created_at {direction}, i.ordinal {direction}"
                f" LIMIT ${len(params) + 1}",
                *params,
                limit + 1,
            )
            if not found and not after:  # no items, or no such thread of this user?
                await _owned_thread(conn, *owner)
            return found

        return rows.page(await self._run(work), limit, rows.item_document)

    async def save_item(self, thread_id: str, item: ThreadItem, context: RequestContext) -> None:
        # One statement: touching the thread checks its owner and locks its row, so a prune of
        # the thread either waits for this write or makes it find no thread.
        saved = await self._execute(
            "WITH thread AS ("
            " UPDATE threads SET updated_at = $4"
            " WHERE id = $1 AND tenant_id = $2 AND user_id = $3 RETURNING id)"
            " INSERT INTO items (id, thread_id, type, created_at, data)"
            " SELECT $5, id, $6, $7, $8 FROM thread"
            " ON CONFLICT (thread_id, id) DO UPDATE SET"
            " type = EXCLUDED.type, data = EXCLUDED.data",
            thread_id,
            context.tenant_id,
            context.user_id,
            _now(),
            item.id,
            item.type,
            _moment(item.created_at),
            rows.encode(rows.ITEM, item),
        )
        if saved == 0:
            raise NotFoundError(f"Thread {thread_id} not found")

    async def load_item(self, thread_id: str, item_id: str, context: RequestContext) -> ThreadItem:
        data = await self._run(
            lambda conn: conn.fetchval(
                "SELECT i.data FROM items i JOIN threads t ON t.id = i.thread_id"
                " WHERE i.thread_id = $1 AND i.id = $2 AND t.tenant_id = $3 AND t.user_id = $4",
                thread_id,
                item_id,
                context.tenant_id,
                context.user_id,
            )
        )
        if data is None:
            raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
        return rows.item_document(data)

    async def delete_thread_item(
        self, thread_id: str, item_id: str, context: RequestContext
    ) -> None:
        # Idempotent within an owned thread: the SDK removes items that may never have been saved.
        owned = await self._run(
            lambda conn: conn.fetchval(
                "WITH thread AS ("
                " SELECT id FROM threads WHERE id = $1 AND tenant_id = $2 AND user_id = $3),"
                " gone AS (DELETE FROM items WHERE thread_id IN (SELECT id FROM thread)"
                " AND id = $4)"
                " SELECT count(*) FROM thread",
                thread_id,
                context.tenant_id,
                context.user_id,
                item_id,
            )
        )
        if not owned:
            raise NotFoundError(f"Thread {thread_id} not found")

    # --- attachments -------------------------------------------------------------------------

    async def save_attachment(self, attachment: Attachment, context: RequestContext) -> None:
        data = rows.encode(rows.ATTACHMENT, attachment)

        async def work(conn: Conn) -> int:
            if attachment.thread_id is not None:
                await _owned_thread(conn, attachment.thread_id, context.tenant_id, context.user_id)
            status = await conn.execute(
                "INSERT INTO attachments (id, tenant_id, user_id, thread_id, created_at, data)"
                " VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (id) DO UPDATE SET"
                " thread_id = EXCLUDED.thread_id, data = EXCLUDED.data"
                " WHERE attachments.tenant_id = EXCLUDED.tenant_id"
                " AND attachments.user_id = EXCLUDED.user_id",
                attachment.id,
                context.tenant_id,
                context.user_id,
                attachment.thread_id,
                _now(),
                data,
            )
            return _count(status)

        try:
            saved = await self._run(work, transaction=True)
        except pg.ForeignKeyViolationError:  # its thread was deleted meanwhile
            raise NotFoundError(f"Thread {attachment.thread_id} not found") from None
        if saved == 0:
            raise NotFoundError(f"Attachment {attachment.id} not found")

    # --- data rights (SQL in user_data.py) ----------------------------------------------------

    def _delete_user_batches(
        self, tenant_id: str, user_id: str, batch_size: int
    ) -> Sequence[PruneBatch]:
        def batch(delete: user_data.UserBatch) -> PruneBatch:
            async def run() -> Batch:
                return await self._run(
                    lambda conn: delete(conn, tenant_id, user_id, batch_size), transaction=True
                )

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
        documents: list[Any] = await self._run(
            lambda conn: user_data.attachment_documents(conn, tenant_id, user_id)
        )
        return documents

    async def _user_feedback(self, tenant_id: str, user_id: str) -> list[FeedbackRecord]:
        return await self._run(lambda conn: user_data.feedback_records(conn, tenant_id, user_id))

    # --- feedback ----------------------------------------------------------------------------

    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        wanted = list(dict.fromkeys(item_ids))  # one row per item, even if named twice

        async def work(conn: Conn) -> None:
            await _owned_thread(conn, thread_id, context.tenant_id, context.user_id)
            found = {
                row["id"]
                for row in await conn.fetch(
                    "SELECT id FROM items WHERE thread_id = $1 AND id = ANY($2::text[])",
                    thread_id,
                    wanted,
                )
            }
            for item_id in wanted:
                if item_id not in found:
                    raise NotFoundError(f"Item {item_id} not found in thread {thread_id}")
            await conn.execute(
                "INSERT INTO feedback (thread_id, item_id, tenant_id, user_id, kind, created_at)"
                " SELECT $1, item_id, $2, $3, $4, $5 FROM unnest($6::text[]) AS item_id"
                " ON CONFLICT (thread_id, item_id, tenant_id, user_id)"
                " DO UPDATE SET kind = EXCLUDED.kind, created_at = EXCLUDED.created_at",
                thread_id,
                context.tenant_id,
                context.user_id,
                kind,
                _now(),
                wanted,
            )

        try:
            await self._run(work, transaction=True)
        except pg.ForeignKeyViolationError:  # the thread was deleted meanwhile
            raise NotFoundError(f"Thread {thread_id} not found") from None

    async def _select_feedback(self, where: FeedbackFilter, limit: int) -> list[FeedbackRecord]:
        since = _moment(where.since) if where.since else None
        return await self._all(
            lambda row: feedback_record(row, row["created_at"]),
            "SELECT thread_id, item_id, kind, tenant_id, user_id, created_at FROM feedback"
            " WHERE ($1::text IS NULL OR thread_id = $1)"
            " AND ($2::timestamptz IS NULL OR created_at >= $2)"
            " AND ($3::text IS NULL OR tenant_id = $3) ORDER BY created_at DESC LIMIT $4",
            where.thread_id,
            since,
            where.tenant_id,
            limit,
        )

    # --- retention ---------------------------------------------------------------------------

    def _prune_batches(self, older_than: datetime, batch_size: int) -> Sequence[PruneBatch]:
        cutoff = _moment(older_than)

        async def threads() -> Batch:
            return await self._run(
                lambda conn: _prune_threads(conn, cutoff, batch_size), transaction=True
            )

        async def unattached() -> Batch:
            attachments = await self._run(
                lambda conn: user_data.delete_attachment_rows(
                    conn,
                    "id IN (SELECT id FROM attachments WHERE thread_id IS NULL"
                    " AND created_at < $1 ORDER BY created_at LIMIT $2"
                    " FOR UPDATE SKIP LOCKED)",
                    cutoff,
                    batch_size,
                )
            )
            return rows.prune_report(attachments), attachments

        return threads, unattached

    # --- business data (the tools' EmployeeDirectory and TicketDesk) -----------------------

    async def upsert_employees(self, employees: Sequence[EmployeeRecord]) -> int:
        marks = ", ".join(f"${n}" for n in range(1, len(EMPLOYEE_FIELDS) + 2))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in EMPLOYEE_FIELDS[2:])
        now = _now()

        async def work(conn: Conn) -> None:
            await conn.executemany(
                f"INSERT INTO employees ({EMPLOYEE_COLUMNS}, updated_at) VALUES ({marks})"
                f" ON CONFLICT (tenant_id, employee_id) DO UPDATE SET {updates},"
                " updated_at = EXCLUDED.updated_at",
                [(*employee_values(employee), now) for employee in employees],
            )

        await self._run(work, transaction=True)
        return len(employees)

    async def find_employee(self, tenant_id: str, employee_id: str) -> EmployeeRecord | None:
        return await self._one(
            employee_record,
            f"{_SELECT_EMPLOYEES} WHERE tenant_id = $1 AND employee_id = $2",
            tenant_id,
            employee_id,
        )

    async def search_employees(
        self, tenant_id: str, name_or_email: str, limit: int
    ) -> list[EmployeeRecord]:
        return await self._all(
            employee_record,
            f"{_SELECT_EMPLOYEES} WHERE tenant_id = $1"
            " AND (lower(email) = lower($2) OR lower(name) = lower($2))"
            " ORDER BY employee_id LIMIT $3",
            tenant_id,
            name_or_email,
            limit,
        )

    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        ticket_id, now = new_ticket_id(), _now()
        # A retry after a lost connection may find the row its first attempt committed.
        row = await self._run(
            lambda conn: conn.fetchrow(
                f"INSERT INTO tickets ({_TICKET_ROW})"
                " VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $7)"
                " ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id"
                f" RETURNING {_TICKET_ROW}",
                ticket_id,
                ticket.tenant_id,
                ticket.requester_id,
                ticket.subject,
                ticket.body,
                ticket.priority,
                now,
            )
        )
        return _ticket(row)

    async def load_ticket(self, tenant_id: str, ticket_id: str) -> Ticket | None:
        return await self._one(
            _ticket, f"{_SELECT_TICKETS} WHERE tenant_id = $1 AND id = $2", tenant_id, ticket_id
        )

    async def list_tickets(self, tenant_id: str, requester_id: str, limit: int) -> list[Ticket]:
        return await self._all(
            _ticket,
            f"{_SELECT_TICKETS} WHERE tenant_id = $1 AND requester_id = $2"
            " ORDER BY created_at DESC, ordinal DESC LIMIT $3",
            tenant_id,
            requester_id,
            limit,
        )

    async def set_ticket_status(
        self, tenant_id: str, ticket_id: str, status: TicketStatus
    ) -> Ticket | None:
        return await self._one(
            _ticket,
            "UPDATE tickets SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4"
            f" RETURNING {_TICKET_ROW}",
            status,
            _now(),
            tenant_id,
            ticket_id,
        )


def _ticket(row: Any) -> Ticket:
    return ticket_record(row, row["created_at"], row["updated_at"])


def _closed(conn: Conn) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:  # the pool took back the proxy of a connection that closed
        return True


class _ConnectionLost(Exception):
    def __init__(self, error: BaseException, *, acquiring: bool = False) -> None:
        super().__init__(describe(error))
        self.error = error
        self.acquiring = acquiring


async def _owned_thread(conn: Conn, thread_id: str, tenant_id: str, user_id: str) -> None:
    found = await conn.fetchval(
        "SELECT 1 FROM threads WHERE id = $1 AND tenant_id = $2 AND user_id = $3",
        thread_id,
        tenant_id,
        user_id,
    )
    if found is None:
        raise NotFoundError(f"Thread {thread_id} not found")


async def _prune_threads(conn: Conn, cutoff: datetime, limit: int) -> Batch:
    # FOR UPDATE: a write to one of these threads waits for this batch, then finds no thread.
    # SKIP LOCKED: a thread being written right now is left for the next run.
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM threads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2"
            " FOR UPDATE SKIP LOCKED",
            cutoff,
            limit,
        )
    ]
    return await user_data.remove_threads(conn, ids)


async def _schema_status(conn: Conn) -> SchemaStatus:
    current = 0
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return SchemaStatus(current=int(current), latest=LATEST_VERSION)


async def _create_migrations_table(conn: Conn) -> None:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " description TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
