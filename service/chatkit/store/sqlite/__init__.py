"""The embedded default Store: one SQLite file through aiosqlite."""

from service.chatkit.store.sqlite.store import SQLiteStore, sqlite_path

__all__ = ["SQLiteStore", "sqlite_path"]
