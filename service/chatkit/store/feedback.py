"""Feedback rows as operators read them, whatever the dialect."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chatkit.types import FeedbackKind


class Row(Protocol):
    """A result row by column name (`sqlite3.Row`, `asyncpg.Record`)."""

    def __getitem__(self, key: str, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    thread_id: str
    item_id: str
    kind: FeedbackKind
    tenant_id: str
    user_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """What `load_feedback` selects; `None` matches anything."""

    thread_id: str | None = None
    since: datetime | None = None
    tenant_id: str | None = None


def feedback_record(row: Row, created_at: datetime) -> FeedbackRecord:
    return FeedbackRecord(
        thread_id=row["thread_id"],
        item_id=row["item_id"],
        kind=row["kind"],
        tenant_id=row["tenant_id"],
        user_id=row["user_id"],
        created_at=created_at,
    )
