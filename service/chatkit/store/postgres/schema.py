"""The PostgreSQL schema, version by version (see migrations.py for the rules).

Timestamps are `timestamptz`; documents are the SDK's JSON as `text` (exact round trip, and
unlike `jsonb` it accepts the `\\u0000` escapes that user text may contain); ordinals are
identity columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.chatkit.store.migrations import Migration
from service.chatkit.store.tables import (
    UNATTACHED_UPLOADS_INDEX,
    ColumnTypes,
    version_1,
    version_3,
)

COLUMN_TYPES = ColumnTypes(
    ordinal="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", moment="TIMESTAMPTZ"
)

MIGRATIONS: Sequence[Migration] = (
    Migration(1, "threads, items, attachments, feedback", version_1(COLUMN_TYPES)),
    Migration(
        2,
        "index for pruning unattached uploads (turn locks are advisory locks here)",
        (UNATTACHED_UPLOADS_INDEX,),
    ),
    Migration(3, "employee directory and support tickets", version_3(COLUMN_TYPES)),
)
LATEST_VERSION = MIGRATIONS[-1].version
