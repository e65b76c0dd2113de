"""What every Store here offers beyond the ChatKit `Store` contract.

Ownership: every thread, item, attachment and feedback row belongs to a (tenant, user); another
user's ids behave exactly like unknown ids (`NotFoundError`).
Ordering: threads and items are ordered by `(created_at, ordinal)`, where the ordinal is the
insertion sequence, so rows sharing a timestamp are neither skipped nor repeated across pages.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from chatkit.store import Store, StoreItemType
from chatkit.types import ThreadMetadata

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


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer release than this one."""


class MigrationRequiredError(RuntimeError):
    """The database schema is older than this release and automatic migration is off."""


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
