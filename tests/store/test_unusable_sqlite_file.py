"""A SQLite path that cannot work is a configuration error: one line naming the path and
DATABASE_URL, no driver traceback, no worker thread left behind, and fatal at start-up."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from service.chatkit.store import StoreConfigurationError, StoreUnavailableError
from service.chatkit.store.sqlite import SQLiteStore
from service.chatkit.store.startup import StoreStartup
from tests.support.server import ROOT


@pytest.fixture
def unopenable(tmp_path: Path) -> Path:
    """A path under a regular file: no one can create it, root included."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    return blocker / "data" / "chatkit.db"


async def test_opening_raises_a_configuration_error_and_leaves_no_thread(
    unopenable: Path,
) -> None:
    before = set(threading.enumerate())
    store = SQLiteStore(str(unopenable))
    with pytest.raises(StoreConfigurationError) as raised:
        await store.open()
    message = str(raised.value)
    assert "\n" not in message
    assert str(unopenable) in message
    assert "DATABASE_URL" in message
    assert not isinstance(raised.value, StoreUnavailableError)  # not an outage to retry
    assert [t for t in threading.enumerate() if t not in before] == []


async def test_a_read_only_database_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "chatkit.db"
    path.write_bytes(b"this is not a SQLite database, and no retry will make it one")
    store = SQLiteStore(str(path))
    with pytest.raises(StoreConfigurationError, match="DATABASE_URL"):
        await store.open()


async def test_start_up_stops_on_it_instead_of_retrying(unopenable: Path) -> None:
    startup = StoreStartup(
        SQLiteStore(str(unopenable)), migrate=True, retry_max_seconds=0.2, first_retry_seconds=0.1
    )
    with pytest.raises(StoreConfigurationError):
        await startup.start()
    assert not startup.opened.is_set()


def test_migrate_says_so_in_one_line(unopenable: Path, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "OPENAI_"))},
        "DATABASE_URL": f"sqlite:///{unopenable}",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from service.cli import main; sys.exit(main())",
            "migrate",
        ],
        cwd=tmp_path,  # no stray .env
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatkit-backend migrate: DATABASE_URL:")
    assert str(unopenable) in lines[0]
