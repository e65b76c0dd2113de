"""The test PostgreSQL: TEST_DATABASE_URL names a server and a database to administer it from
(default: the local server's `postgres` database, as user `postgres`).

The test run creates a database of its own there (uniquely named, dropped when the run ends),
and every test (or test module) works in a schema of its own inside it, named after it, so tests
run in any order and never see each other's rows; the schema is dropped afterwards. The URL
handed to the code under test selects the schema with `search_path` and tags its connections
with an `application_name` of the same name (to find them for `pg_terminate_backend`).

Without a usable server the tests skip, saying what failed, except under CI=true, where they
fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
import pytest

from service.chatkit.store.postgres.address import server_address

TEST_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUN_DATABASE_PREFIX = "ck_run_"
_run_database: list[str] = []  # the database this test run created, once it has


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return parts._replace(query=urlencode(query)).geturl()


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{auth}{host}:{port}").geturl()


def server_port(url: str = TEST_DATABASE_URL) -> int:
    return urlsplit(url).port or 5432


def unusable(message: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


async def admin_connection(url: str = TEST_DATABASE_URL) -> asyncpg.Connection[asyncpg.Record]:
    where = f"PostgreSQL at TEST_DATABASE_URL ({server_address(url)})"
    try:
        return await asyncpg.connect(with_params(url, application_name="ck_test_admin"), timeout=5)
    except (OSError, TimeoutError) as exc:
        unusable(f"{where} is not reachable: {type(exc).__name__}: {exc}")
    except asyncpg.PostgresError as exc:
        unusable(f"{where} refused the connection: {type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


async def run_database_url() -> str:
    """The URL of this test run's own database, created on first use."""
    if not _run_database:
        name = f"{RUN_DATABASE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
        admin = await admin_connection()
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.PostgresError as exc:
            unusable(f"cannot create a test database on TEST_DATABASE_URL's server: {exc}")
        finally:
            await admin.close()
        _run_database.append(name)
    return urlsplit(TEST_DATABASE_URL)._replace(path=f"/{_run_database[0]}").geturl()


async def drop_run_database() -> None:
    """Drop this run's database (ending the sessions still in it), if it made one."""
    if not _run_database:
        return
    name = _run_database.pop()
    admin = await asyncpg.connect(with_params(TEST_DATABASE_URL, application_name="ck_test_admin"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _schema_name(label: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in label.lower())[:30]
    return f"ck_{safe}_{uuid.uuid4().hex[:8]}"


async def create_schema(label: str) -> str:
    """A new empty schema; the URL that uses it."""
    name = _schema_name(label)
    database = await run_database_url()
    admin = await admin_connection(database)
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await admin.close()
    return with_params(database, search_path=name, application_name=name)


async def drop_schema(url: str) -> None:
    """Drop the schema of `url` with its rows, after ending the sessions still using it."""
    name = schema_of(url)
    admin = await admin_connection(url)
    try:
        await terminate_backends(admin, name)
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await admin.close()


@asynccontextmanager
async def scratch_schema(label: str) -> AsyncIterator[str]:
    url = await create_schema(label)
    try:
        yield url
    finally:
        await drop_schema(url)


@contextmanager
def scratch_schema_sync(label: str) -> Iterator[str]:
    """`scratch_schema` for synchronous (module-scoped) fixtures."""
    url = asyncio.run(create_schema(label))
    try:
        yield url
    finally:
        asyncio.run(drop_schema(url))


def schema_of(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["search_path"]


async def terminate_backends(admin: asyncpg.Connection[asyncpg.Record], application: str) -> int:
    """Kill every server session tagged with `application`; how many there were."""
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name = $1 AND pid <> pg_backend_pid()",
        application,
    )
    return int(killed)


async def terminate(url: str) -> int:
    admin = await admin_connection(url)
    try:
        return await terminate_backends(admin, schema_of(url))
    finally:
        await admin.close()


async def query(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Run one statement in the schema of `url` (for checks and test set-up only)."""
    conn = await asyncpg.connect(with_params(url, application_name="ck_test_admin"), timeout=5)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()
