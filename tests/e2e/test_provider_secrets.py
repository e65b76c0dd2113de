"""A provider's error text that quotes the configured key never reaches the chat user, and the
log shows it redacted: checked against the configured value, not only key-like patterns."""

from __future__ import annotations

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply

CANARY = "SECRETCANARY123"


@pytest.mark.parametrize(
    ("provider", "key", "status", "quoted"),
    [
        ("openai-compatible", f"gwkey-{CANARY}", 422, f"Unprocessable for key gwkey-{CANARY}"),
        ("openai", f"sk-{CANARY}", 400, f"Incorrect API key: key ending in {CANARY}"),
        ("openai", f"sk-{CANARY}", 422, f"bad key SK-{CANARY}"),
        ("openai-compatible", f"gwkey-{CANARY}", 400, f"key {CANARY.lower()} is not allowed"),
    ],
)
async def test_provider_text_quoting_the_key_reaches_neither_the_user_nor_the_log(
    server_factory: ServerFactory,
    mock_llm: MockLLM,
    user: str,
    provider: str,
    key: str,
    quoted: str,
    status: int,
) -> None:
    server = server_factory(
        {**provider_env(provider, mock_llm), "OPENAI_API_KEY": key, "TITLE_GENERATION": "false"}
    )
    mock_llm.enqueue(Reply(status=status, error_message=quoted))
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("hello")
    [error] = stream.errors
    assert f"HTTP {status}" in error["message"]
    assert CANARY.lower() not in stream.body.decode().lower()
    server.stop()
    assert "[redacted]" in server.log  # the provider's explanation is logged, key hidden
    assert CANARY.lower() not in server.log.lower()
