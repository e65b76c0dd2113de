"""Without a reachable PostgreSQL its tests skip on a laptop but fail the run under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.server import ROOT, free_port

ONE_POSTGRES_TEST = "tests/store/test_conformance.py::test_thread_round_trip_and_update"


def run_pytest(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "CI"},
        "TEST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/test",
    }
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_POSTGRES_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [False, True])
def test_an_unreachable_postgres(ci: bool) -> None:
    result = run_pytest(ci)
    output = result.stdout + result.stderr
    assert "PostgreSQL at TEST_DATABASE_URL is not reachable" in output
    if ci:
        assert result.returncode != 0, output
        assert "CI=true" in output
    else:
        assert result.returncode == 0, output
        assert "1 passed, 1 skipped" in output  # SQLite ran, PostgreSQL skipped
