"""What every Store here offers beyond the ChatKit `Store` contract.

Ownership: every thread, item, attachment and feedback row belongs to a (tenant, user); another
user's ids behave exactly like unknown ids (`NotFoundError`).
Ordering: threads and items are ordered by `(created_at, ordinal)`, where the ordinal is the
insertion sequence, so rows sharing a timestamp are neither skipped nor repeated across pages.
Turns: `turn_lock` serialises the turns of a thread across every process sharing the database.
Availability: a database that cannot be reached raises `StoreUnavailableError` (a ChatKit error
event mid-stream, 503 otherwise; worth retrying); a configuration no retry can mend (a file that
cannot be opened, a schema of another release) raises `StoreConfigurationError`. Every
multi-statement write is one transaction.
Text: an id that cannot be encoded (a lone surrogate) is an unknown id (`NotFoundError`).
Retention: `prune` deletes what has been inactive for too long (see its docstring).
"""

from __future__ import annotations

import secrets
from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chatkit.errors import CustomStreamError
from chatkit.store import NotFoundError, Store, StoreItemType, default_generate_id
from chatkit.types import Attachment, FeedbackKind, ThreadItem, ThreadMetadata

from service.agents.tools.records import EmployeeDirectory, TicketDesk
from service.chatkit.store import rows
from service.chatkit.store.feedback import FeedbackFilter as FeedbackFilter
from service.chatkit.store.feedback import FeedbackRecord as FeedbackRecord
from service.chatkit.store.retention import AttachmentsPruned as AttachmentsPruned
from service.chatkit.store.retention import PruneBatch as PruneBatch
from service.chatkit.store.retention import PrunedAttachment as PrunedAttachment
from service.chatkit.store.retention import PruneReport as PruneReport
from service.chatkit.store.retention import run_batches
from service.request_context import RequestContext

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: int
    latest: int
    applied: tuple[int, ...] = ()


class StoreConfigurationError(RuntimeError):
    """A permanent configuration problem: retrying cannot help, an operator has to act.

    `str(error)` is one line naming what is wrong and the setting to change.
    """


class SchemaTooNewError(StoreConfigurationError):
    """The database was migrated by a newer release than this one."""


class MigrationRequiredError(StoreConfigurationError):
    """The database schema is older than this release and automatic migration is off."""


class StoreUnavailableError(CustomStreamError):
    """The database cannot be reached (down, restarting, overloaded, or not connected yet).

    `message` is what the user sees (a ChatKit error event mid-stream; a 503 otherwise);
    `str(error)` is the operator's detail for logs and `/readyz`.
    """

    USER_MESSAGE = (
        "Your conversation could not be saved because the database is unavailable. "
        "Try again in a moment."
    )

    def __init__(self, detail: str) -> None:
        Exception.__init__(self, detail)
        super().__init__(self.USER_MESSAGE, allow_retry=True)
        self.detail = detail


