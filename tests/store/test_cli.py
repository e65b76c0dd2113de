"""`chatkit-backend migrate` and `prune` on both stores, as an operator runs them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiosqlite
import pytest

from service.chatkit.store.base import ChatStore
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.sqlite import SQLiteStore
from service.cli import main
from tests.support.builders import ALICE, thread, user_message
from tests.support.postgres import query, scratch_schema_sync
from tests.support.server import free_port

LATEST = "3"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/cli.db"
        return
    with scratch_schema_sync("cli") as url:
        yield url


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    *args: str,
    **env: str,
) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def open_store(url: str) -> ChatStore:
    if url.startswith("sqlite"):
        return SQLiteStore(url.removeprefix("sqlite:///"))
    return PostgresStore(url)


async def seed_old_and_recent(url: str) -> tuple[str, str]:
    """Two threads with an item each; the first one's last activity is 40 days ago."""
    store = open_store(url)
    await store.open()
    ids = []
    for label in ("old", "recent"):
        t = thread(title=label)
        await store.save_thread(t, ALICE)
        await store.add_thread_item(t.id, user_message(t.id, label), ALICE)
        ids.append(t.id)
    await store.close()
    if url.startswith("sqlite"):
        async with aiosqlite.connect(url.removeprefix("sqlite:///")) as db:
            forty_days = 40 * 86_400 * 1_000_000
            await db.execute(
                "UPDATE threads SET updated_at = updated_at - ? WHERE id = ?", (forty_days, ids[0])
            )
            await db.commit()
    else:
        await query(
            url,
            "UPDATE threads SET updated_at = updated_at - interval '40 days' WHERE id = $1",
            ids[0],
        )
    return ids[0], ids[1]


async def thread_ids(url: str) -> list[str]:
    store = open_store(url)
    await store.open()
    try:
        return [t.id for t in (await store.load_threads(10, None, "asc", ALICE)).data]
    finally:
        await store.close()


def test_migrate_creates_then_reports_the_schema(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, _ = run(monkeypatch, capsys, tmp_path, "migrate", DATABASE_URL=database_url)
    assert code == 0
    assert f"schema at version {LATEST} (latest {LATEST}); applied: 1, 2, 3" in out
    code, out, _ = run(monkeypatch, capsys, tmp_path, "migrate", DATABASE_URL=database_url)
    assert code == 0
    assert "applied: none" in out


@pytest.mark.parametrize("command", [["migrate"], ["feedback"], ["prune", "--older-than", "1d"]])
def test_an_unreachable_database_fails_clearly_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: list[str],
) -> None:
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{free_port()}/test"
    code, out, err = run(
        monkeypatch,
        capsys,
        tmp_path,
        *command,
        DATABASE_URL=url,
        DATABASE_CONNECT_TIMEOUT_SECONDS="1",
    )
    assert code == 1
    assert f"chatkit-backend {command[0]}: cannot connect to the database" in err
    assert "Traceback" not in err
    assert "s3cret-pw" not in out + err


def test_prune_deletes_only_what_is_older_than_the_age(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    old, recent = asyncio.run(seed_old_and_recent(database_url))
    code, out, _ = run(
        monkeypatch, capsys, tmp_path, "prune", "--older-than", "30d", DATABASE_URL=database_url
    )
    assert code == 0
    assert "pruned 1 thread(s)" in out
    assert "1 item(s)" in out
    assert asyncio.run(thread_ids(database_url)) == [recent]
    code, out, _ = run(
        monkeypatch, capsys, tmp_path, "prune", "--older-than", "30d", DATABASE_URL=database_url
    )
    assert code == 0
    assert "pruned 0 thread(s)" in out
    assert old not in asyncio.run(thread_ids(database_url))


def test_prune_defaults_to_retention_days(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    _, recent = asyncio.run(seed_old_and_recent(database_url))
    code, out, _ = run(
        monkeypatch, capsys, tmp_path, "prune", DATABASE_URL=database_url, RETENTION_DAYS="50"
    )
    assert (code, "pruned 0 thread(s)" in out) == (0, True)
    code, out, _ = run(
        monkeypatch, capsys, tmp_path, "prune", DATABASE_URL=database_url, RETENTION_DAYS="30"
    )
    assert (code, "pruned 1 thread(s)" in out) == (0, True)
    assert asyncio.run(thread_ids(database_url)) == [recent]


def test_prune_needs_an_age(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    code, _, err = run(monkeypatch, capsys, tmp_path, "prune", DATABASE_URL=url)
    assert code == 2
    assert "--older-than" in err
    assert "RETENTION_DAYS" in err
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize(
    "args", [["--older-than", "30"], ["--older-than", "0d"], ["--batch-size", "0"]]
)
def test_prune_refuses_bad_arguments(
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/none.db"
    with pytest.raises(SystemExit) as exit_:
        run(monkeypatch, capsys, tmp_path, "prune", *args, DATABASE_URL=url)
    assert exit_.value.code == 2
    assert "prune: error: argument" in capsys.readouterr().err
