"""Uploads count against the same per-user request limit as the ChatKit API."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.limits.helpers import assert_limited
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

PER_MINUTE = 3


@pytest.fixture(scope="module")
def server(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path_factory: pytest.TempPathFactory
) -> ServerProcess:
    uploads: Path = tmp_path_factory.mktemp("uploads")
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "RATE_LIMIT_PER_MINUTE": str(PER_MINUTE),
            "ATTACHMENTS_URL": f"file://{uploads}",
        }
    )


async def test_direct_uploads_over_the_minute_limit_get_429(
    server: ServerProcess, user: str
) -> None:
    async with ChatKitClient(server.url, user=user) as client:
        for n in range(PER_MINUTE):
            files = {"file": (f"note{n}.txt", b"hello", "text/plain")}
            accepted = await client.http.post("/chatkit/api/upload", files=files)
            assert accepted.status_code == 200, accepted.text
        files = {"file": ("one-too-many.txt", b"hello", "text/plain")}
        over = await client.http.post("/chatkit/api/upload", files=files)
    assert_limited(over, f"at most {PER_MINUTE} a minute")
    assert "Traceback" not in server.log


async def test_refused_uploads_are_read_as_429s_not_connection_errors(
    server: ServerProcess, user: str
) -> None:
    """The 429 goes out before the multipart body has arrived, with `Connection: close`; unless
    the server reads the small body first, closing the connection lost about half of these
    answers to a reset (the client saw ReadError)."""
    async with ChatKitClient(server.url, user=user) as client:
        for n in range(PER_MINUTE):
            files = {"file": (f"note{n}.txt", b"hello", "text/plain")}
            assert (await client.http.post("/chatkit/api/upload", files=files)).status_code == 200
    for n in range(30):
        async with ChatKitClient(server.url, user=user) as client:  # a new connection each
            files = {"file": (f"late{n}.txt", b"hello " * 50, "text/plain")}
            over = await client.http.post("/chatkit/api/upload", files=files)
        assert_limited(over, f"at most {PER_MINUTE} a minute")
