"""Issue 9: a password in OPENAI_BASE_URL never reaches chat users or the server's logs."""

from __future__ import annotations

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.server import free_port

USER = "gwuser"
PASSWORD = "SECRETPASS42"


# DEBUG: the provider client's own debug logs describe each request.
@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
async def test_unreachable_provider_error_names_host_and_port_without_credentials(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str, log_level: str
) -> None:
    closed_port = free_port()
    server = server_factory(
        {
            **provider_env("openai-compatible", mock_llm),
            "LOG_LEVEL": log_level,
            "OPENAI_BASE_URL": f"http://{USER}:{PASSWORD}@127.0.0.1:{closed_port}/v1",
        }
    )
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("anyone there?")
    [error] = stream.errors
    assert f"could not be reached at 127.0.0.1:{closed_port}" in error["message"]
    body = stream.body.decode()
    assert PASSWORD not in body
    assert USER not in body
    server.stop()  # the whole log, flushed, before it is read
    assert "POST /chatkit/api" in server.log  # the log covers the failed turn
    assert PASSWORD not in server.log
