"""Without a usable PostgreSQL its tests skip on a laptop, saying what failed, but fail the run
under CI=true."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from service.chatkit.store.postgres.address import server_address
from tests.support.postgres import TEST_DATABASE_URL, unusable
from tests.support.server import ROOT, free_port

ONE_POSTGRES_TEST = "tests/store/test_conformance.py::test_thread_round_trip_and_update"


def run_pytest(ci: bool, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "CI"},
        "TEST_DATABASE_URL": database_url,
    }
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", ONE_POSTGRES_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [False, True])
def test_an_unreachable_postgres(ci: bool) -> None:
    port = free_port()
    result = run_pytest(ci, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    output = result.stdout + result.stderr
    assert f"PostgreSQL at TEST_DATABASE_URL (127.0.0.1:{port}/postgres) is not reachable" in output
    if ci:
        assert result.returncode != 0, output
        assert "CI=true" in output
    else:
        assert result.returncode == 0, output
        assert "1 passed, 1 skipped" in output  # SQLite ran, PostgreSQL skipped


def test_a_refused_connection_says_why_not_unreachable() -> None:
    # A server that answers but refuses (here: no such database) is not "not reachable".
    missing = f"ck_missing_{uuid.uuid4().hex[:8]}"
    result = run_pytest(False, f"{server_url()}/{missing}")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 passed, 1 skipped" in output
    assert (
        f'refused the connection: InvalidCatalogNameError: database "{missing}" does not exist'
        in (output)
    )
    assert "not reachable" not in output


def server_url() -> str:
    """The test server's URL without a database (skips when it is not there)."""
    parts = urlsplit(TEST_DATABASE_URL)
    with socket.socket() as probe:
        probe.settimeout(2)
        if probe.connect_ex((parts.hostname or "127.0.0.1", parts.port or 5432)) != 0:
            unusable(
                f"PostgreSQL at TEST_DATABASE_URL ({server_address(TEST_DATABASE_URL)}) is not reachable"
            )
    return parts._replace(path="", query="").geturl()