def new_id(item_type: StoreItemType) -> str:
    # The SDK's default ids carry 32 random bits, so collisions become likely at scale: add 96.
    return default_generate_id(item_type) + secrets.token_hex(12)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; naive datetimes (the SDK's `datetime.now()`) are local."""
    aware = moment if moment.tzinfo is not None else moment.astimezone()
    return (aware - _EPOCH) // timedelta(microseconds=1)


def now_micros() -> int:
    return to_micros(datetime.now(UTC))


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class ChatStore(Store[RequestContext], EmployeeDirectory, TicketDesk):
    """A ChatKit Store with lifecycle, health, feedback and schema management, which also keeps
    the business data the agent's tools use (employee directory, tickets)."""

    turn_lock_timeout: float = 30.0

    @abstractmethod
    def turn_lock(
        self, thread_id: str, context: RequestContext
    ) -> AbstractAsyncContextManager[None]:
        """Held for a whole streamed turn, so two turns on one thread never interleave, in any
        process sharing the database. Raises `ConversationBusy` when the thread stays busy past
        `turn_lock_timeout`."""

    def generate_thread_id(self, context: RequestContext) -> str:
        return new_id("thread")

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext
    ) -> str:
        return new_id(item_type)

    async def add_thread_item(
        self, thread_id: str, item: ThreadItem, context: RequestContext
    ) -> None:
        await self.save_item(thread_id, item, context)

    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        return rows.thread_document(await self._owned_data("threads", thread_id, context))

    async def delete_thread(self, thread_id: str, context: RequestContext) -> None:
        # Items and feedback go with it (ON DELETE CASCADE), in the same statement.
        await self._delete_owned("threads", thread_id, context)

    async def load_attachment(self, attachment_id: str, context: RequestContext) -> Attachment:
        data = await self._owned_data("attachments", attachment_id, context)
        return rows.decode(rows.ATTACHMENT, data)

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        await self._delete_owned("attachments", attachment_id, context)

    @abstractmethod
    async def _owned_data(
        self, table: rows.OwnedTable, row_id: str, context: RequestContext
    ) -> str | bytes:
        """The `data` of the user's row `row_id` of `table`; `NotFoundError` if there is none."""

    @abstractmethod
    async def _delete_owned(
        self, table: rows.OwnedTable, row_id: str, context: RequestContext
    ) -> None:
        """Delete the user's row `row_id` of `table`; `NotFoundError` if there is none."""

    @abstractmethod
    async def open(self, *, migrate: bool = True) -> SchemaStatus:
        """Connect, then create or migrate the schema (when `migrate`) or check it is current."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""

    @abstractmethod
    async def migrate(self) -> SchemaStatus:
        """Apply pending migrations; refuse a schema newer than this release knows."""

    async def prune(
        self,
        older_than: datetime,
        *,
        batch_size: int = 500,
        on_attachments: AttachmentsPruned | None = None,
        orphans_older_than: datetime | None = None,
    ) -> PruneReport:
        """Delete threads last active before `older_than` with their items, feedback and
        attachment records, plus attachment records never attached to a thread and created
        before `orphans_older_than` (default: `older_than`; `ATTACHMENT_ORPHAN_HOURS`); in
        batches of `batch_size` threads, each batch one transaction.

        Idempotent and safe while serving: a thread that becomes active again while its batch
        is chosen is kept. `on_attachments` runs after each committed batch (a failure there
        stops the run and is raised; those records are already gone, so it should be
        idempotent and log what it could not delete).
        """
        kinds = list(self._prune_batches(older_than, batch_size))
        if orphans_older_than is not None:  # the unattached-uploads kind, second, own cutoff
            kinds[1] = self._prune_batches(orphans_older_than, batch_size)[1]
        return await run_batches(kinds, on_attachments)

    @abstractmethod
    def _prune_batches(self, older_than: datetime, batch_size: int) -> Sequence[PruneBatch]:
        """The kinds of `prune` batch, in order: old threads first, then unattached uploads."""

    # --- data rights ----------------------------------------------------------------------------

    async def delete_user(
        self,
        tenant_id: str,
        user_id: str,
        *,
        batch_size: int = 500,
        on_attachments: AttachmentsPruned | None = None,
    ) -> PruneReport:
        """Delete every row of the user: their threads with items, feedback and attachment
        records, then any attachment record or feedback row of theirs left elsewhere; in
        batches of `batch_size`, each one transaction. Idempotent (a second run deletes
        nothing), and no other user's row is touched. `on_attachments` runs after each batch
        with the attachment records it deleted, to delete their bytes (as for `prune`)."""
        return await run_batches(
            self._delete_user_batches(tenant_id, user_id, batch_size), on_attachments
        )

    async def export_user(
        self, tenant_id: str, user_id: str, *, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every row of the user as JSON-ready records (`type`: thread, item, attachment,
        feedback), threads oldest first, each followed by its items; read page by page."""
        context = RequestContext(user_id=user_id, tenant_id=tenant_id)
        after: str | None = None
        while True:
            threads = await self.load_threads(page_size, after, "asc", context)
            for thread in threads.data:
                yield {"type": "thread", "thread": rows.THREAD.dump_python(thread, mode="json")}
                async for item in self._export_items(thread.id, page_size, context):
                    yield item
            if not threads.has_more:
                break
            after = threads.after
        for data in await self._user_attachment_documents(tenant_id, user_id):
            attachment = rows.decode(rows.ATTACHMENT, data)
            document = rows.ATTACHMENT.dump_python(attachment, mode="json")
            yield {"type": "attachment", "attachment": document}
        for record in await self._user_feedback(tenant_id, user_id):
            yield {
                "type": "feedback",
                "thread_id": record.thread_id,
                "item_id": record.item_id,
                "kind": record.kind,
                "created_at": record.created_at.isoformat(),
            }

    async def _export_items(
        self, thread_id: str, page_size: int, context: RequestContext
    ) -> AsyncIterator[dict[str, Any]]:
        after: str | None = None
        while True:
            try:
                items = await self.load_thread_items(thread_id, after, page_size, "asc", context)
            except NotFoundError:  # deleted while being exported
                return
            for item in items.data:
                yield {
                    "type": "item",
                    "thread_id": thread_id,
                    "item": rows.ITEM.dump_python(item, mode="json"),
                }
            if not items.has_more:
                return
            after = items.after

    @abstractmethod
    def _delete_user_batches(
        self, tenant_id: str, user_id: str, batch_size: int
    ) -> Sequence[PruneBatch]:
        """The kinds of `delete_user` batch, in order: threads, attachments, feedback."""

    @abstractmethod
    async def _user_attachment_documents(self, tenant_id: str, user_id: str) -> list[Any]:
        """The `data` of every attachment record of the user, oldest first."""

    @abstractmethod
    async def _user_feedback(self, tenant_id: str, user_id: str) -> list[FeedbackRecord]:
        """Every feedback row of the user, oldest first."""

    @abstractmethod
    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        """Record the user's latest opinion of each item (one row per user and item)."""

    async def load_feedback(
        self,
        *,
        thread_id: str | None = None,
        since: datetime | None = None,
        tenant_id: str | None = None,
        limit: int = 1000,
    ) -> list[FeedbackRecord]:
        """Feedback for operators, newest first; not scoped to a user."""
        return await self._select_feedback(FeedbackFilter(thread_id, since, tenant_id), limit)

    @abstractmethod
    async def _select_feedback(self, where: FeedbackFilter, limit: int) -> list[FeedbackRecord]:
        """At most `limit` feedback rows matching every condition of `where` that is set."""
