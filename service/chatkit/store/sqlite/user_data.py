"""SQLite: one user's rows, deleted in batches (`delete-user`) or read (`export-user`).

Each function runs inside the caller's transaction (`BEGIN IMMEDIATE` for the deletes, so no
write lands between choosing a batch and deleting it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

from service.chatkit.store import rows
from service.chatkit.store.base import from_micros
from service.chatkit.store.feedback import FeedbackRecord, feedback_record
from service.chatkit.store.retention import PrunedAttachment, PruneReport

Batch = tuple[PruneReport, list[PrunedAttachment]]
UserBatch = Callable[[aiosqlite.Connection, str, str, int], Awaitable[Batch]]
"""Deletes one batch of a user's rows: (connection, tenant id, user id, batch size)."""


async def _all(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    async with db.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


def _users_batch(column: str, table: str, order: str = "") -> str:
    """The query for `column` of up to `limit` of the user's rows of `table`; its parameters
    are (tenant id, user id, limit), as a `UserBatch` receives them."""
    return f"SELECT {column} FROM {table} WHERE tenant_id = ? AND user_id = ?{order} LIMIT ?"


async def delete_attachment_rows(
    db: aiosqlite.Connection, where: str, params: Sequence[Any]
) -> list[PrunedAttachment]:
    """Attachment records matching `where`, deleted; what is needed to delete their bytes."""
    deleted = await _all(
        db, f"DELETE FROM attachments WHERE {where} RETURNING tenant_id, user_id, data", params
    )
    return rows.pruned_attachments(deleted)


async def delete_threads(
    db: aiosqlite.Connection, tenant_id: str, user_id: str, limit: int
) -> Batch:
    """Up to `limit` of the user's threads, with their items, feedback and attachment records."""
    chosen = await _all(
        db, _users_batch("id", "threads", " ORDER BY ordinal"), (tenant_id, user_id, limit)
    )
    return await remove_threads(db, [row["id"] for row in chosen])


async def remove_threads(db: aiosqlite.Connection, ids: list[str]) -> Batch:
    """These threads with their items, feedback and attachment records (`prune` uses it too)."""
    if not ids:
        return PruneReport(), []
    marks = ", ".join("?" * len(ids))
    attachments = await delete_attachment_rows(db, f"thread_id IN ({marks})", ids)
    feedback = await db.execute(f"DELETE FROM feedback WHERE thread_id IN ({marks})", ids)
    items = await db.execute(f"DELETE FROM items WHERE thread_id IN ({marks})", ids)
    threads = await db.execute(f"DELETE FROM threads WHERE id IN ({marks})", ids)
    report = rows.prune_report(
        attachments, threads=threads.rowcount, items=items.rowcount, feedback=feedback.rowcount
    )
    return report, attachments


async def delete_attachments(
    db: aiosqlite.Connection, tenant_id: str, user_id: str, limit: int
) -> Batch:
    """Up to `limit` of the user's attachment records that no thread of theirs holds."""
    attachments = await delete_attachment_rows(
        db, f"id IN ({_users_batch('id', 'attachments')})", (tenant_id, user_id, limit)
    )
    return rows.prune_report(attachments), attachments


async def delete_feedback(
    db: aiosqlite.Connection, tenant_id: str, user_id: str, limit: int
) -> Batch:
    """Up to `limit` feedback rows the user left anywhere else."""
    deleted = await db.execute(
        f"DELETE FROM feedback WHERE rowid IN ({_users_batch('rowid', 'feedback')})",
        (tenant_id, user_id, limit),
    )
    return PruneReport(feedback=deleted.rowcount), []


async def attachment_documents(db: aiosqlite.Connection, tenant_id: str, user_id: str) -> list[Any]:
    return [
        row["data"]
        for row in await _all(
            db,
            "SELECT data FROM attachments WHERE tenant_id = ? AND user_id = ?"
            " ORDER BY created_at, id",
            (tenant_id, user_id),
        )
    ]


async def feedback_records(
    db: aiosqlite.Connection, tenant_id: str, user_id: str
) -> list[FeedbackRecord]:
    found = await _all(
        db,
        "SELECT thread_id, item_id, kind, tenant_id, user_id, created_at FROM feedback"
        " WHERE tenant_id = ? AND user_id = ? ORDER BY created_at, thread_id, item_id",
        (tenant_id, user_id),
    )
    return [feedback_record(row, from_micros(row["created_at"])) for row in found]
