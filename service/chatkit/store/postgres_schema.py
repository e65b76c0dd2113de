"""The PostgreSQL schema, version by version (see migrations.py for the rules).

Version N means the same tables as SQLite's version N. Timestamps are `timestamptz`; documents
are the SDK's JSON as `text` (exact round trip, and unlike `jsonb` it accepts the `\\u0000`
escapes that user text may contain); ordinals are identity columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.chatkit.store.migrations import Migration

MIGRATIONS: Sequence[Migration] = (
    Migration(
        1,
        "threads, items, attachments, feedback",
        (
            """
            CREATE TABLE threads (
                ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX threads_by_owner ON threads (tenant_id, user_id, created_at, ordinal)",
            "CREATE INDEX threads_by_age ON threads (updated_at)",
            """
            CREATE TABLE items (
                ordinal BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id TEXT NOT NULL,
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                data TEXT NOT NULL,
                UNIQUE (thread_id, id)
            )
            """,
            "CREATE INDEX items_by_thread ON items (thread_id, created_at, ordinal)",
            """
            CREATE TABLE attachments (
                id TEXT PRIMARY KEY,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                thread_id TEXT REFERENCES threads (id) ON DELETE SET NULL,
                created_at TIMESTAMPTZ NOT NULL,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX attachments_by_thread ON attachments (thread_id)",
            """
            CREATE TABLE feedback (
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                item_id TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('positive', 'negative')),
                created_at TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (thread_id, item_id, tenant_id, user_id)
            )
            """,
            "CREATE INDEX feedback_by_time ON feedback (created_at)",
        ),
    ),
    Migration(
        2,
        "index for pruning unattached uploads (turn locks are advisory locks here)",
        (
            "CREATE INDEX attachments_unattached ON attachments (created_at)"
            " WHERE thread_id IS NULL",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
