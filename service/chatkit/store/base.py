"""What every Store here offers beyond the ChatKit `Store` contract.

Ownership: every thread, item, attachment and feedback row belongs to a (tenant, user); another
user's ids behave exactly like unknown ids (`NotFoundError`).
Ordering: threads and items are ordered by `(created_at, ordinal)`, where the ordinal is the
insertion sequence, so rows sharing a timestamp are neither skipped nor repeated across pages.
Turns: `turn_lock` serialises the turns of a thread across every process sharing the database.
Availability: a database that cannot be reached raises `StoreUnavailableError` (a ChatKit error
event mid-stream, 503 otherwise); every multi-statement write is one transaction.
Retention: `prune` deletes what has been inactive for too long (see its docstring).
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from chatkit.errors import CustomStreamError
from chatkit.store import Store, StoreItemType
from chatkit.types import Attachment, ThreadMetadata

from service.chatkit.store.locks import LocalTurnLocks
from service.request_context import RequestContext

FeedbackKind = Literal["positive", "negative"]

_ID_PREFIXES: dict[StoreItemType, str] = {
    "thread": "thr",
    "message": "msg",
    "tool_call": "tc",
    "workflow": "wf",
    "task": "tsk",
    "attachment": "atc",
    "sdk_hidden_context": "shcx",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    thread_id: str
    item_id: str
    kind: FeedbackKind
    tenant_id: str
    user_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    current: int
    latest: int
    applied: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PrunedAttachment:
    """An attachment record that `prune` deleted, with its owner (to delete the bytes too)."""

    attachment: Attachment
    tenant_id: str
    user_id: str


AttachmentsPruned = Callable[[Sequence[PrunedAttachment]], Awaitable[None]]
"""Called after each committed batch of `prune` with the attachment records it deleted."""


@dataclass(frozen=True, slots=True)
class PruneReport:
    threads: int = 0
    items: int = 0
    feedback: int = 0
    attachment_ids: tuple[str, ...] = ()
    batches: int = 0

    def __add__(self, other: PruneReport) -> PruneReport:
        return PruneReport(
            threads=self.threads + other.threads,
            items=self.items + other.items,
            feedback=self.feedback + other.feedback,
            attachment_ids=self.attachment_ids + other.attachment_ids,
            batches=self.batches + other.batches,
        )


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer release than this one."""


class MigrationRequiredError(RuntimeError):
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


def new_id(prefix: str) -> str:
    # The SDK's default ids carry 32 random bits: collisions become likely at scale.
    return f"{prefix}_{uuid.uuid4().hex}"


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; naive datetimes (the SDK's `datetime.now()`) are local."""
    aware = moment if moment.tzinfo is not None else moment.astimezone()
    return (aware - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class ChatStore(Store[RequestContext]):
    """A ChatKit Store with lifecycle, health, feedback and schema management."""

    turn_lock_timeout: float = 30.0
    _local_turn_locks: LocalTurnLocks | None = None

    @asynccontextmanager
    async def turn_lock(self, thread_id: str, context: RequestContext) -> AsyncIterator[None]:
        """Held for a whole streamed turn, so two turns on one thread never interleave.

        Raises `ConversationBusy` when the thread stays busy past `turn_lock_timeout`. This
        default only covers one process; stores shared by several processes override it.
        """
        if self._local_turn_locks is None:
            self._local_turn_locks = LocalTurnLocks(self.turn_lock_timeout)
        async with self._local_turn_locks.hold(thread_id):
            yield

    def generate_thread_id(self, context: RequestContext) -> str:
        return new_id(_ID_PREFIXES["thread"])

    def generate_item_id(
        self, item_type: StoreItemType, thread: ThreadMetadata, context: RequestContext
    ) -> str:
        return new_id(_ID_PREFIXES[item_type])

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

    @abstractmethod
    async def prune(
        self,
        older_than: datetime,
        *,
        batch_size: int = 500,
        on_attachments: AttachmentsPruned | None = None,
    ) -> PruneReport:
        """Delete threads last active before `older_than` with their items, feedback and
        attachment records, plus attachment records never attached to a thread and created
        before it; in batches of `batch_size` threads, each batch one transaction.

        Idempotent and safe while serving: a thread that becomes active again while its batch
        is chosen is kept. `on_attachments` runs after each committed batch (a failure there
        stops the run and is raised; those records are already gone, so it should be
        idempotent and log what it could not delete).
        """

    @abstractmethod
    async def save_feedback(
        self, thread_id: str, item_ids: list[str], kind: FeedbackKind, context: RequestContext
    ) -> None:
        """Record the user's latest opinion of each item (one row per user and item)."""

    @abstractmethod
    async def load_feedback(
        self,
        *,
        thread_id: str | None = None,
        since: datetime | None = None,
        tenant_id: str | None = None,
        limit: int = 1000,
    ) -> list[FeedbackRecord]:
        """Feedback for operators, newest first; not scoped to a user."""
