"""The test PostgreSQL: TEST_DATABASE_URL (default: the local server), one schema per user.

Every test (or test module) works in a schema of its own, named after it, so tests run in any
order and never see each other's rows; the schema is dropped afterwards. The URL handed to the
code under test selects the schema with `search_path` and tags its connections with an
`application_name` of the same name (to find them for `pg_terminate_backend`).

Without a reachable server the tests skip, except under CI=true, where they fail.
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

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


async def admin_connection() -> asyncpg.Connection[asyncpg.Record]:
    try:
        return await asyncpg.connect(TEST_DATABASE_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at TEST_DATABASE_URL is not reachable: {type(exc).__name__}: {exc}"
        if in_ci():
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)


def _schema_name(label: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in label.lower())[:30]
    return f"ck_{safe}_{uuid.uuid4().hex[:8]}"


async def create_schema(label: str) -> str:
    """A new empty schema; the URL that uses it."""
    name = _schema_name(label)
    admin = await admin_connection()
    try:
        await admin.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await admin.close()
    return with_params(TEST_DATABASE_URL, search_path=name, application_name=name)


async def drop_schema(url: str) -> None:
    """Drop the schema of `url` with its rows, after ending the sessions still using it."""
    name = schema_of(url)
    admin = await admin_connection()
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
    admin = await admin_connection()
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
