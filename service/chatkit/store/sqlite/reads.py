"""Reads on the event loop's own thread.

A turn reads the thread, its history and its attachments before its first token. Through the
connection's worker thread each statement waits for a turn of the event loop to come back, and
under load one turn of the loop takes milliseconds, so most of a turn's time before its first
byte went to those trips. The file is in WAL mode: a read never waits for a writer, and an
indexed read of a few rows takes microseconds, so reads run here directly. Writes stay on the
worker thread (they can wait for another process's write lock, and a commit may checkpoint).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

# A read in WAL mode waits only in rare moments (another connection recovering the WAL): bound
# how long the event loop may stand still for one.
BUSY_TIMEOUT_MS = 1000


class InlineReads:
    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, isolation_level=None)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._connection.execute("PRAGMA query_only = ON")

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[sqlite3.Row]:
        """The rows of one statement (each sees everything committed before it began)."""
        return self._connection.execute(sql, tuple(parameters or ())).fetchall()

    def close(self) -> None:
        self._connection.close()
