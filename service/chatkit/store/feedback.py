"""Feedback rows as operators read them, whatever the dialect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from chatkit.types import FeedbackKind

R = TypeVar("R")


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


FEEDBACK_FIELDS = ("thread_id", "item_id", "kind", "tenant_id", "user_id")
"""A feedback row's columns as they are in every dialect (`created_at` is not)."""


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """What `load_feedback` selects; `None` matches anything."""

    thread_id: str | None = None
    since: datetime | None = None
    tenant_id: str | None = None


def from_row(record: Callable[..., R], row: Row, fields: Iterable[str], **given: Any) -> R:
    """`record` made of the row's columns named `fields` and the values `given` (those the
    dialects store differently, such as timestamps, converted by the caller)."""
    return record(**{name: row[name] for name in fields}, **given)


def feedback_record(row: Row, created_at: datetime) -> FeedbackRecord:
    return from_row(FeedbackRecord, row, FEEDBACK_FIELDS, created_at=created_at)
