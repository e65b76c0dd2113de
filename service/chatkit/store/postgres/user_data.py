"""PostgreSQL: one user's rows, deleted in batches (`delete-user`) or read (`export-user`).

Each delete runs in the caller's transaction. `FOR UPDATE` (without `SKIP LOCKED`, unlike
`prune`): a thread being written right now is waited for, not left behind, and a write that
comes after finds no thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from service.chatkit.store import rows
from service.chatkit.store.feedback import FeedbackRecord, feedback_record
from service.chatkit.store.retention import PrunedAttachment, PruneReport

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
Batch = tuple[PruneReport, list[PrunedAttachment]]
UserBatch = Callable[[Conn, str, str, int], Awaitable[Batch]]
"""Deletes one batch of a user's rows: (connection, tenant id, user id, batch size)."""


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def delete_attachment_rows(conn: Conn, where: str, *params: Any) -> list[PrunedAttachment]:
    """Attachment records matching `where`, deleted; what is needed to delete their bytes."""
    deleted = await conn.fetch(
        f"DELETE FROM attachments WHERE {where} RETURNING tenant_id, user_id, data", *params
    )
    return rows.pruned_attachments(deleted)


async def delete_threads(conn: Conn, tenant_id: str, user_id: str, limit: int) -> Batch:
    """Up to `limit` of the user's threads, with their items, feedback and attachment records."""
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM threads WHERE tenant_id = $1 AND user_id = $2"
            " ORDER BY ordinal LIMIT $3 FOR UPDATE",
            tenant_id,
            user_id,
            limit,
        )
    ]
    return await remove_threads(conn, ids)


async def remove_threads(conn: Conn, ids: list[str]) -> Batch:
    """These threads with their items, feedback and attachment records (`prune` uses it too)."""
    if not ids:
        return PruneReport(), []
    attachments = await delete_attachment_rows(conn, "thread_id = ANY($1::text[])", ids)
    feedback = await conn.execute("DELETE FROM feedback WHERE thread_id = ANY($1::text[])", ids)
    items = await conn.execute("DELETE FROM items WHERE thread_id = ANY($1::text[])", ids)
    threads = await conn.execute("DELETE FROM threads WHERE id = ANY($1::text[])", ids)
    report = rows.prune_report(
        attachments, threads=_count(threads), items=_count(items), feedback=_count(feedback)
    )
    return report, attachments


async def delete_attachments(conn: Conn, tenant_id: str, user_id: str, limit: int) -> Batch:
    """Up to `limit` of the user's attachment records that no thread of theirs holds."""
    attachments = await delete_attachment_rows(
        conn,
        "id IN (SELECT id FROM attachments WHERE tenant_id = $1 AND user_id = $2"
        " LIMIT $3 FOR UPDATE)",
        tenant_id,
        user_id,
        limit,
    )
    return rows.prune_report(attachments), attachments


async def delete_feedback(conn: Conn, tenant_id: str, user_id: str, limit: int) -> Batch:
    """Up to `limit` feedback rows the user left anywhere else."""
    deleted = await conn.execute(
        "DELETE FROM feedback WHERE (thread_id, item_id, tenant_id, user_id) IN"
        " (SELECT thread_id, item_id, tenant_id, user_id FROM feedback"
        " WHERE tenant_id = $1 AND user_id = $2 LIMIT $3 FOR UPDATE)",
        tenant_id,
        user_id,
        limit,
    )
    return PruneReport(feedback=_count(deleted)), []


async def attachment_documents(conn: Conn, tenant_id: str, user_id: str) -> list[str]:
    return [
        row["data"]
        for row in await conn.fetch(
            "SELECT data FROM attachments WHERE tenant_id = $1 AND user_id = $2"
            " ORDER BY created_at, id",
            tenant_id,
            user_id,
        )
    ]


async def feedback_records(conn: Conn, tenant_id: str, user_id: str) -> list[FeedbackRecord]:
    found = await conn.fetch(
        "SELECT thread_id, item_id, kind, tenant_id, user_id, created_at FROM feedback"
        " WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at, thread_id, item_id",
        tenant_id,
        user_id,
    )
    return [feedback_record(row, row["created_at"]) for row in found]
