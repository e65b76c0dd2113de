"""The SQLite schema, version by version (see migrations.py for the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from service.chatkit.store.migrations import Migration
from service.chatkit.store.tables import (
    UNATTACHED_UPLOADS_INDEX,
    ColumnTypes,
    version_1,
    version_3,
)

# Times are microseconds since the epoch (UTC); ordinals are rowids that are never reused.
COLUMN_TYPES = ColumnTypes(ordinal="INTEGER PRIMARY KEY AUTOINCREMENT", moment="INTEGER")

# Each entry migrates the schema from version N-1 to N. Never edit a released entry: append.
MIGRATIONS: Sequence[Migration] = (
    Migration(1, "threads, items, attachments, feedback", version_1(COLUMN_TYPES)),
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
            UNATTACHED_UPLOADS_INDEX,
        ),
    ),
    Migration(3, "employee directory and support tickets", version_3(COLUMN_TYPES)),
)
LATEST_VERSION = MIGRATIONS[-1].version
