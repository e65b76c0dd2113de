"""The SQLite schema, version by version (see migrations.py for the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from service.chatkit.store.migrations import Migration

# Each entry migrates the schema from version N-1 to N. Never edit a released entry: append.
MIGRATIONS: Sequence[Migration] = (
    Migration(
        1,
        "threads, items, attachments, feedback",
        (
            """
            CREATE TABLE threads (
                ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                data TEXT NOT NULL
            )
            """,
            "CREATE INDEX threads_by_owner ON threads (tenant_id, user_id, created_at, ordinal)",
            "CREATE INDEX threads_by_age ON threads (updated_at)",
            """
            CREATE TABLE items (
                ordinal INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL,
                thread_id TEXT NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
                type TEXT NOT NULL,
                created_at INTEGER NOT NULL,
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
                created_at INTEGER NOT NULL,
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
                created_at INTEGER NOT NULL,
                PRIMARY KEY (thread_id, item_id, tenant_id, user_id)
            )
            """,
            "CREATE INDEX feedback_by_time ON feedback (created_at)",
        ),
    ),
    Migration(
        2,
        "turn locks shared by worker processes; index for pruning unattached uploads",
        (
            """
            CREATE TABLE turn_locks (
                thread_id TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            )
            """,
            "CREATE INDEX attachments_unattached ON attachments (created_at)"
            " WHERE thread_id IS NULL",
        ),
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
