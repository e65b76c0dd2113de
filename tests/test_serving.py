"""`chatkit-backend serve` when it cannot run: a busy port, an unusable HOST, a database that
cannot be opened. Each ends with one line naming the cause, exit code 1 and no process left,
in every worker and store configuration. Also: the loop's handler for the SDK's leftover tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.serving import _quiet_sdk_leftovers
from tests.support.postgres import scratch_schema_sync
from tests.support.server import ROOT, free_port

EXIT_BOUND_SECONDS = 120.0  # spawned workers import the whole app: slow on a busy machine


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/serve.db"
        return
    with scratch_schema_sync("serving") as url:
        yield url


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def serve(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Run `python -m service serve` to its end; its exit code and output lines. Fails when it
    does not exit within the bound or leaves a process of its group behind."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GEMINI_", "LLM_"))},
        "HOST": "127.0.0.1",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: workers included
    )
    try:
        output, _ = process.communicate(timeout=EXIT_BOUND_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"serve did not exit:\n{output.decode(errors='replace')}")
    assert_group_gone(process.pid)
    return process.returncode, output.decode(errors="replace").splitlines()


def assert_group_gone(group: int) -> None:
    deadline = time.monotonic() + 15  # the multiprocessing resource tracker exits on its own
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(group, signal.SIGKILL)
    pytest.fail("serve left processes running")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_one_line_and_exit_1(
    tmp_path: Path, held_port: int, database_url: str, workers: str
) -> None:
    code, lines = serve(tmp_path, PORT=str(held_port), WORKERS=workers, DATABASE_URL=database_url)
    assert code == 1
    assert lines == [
        f"chatkit-backend serve: cannot listen on 127.0.0.1:{held_port}: address already in "
        "use — set PORT or stop the other process"
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_metrics_port_names_metrics_port(
    tmp_path: Path, held_port: int, workers: str
) -> None:
    code, lines = serve(
        tmp_path, PORT=str(free_port()), METRICS_PORT=str(held_port), WORKERS=workers
    )
    assert code == 1
    assert lines == [
        f"chatkit-backend serve: cannot listen on 127.0.0.1:{held_port}: address already in "
        "use — set METRICS_PORT or stop the other process"
    ]


@pytest.mark.parametrize("host", ["192.0.2.1", "no-such-host.invalid"])
def test_a_host_this_machine_cannot_listen_on_is_one_line_and_exit_1(
    tmp_path: Path, host: str
) -> None:
    port = free_port()
    code, lines = serve(tmp_path, HOST=host, PORT=str(port))
    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith(f"chatkit-backend serve: cannot listen on {host}:{port}: ")
    assert "set HOST" in lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_database_that_cannot_be_opened_stops_start_up_with_one_line(
    tmp_path: Path, workers: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    code, lines = serve(
        tmp_path,
        PORT=str(free_port()),
        WORKERS=workers,
        DATABASE_URL="sqlite:///./a-file/chat.db",
    )
    output = "\n".join(lines)
    assert code == 1
    failures = [line for line in lines if "start-up failed" in line]
    assert len(failures) == 1, output  # one line, also with several workers
    assert failures[0].startswith("chatkit-backend serve: start-up failed: ")
    assert "a-file" in failures[0]
    assert "Traceback" not in output and "Lifespan" not in output
    assert "starting another" not in output  # the supervisor did not restart the workers


# --- the loop's exception handler --------------------------------------------------------


class Reader:
    """An async iterator of our own, waiting on a queue like chatkit's helper-event reader."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    async def __anext__(self) -> int:
        return await self.queue.get()


def leave_pending_step_behind(chatkit_reader: bool) -> None:
    """An `__anext__` task left pending and then collected: asyncio reports "Task was destroyed
    but it is pending!" to the loop's exception handler. `chatkit_reader`: the reader chatkit's
    `stream_agent_response` leaves behind after a cancelled stream."""
    from chatkit.agents import _AsyncQueueIterator  # the SDK's own, as it leaves it behind

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(_quiet_sdk_leftovers)
        reader = _AsyncQueueIterator(asyncio.Queue()) if chatkit_reader else Reader()
        task = asyncio.ensure_future(reader.__anext__())
        await asyncio.sleep(0)
        del task, reader

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        gc.collect()
    finally:
        loop.close()


def destroyed_pending(caplog: pytest.LogCaptureFixture) -> list[int]:
    return [r.levelno for r in caplog.records if "destroyed but it is pending" in r.getMessage()]


def test_the_reader_chatkit_leaves_behind_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        leave_pending_step_behind(chatkit_reader=True)
    assert destroyed_pending(caplog) == [logging.DEBUG]


def test_other_collected_pending_tasks_are_still_errors(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        leave_pending_step_behind(chatkit_reader=False)
    assert destroyed_pending(caplog) == [logging.ERROR]


def test_a_stream_that_ended_unobserved_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(_quiet_sdk_leftovers)

        async def empty() -> None:
            raise StopAsyncIteration

        task = asyncio.ensure_future(empty())
        await asyncio.sleep(0.01)
        del task

    with caplog.at_level(logging.DEBUG):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
            gc.collect()
        finally:
            loop.close()
    never_retrieved = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert never_retrieved and all(r.levelno == logging.DEBUG for r in never_retrieved)


def test_a_schema_that_needs_migrating_stops_start_up_with_the_advice(tmp_path: Path) -> None:
    """The store opens (its worker thread starts) before the check fails: still nothing left."""
    code, lines = serve(
        tmp_path,
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path}/old.db",
        DATABASE_AUTO_MIGRATE="false",
    )
    output = "\n".join(lines)
    assert code == 1
    failures = [line for line in lines if "start-up failed" in line]
    assert len(failures) == 1, output
    assert "chatkit-backend migrate" in failures[0]
    assert "Traceback" not in output
