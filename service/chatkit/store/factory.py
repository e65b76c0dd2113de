"""The one place the Store implementation is chosen, from the database URL's scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from service.chatkit.store.base import ChatStore
from service.chatkit.store.sqlite import SQLiteStore, sqlite_path
from service.settings import Settings

POSTGRES_SCHEMES = ("postgresql", "postgres")


def create_store(settings: Settings) -> ChatStore:
    scheme = urlsplit(settings.database_url).scheme
    store: ChatStore
    if scheme == "sqlite":
        store = SQLiteStore(sqlite_path(settings.database_url))
    elif scheme in POSTGRES_SCHEMES:
        # Imported only when used: asyncpg and the PostgreSQL store are ~3 MB of every worker.
        from service.chatkit.store.postgres import PostgresStore

        store = PostgresStore(
            settings.database_url,
            min_size=settings.database_pool_min_size,
            max_size=settings.database_pool_max_size,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    else:
        raise ValueError(f"DATABASE_URL: no store for scheme {scheme!r} in this release")
    store.turn_lock_timeout = settings.turn_lock_timeout_seconds
    return store
