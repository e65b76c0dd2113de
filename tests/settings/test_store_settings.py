"""The storage settings and the store each DATABASE_URL selects."""

from __future__ import annotations

import pytest

from service.chatkit.store.factory import create_store
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.sqlite import SQLiteStore
from service.settings import ConfigurationError, Settings, load_settings
from tests.support.postgres import scratch_schema


def settings(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


def test_defaults() -> None:
    s = settings()
    assert (s.database_pool_min_size, s.database_pool_max_size) == (1, 10)
    assert s.database_connect_timeout_seconds == 5
    assert s.database_startup_retry_max_seconds == 30
    assert s.retention_days is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "DATABASE_POOL_MIN_SIZE": "2",
        "DATABASE_POOL_MAX_SIZE": "20",
        "DATABASE_CONNECT_TIMEOUT_SECONDS": "2.5",
        "DATABASE_STARTUP_RETRY_MAX_SECONDS": "60",
        "RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(name, value)
    s = settings()
    assert (s.database_pool_min_size, s.database_pool_max_size) == (2, 20)
    assert (s.database_connect_timeout_seconds, s.database_startup_retry_max_seconds) == (2.5, 60)
    assert s.retention_days == 30


def test_an_empty_retention_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "")
    assert settings().retention_days is None


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"database_pool_min_size": 5, "database_pool_max_size": 2}, "DATABASE_POOL_MIN_SIZE"),
        ({"database_pool_max_size": 0}, "DATABASE_POOL_MAX_SIZE"),
        ({"database_connect_timeout_seconds": 0}, "DATABASE_CONNECT_TIMEOUT_SECONDS"),
        ({"retention_days": 0}, "RETENTION_DAYS"),
        ({"database_url": "mysql://x/y"}, "DATABASE_URL"),
    ],
)
def test_bad_values_name_their_setting(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        settings(**values)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_urls_select_the_postgres_store(scheme: str) -> None:
    store = create_store(
        settings(
            database_url=f"{scheme}://app:pw@db.internal:5432/chatkit",
            database_pool_max_size=7,
            turn_lock_timeout_seconds=12,
        )
    )
    assert isinstance(store, PostgresStore)
    assert store.turn_lock_timeout == 12


def test_sqlite_urls_select_the_sqlite_store(tmp_path: object) -> None:
    store = create_store(settings(database_url=f"sqlite:///{tmp_path}/x.db"))
    assert isinstance(store, SQLiteStore)


def test_the_database_password_is_masked() -> None:
    masked = settings(database_url="postgresql://app:hunter2@db:5432/chatkit").masked()
    assert "hunter2" not in masked["DATABASE_URL"]


async def test_a_postgres_scheme_url_connects() -> None:
    async with scratch_schema("scheme") as url:
        short = "postgres://" + url.split("://", 1)[1]
        store = create_store(settings(database_url=short))
        assert isinstance(store, PostgresStore)
        await store.open()
        try:
            await store.ping()
        finally:
            await store.close()
