"""The Store for many replicas: PostgreSQL through an asyncpg pool."""

from service.chatkit.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
