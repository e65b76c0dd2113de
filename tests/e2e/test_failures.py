"""Provider failures end the stream with an error event a person can act on; the thread stays usable."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_GEMINI_KEY, TEST_OPENAI_KEY, ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import free_port

STATUS_CASES = [
    (401, "rejected the API key (HTTP 401). Check {key}", False),
    (403, "refused access to model '{model}' (HTTP 403)", False),
    (404, "does not know model '{model}' (HTTP 404). Check {model_setting}", False),
    (429, "is rate-limiting requests (HTTP 429)", True),
    (500, "had an internal error (HTTP 500)", True),
    (503, "had an internal error (HTTP 503)", True),
]
FACTS = {
    "openai": {
        "key": "OPENAI_API_KEY",
        "model": "gpt-test",
        "model_setting": "OPENAI_DEFAULT_MODEL",
    },
    "gemini": {
        "key": "GEMINI_API_KEY",
        "model": "gemini-test",
        "model_setting": "GEMINI_DEFAULT_MODEL",
    },
}


def assert_no_secrets(text: str) -> None:
    for secret in (TEST_OPENAI_KEY, TEST_GEMINI_KEY, "SECRET", "sk-"):
        assert secret not in text


async def check_next_turn_works(client: ChatKitClient, thread_id: str, mock: MockLLM) -> None:
    mock.enqueue(Reply(text="Back to normal."))
    follow_up = await client.add_message(thread_id, "and now?")
    assert follow_up.errors == []
    assert follow_up.assistant_text() == "Back to normal."
    types = [i["type"] for i in (await client.list_items(thread_id, order="asc"))["data"]]
    assert types == ["user_message", "user_message", "assistant_message"]


@pytest.mark.parametrize("provider", ["openai", "gemini"])
@pytest.mark.parametrize(("status", "expected", "retryable"), STATUS_CASES)
async def test_provider_status_errors_become_error_events(
    request: pytest.FixtureRequest,
    provider: str,
    status: int,
    expected: str,
    retryable: bool,
    mock_llm: MockLLM,
    user: str,
) -> None:
    server = request.getfixturevalue(f"{provider}_server")
    mock_llm.enqueue(
        Reply(status=status, error_message=f"Incorrect API key provided: {TEST_OPENAI_KEY[:8]}***")
    )
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("Hello?")
        assert stream.status == 200
        [error] = stream.errors
        assert error["code"] == "custom"
        assert error["allow_retry"] is retryable
        assert expected.format(**FACTS[provider]) in error["message"]
        assert_no_secrets(error["message"])
        assert stream.done_items("assistant_message") == []
        thread = await client.get_thread(stream.thread_id)
        assert thread["title"] == "Hello?"  # titled from the message even when the model failed
        await check_next_turn_works(client, stream.thread_id, mock_llm)


async def test_a_rejected_request_names_the_status_and_leaves_the_provider_text_to_the_log(
    openai_server, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.enqueue(
        Reply(
            status=400,
            error_message=f"This model's maximum context length is 8192 tokens. key={TEST_OPENAI_KEY}",
        )
    )
    async with ChatKitClient(openai_server.url, user=user) as client:
        stream = await client.create_thread("long")
    [error] = stream.errors
    assert "rejected the request (HTTP 400)" in error["message"]
    assert "maximum context length" not in error["message"]
    assert_no_secrets(error["message"])
    assert "maximum context length is 8192 tokens" in openai_server.log
    assert TEST_OPENAI_KEY not in openai_server.log


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_stream_cut_mid_answer_is_an_error_and_recoverable(
    request: pytest.FixtureRequest, provider: str, mock_llm: MockLLM, user: str
) -> None:
    server = request.getfixturevalue(f"{provider}_server")
    mock_llm.enqueue(Reply(text="this answer will be cut short", drop_after=2))
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("talk")
        [error] = stream.errors
        assert error["allow_retry"] is True
        assert "dropped the connection before the answer was complete" in error["message"]
        await check_next_turn_works(client, stream.thread_id, mock_llm)


# Both HTTP stacks of the model client say the same: aiohttp reports every connection failure
# as a timeout (service/agents/errors.py tells them apart).
HTTP_CLIENTS = pytest.mark.parametrize("http_client", ["aiohttp", "httpx"])


@HTTP_CLIENTS
async def test_timeout_is_an_error_event(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str, http_client: str
) -> None:
    server = server_factory(
        {
            **provider_env("openai", mock_llm),
            "LLM_TIMEOUT_SECONDS": "1",
            "LLM_HTTP_CLIENT": http_client,
        }
    )
    mock_llm.enqueue(Reply(hang=2.5))
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("slow?")
        [error] = stream.errors
        assert (
            "did not answer in time" in error["message"]
            and "LLM_TIMEOUT_SECONDS" in error["message"]
        )
        await check_next_turn_works(client, stream.thread_id, mock_llm)


@HTTP_CLIENTS
async def test_unreachable_provider_is_an_error_event(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str, http_client: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    server = server_factory(
        {
            **provider_env("openai-compatible", mock_llm),
            "OPENAI_BASE_URL": dead,
            "LLM_HTTP_CLIENT": http_client,
        }
    )
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("anyone there?")
    [error] = stream.errors
    assert "could not be reached at 127.0.0.1" in error["message"]
    assert "OPENAI_BASE_URL" in error["message"]


@pytest.mark.parametrize(
    ("provider", "key"), [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")]
)
async def test_missing_key_starts_and_every_turn_says_so(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str, provider: str, key: str
) -> None:
    env = provider_env(provider, mock_llm)
    del env[key]
    server = server_factory(env)
    async with ChatKitClient(server.url, user=user) as client:
        first = await client.create_thread("hello")
        second = await client.add_message(first.thread_id, "hello again")
        listed = await client.list_threads()
    for stream in (first, second):
        [error] = stream.errors
        assert error["message"] == (
            f"The assistant is not configured: set {key} (LLM_PROVIDER={provider}) and restart the server."
        )
        assert error["allow_retry"] is False
    assert [t["id"] for t in listed["data"]] == [first.thread_id]
    assert mock_llm.requests == []
