"""What both stores do with rows, whatever the SQL dialect: documents in and out, pages,
pruned-attachment rows.

Documents are the SDK's JSON. User text may hold lone surrogates (valid JSON, invalid UTF-8):
writes repair them to U+FFFD, and loads repair rows that an older release wrote with them, so
one bad character never makes a user's history unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeVar

from chatkit.store import NotFoundError
from chatkit.types import Attachment, Page, ThreadItem, ThreadMetadata
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from service.chatkit.store.feedback import Row
from service.chatkit.store.retention import PrunedAttachment, PruneReport

T = TypeVar("T")

THREAD = TypeAdapter[ThreadMetadata](ThreadMetadata)
ITEM = TypeAdapter[ThreadItem](ThreadItem)
ATTACHMENT = TypeAdapter[Attachment](Attachment)
# (`THREAD` serialises a `Thread` as its metadata: its items never land in the thread row.)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Identified = TypeVar("Identified", bound=_HasId)


OwnedTable = Literal["threads", "attachments"]
"""The tables whose rows belong to a user directly (items and feedback belong to a thread)."""


def not_found(table: OwnedTable, row_id: str) -> NotFoundError:
    noun = "Thread" if table == "threads" else "Attachment"
    return NotFoundError(f"{noun} {row_id} not found")


def unencodable_id() -> NotFoundError:
    """For an id that cannot be encoded (a lone surrogate): no row can have it."""
    return NotFoundError("not found (the identifier is not valid text)")


# --- documents ---------------------------------------------------------------------------------


def valid_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (pairs of surrogates are joined)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def encode(adapter: TypeAdapter[T], value: T) -> str:
    """The JSON document of `value`, always valid UTF-8."""
    try:
        return adapter.dump_json(value).decode()
    except PydanticSerializationError:  # lone surrogates: serialise loosely, then repair
        loose = adapter.dump_python(value, mode="json")
        return valid_text(json.dumps(loose, ensure_ascii=False))


def decode(adapter: TypeAdapter[T], data: str | bytes) -> T:
    try:
        return adapter.validate_json(data)
    except ValidationError:
        repaired = _repaired(data)
        if repaired is None:
            raise
    return adapter.validate_json(repaired)


def _repaired(data: str | bytes) -> str | None:
    """`data` with its lone surrogates (escaped or raw) repaired; None if there were none."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogatepass")
    try:
        loose = json.loads(data)
    except ValueError:
        return None
    text = json.dumps(loose, ensure_ascii=False)
    repaired = valid_text(text)
    return None if repaired == text else repaired


# --- pages -------------------------------------------------------------------------------------


def order_by(order: str) -> tuple[str, str]:
    """(ORDER BY direction, keyset comparison) for `asc` / `desc`: rows continue after the
    cursor row in `(created_at, ordinal)` order."""
    return ("DESC", "<") if order == "desc" else ("ASC", ">")


def page(
    rows: Sequence[Row] | None,
    limit: int,
    parse: Callable[[Any], Identified],
    no_cursor: str = "not found",
) -> Page[Identified]:
    """A page from up to `limit + 1` rows with a `data` column (the extra row: `has_more`);
    `rows` is None when the cursor row (`after`) was not found: `NotFoundError(no_cursor)`."""
    if rows is None:
        raise NotFoundError(no_cursor)
    data = [parse(row["data"]) for row in rows[:limit]]
    has_more = len(rows) > limit
    return Page(data=data, has_more=has_more, after=data[-1].id if has_more else None)


def thread_document(data: str | bytes) -> ThreadMetadata:
    return decode(THREAD, data)


def item_document(data: str | bytes) -> ThreadItem:
    return decode(ITEM, data)


# --- retention --------------------------------------------------------------------


def pruned_attachments(rows: Sequence[Row]) -> list[PrunedAttachment]:
    """From the rows of `DELETE FROM attachments … RETURNING tenant_id, user_id, data`."""
    return [
        PrunedAttachment(
            attachment=decode(ATTACHMENT, row["data"]),
            tenant_id=row["tenant_id"],
            user_id=row["user_id"],
        )
        for row in rows
    ]


def prune_report(
    attachments: Sequence[PrunedAttachment], *, threads: int = 0, items: int = 0, feedback: int = 0
) -> PruneReport:
    return PruneReport(
        threads=threads,
        items=items,
        feedback=feedback,
        attachment_ids=tuple(pruned.attachment.id for pruned in attachments),
    )
