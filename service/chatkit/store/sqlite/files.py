"""Opening the SQLite file: a path that cannot work is the operator's to fix, said in one line.

A folder that cannot be created or written, or a file that is not a database, raises
`StoreConfigurationError` naming the path and DATABASE_URL, not a driver traceback; and no
worker thread is left running on that path (it would keep the process alive).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiosqlite

from service.chatkit.store.base import StoreConfigurationError

MEMORY = ":memory:"
# Failures of the file itself, which no retry can mend (primary result codes).
_PERMANENT = {
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_NOTADB,
    sqlite3.SQLITE_AUTH,
}


def unusable(path: str, exc: BaseException) -> StoreConfigurationError:
    return StoreConfigurationError(
        f"DATABASE_URL: cannot use the SQLite database {path} ({exc}); "
        "its folder must exist or be creatable, and be writable"
    )


def is_permanent(exc: sqlite3.Error) -> bool:
    return (exc.sqlite_errorcode & 0xFF) in _PERMANENT


async def open_database(path: str) -> aiosqlite.Connection:
    """A connection with this store's settings (WAL, foreign keys, busy timeout)."""
    if path != MEMORY:
        # Tried on a plain connection first (quick, and once per process): aiosqlite's worker
        # thread, when its connect fails, reports to an event loop that may be gone by then
        # ("Event loop is closed").
        _check_openable(path)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 10000")
        await db.execute("PRAGMA foreign_keys = ON")
        if path != MEMORY:
            await _use_wal(db)
            await db.execute("PRAGMA synchronous = NORMAL")
    except BaseException as exc:
        await db.close()
        if isinstance(exc, sqlite3.Error) and is_permanent(exc):
            raise unusable(path, exc) from exc
        raise
    return db


def _check_openable(path: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()
    except (OSError, sqlite3.Error) as exc:
        raise unusable(path, exc) from exc


async def _use_wal(db: aiosqlite.Connection, patience: float = 10.0) -> None:
    """Switch the file to WAL (it stays so). The switch needs the file to itself for a moment,
    and SQLite does not wait for that (busy_timeout does not apply): processes opening a new
    file together (workers starting at once) retry here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
