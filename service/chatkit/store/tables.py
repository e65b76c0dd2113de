"""The tables both dialects create, written once with each dialect's column types filled in.

Version N means the same tables in both dialects; only the ordinal column (the insertion
sequence) and the timestamp type differ. The text of released versions must stay byte for
byte what it was (tests/store/test_migrations.py holds a checksum): append, never edit.
"""

from __future__ import annotations

from typing import NamedTuple


class ColumnTypes(NamedTuple):
    ordinal: str
    """An auto-numbered primary key."""
    moment: str
    """A point in time."""


def version_1(types: ColumnTypes) -> tuple[str, ...]:
    """Threads, items, attachments, feedback."""
    return (
        f"""
            CREATE TABLE threads (
                ordinal {types.ordinal},
                id TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                created_at {types.moment} NOT NULL,
                updated_at {types.moment} NOT NULL,
                data TEXT NOT NULL
            )
            """,
        "CREATE INDEX threads_by_owner ON threads (tenant_id, user_id, created_at, ordinal)",
        "CREATE INDEX threads_by_age ON threads (updated_at)",
        f"""
            CREATE TABLE items (
                ordinal {types.ordinal},
                id TEXT NOT NULL,
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                created_at {types.moment} NOT NULL,
                data TEXT NOT NULL,
                UNIQUE (thread_id, id)
            )
            """,
        "CREATE INDEX items_by_thread ON items (thread_id, created_at, ordinal)",
        f"""
            CREATE TABLE attachments (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                thread_id TEXT REFERENCES threads (id) ON DELETE SET NULL,
                created_at {types.moment} NOT NULL,
                data TEXT NOT NULL
            )
            """,
        "CREATE INDEX attachments_by_thread ON attachments (thread_id)",
        f"""
            CREATE TABLE feedback (
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                item_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('positive', 'negative')),
                created_at {types.moment} NOT NULL,
                PRIMARY KEY (thread_id, item_id, tenant_id, user_id)
            )
            """,
        "CREATE INDEX feedback_by_time ON feedback (created_at)",
    )


UNATTACHED_UPLOADS_INDEX = (
    "CREATE INDEX attachments_unattached ON attachments (created_at) WHERE thread_id IS NULL"
)
"""Version 2 in both dialects: lets `prune` find uploads never attached to a thread."""
