"""Which PostgreSQL failures mean "the database is unavailable" (answer 503, retry later)."""

from __future__ import annotations

import asyncpg
from asyncpg import exceptions as pg

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable, name resolution
    TimeoutError,  # connect, pool acquire, command timeout
    pg.PostgresConnectionError,  # SQLSTATE class 08, and a connection closed mid-operation
    pg.OperatorInterventionError,  # class 57: shutdown, crash, "starting up", cancelled
    pg.TooManyConnectionsError,
    pg.InvalidAuthorizationSpecificationError,  # at (re)connection: the role is not there (yet)
    pg.InvalidCatalogNameError,  # the database is not there (yet)
    pg.ReadOnlySQLTransactionError,  # connected to a standby during a failover
)


def is_unavailable(exc: BaseException, connection_closed: bool = False) -> bool:
    """True for failures of the database or the way to it, not of the statement.

    `connection_closed`: the connection died during the call, whatever asyncpg raised about it
    (a kill racing with a new query surfaces as an InterfaceError or InternalClientError).
    """
    if isinstance(exc, _UNAVAILABLE):
        return True
    return connection_closed and isinstance(
        exc, asyncpg.InterfaceError | asyncpg.InternalClientError
    )


def describe(exc: BaseException) -> str:
    """One line for logs and `/readyz`; asyncpg's messages carry no passwords."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
