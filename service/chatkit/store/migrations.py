"""What the SQLite and PostgreSQL migration lists share: their shape and the version checks.

Each dialect keeps an ordered list of `Migration`s; entry N takes the schema from version N-1
to N, and version N means the same tables in both dialects. Never edit a released entry:
append a new one. The applied versions are recorded in a `schema_migrations` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from service.chatkit.store.base import MigrationRequiredError, SchemaTooNewError


class Migration(NamedTuple):
    version: int
    description: str
    statements: Sequence[str]


def pending(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The migrations still to apply to a schema at `current`, refusing a newer schema."""
    check_not_newer(current, migrations[-1].version)
    return [migration for migration in migrations if migration.version > current]


def check_not_newer(current: int, latest: int) -> None:
    if current > latest:
        raise SchemaTooNewError(
            f"the database schema is at version {current}, newer than this release knows "
            f"({latest}); upgrade chatkit-backend instead of running an older one"
        )


def check_current(current: int, latest: int) -> None:
    """For start-up without automatic migration: the schema must be exactly `latest`."""
    check_not_newer(current, latest)
    if current < latest:
        raise MigrationRequiredError(
            f"the database schema is at version {current}, this release needs {latest}: "
            "run `chatkit-backend migrate` or set DATABASE_AUTO_MIGRATE=true"
        )
