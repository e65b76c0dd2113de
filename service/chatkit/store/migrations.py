"""What the SQLite and PostgreSQL migrations share: their shape, the checks and the runner.

Each dialect keeps an ordered list of `Migration`s; entry N takes the schema from version N-1
to N, and version N means the same tables in both dialects. Never edit a released entry:
append a new one. The applied versions are recorded in a `schema_migrations` table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

from service.chatkit.store.base import MigrationRequiredError, SchemaStatus, SchemaTooNewError


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


async def apply_pending(
    migrations: Sequence[Migration],
    current: int,
    execute: Callable[[str], Awaitable[object]],
    record: Callable[[Migration], Awaitable[object]],
) -> SchemaStatus:
    """Run the migrations a schema at `current` lacks, inside the caller's transaction,
    recording each with `record`; refuses a schema newer than `migrations` know."""
    applied = pending(migrations, current)
    for migration in applied:
        for statement in migration.statements:
            await execute(statement)
        await record(migration)
    return SchemaStatus(
        current=applied[-1].version if applied else current,
        latest=migrations[-1].version,
        applied=tuple(migration.version for migration in applied),
    )
