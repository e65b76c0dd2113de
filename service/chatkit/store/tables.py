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


def version_3(types: ColumnTypes) -> tuple[str, ...]:
    """The employee directory and support tickets the agent's tools use, per tenant."""
    return (
        f"""
            CREATE TABLE employees (
                tenant_id TEXT NOT NULL,
                employee_id TEXT NOT NULL,
                name TEXT NOT NULL,
                email TEXT NOT NULL,
                department TEXT,
                title TEXT,
                manager_id TEXT,
                location TEXT,
                salary_band TEXT,
                personal_phone TEXT,
                updated_at {types.moment} NOT NULL,
                PRIMARY KEY (tenant_id, employee_id)
            )
            """,
        "CREATE INDEX employees_by_email ON employees (tenant_id, lower(email))",
        f"""
            CREATE TABLE tickets (
                ordinal {types.ordinal},
                id TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                requester_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                body TEXT NOT NULL,
                priority TEXT NOT NULL
                    CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
                status TEXT NOT NULL
                    CHECK (status IN ('open', 'in_progress', 'resolved', 'escalated')),
                created_at {types.moment} NOT NULL,
                updated_at {types.moment} NOT NULL
            )
            """,
        "CREATE INDEX tickets_by_requester ON tickets (tenant_id, requester_id, created_at)",
    )
