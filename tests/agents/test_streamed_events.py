"""The lean Responses stream reader gives the same events and errors as the stock client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
from openai import APIConnectionError, APIError, APITimeoutError, AsyncOpenAI
from openai.types.responses import ResponseOutputMessage, ResponseOutputText, ResponseTextDeltaEvent

from service.agents.streamed_events import (
    StreamedEvents,
    StreamParsingOpenAI,
    parse_chunk,
    parse_event,
)
from tests.support.mock_llm import MockLLM, Reply


@pytest.fixture
def mock() -> Iterator[MockLLM]:
    server = MockLLM().start()
    yield server
    server.stop()


async def _events(client: AsyncOpenAI) -> tuple[str | None, list[Any]]:
    async with client.responses.with_streaming_response.create(
        model="gpt-test", input="hello", stream=True
    ) as response:
        stream: AsyncIterator[Any] = await response.parse()
        return response.request_id, [event async for event in stream]


def _stable(value: Any) -> Any:
    """`value` without what the mock stamps afresh on every request (ids, times)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in {"id", "item_id", "created_at"}}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


async def test_same_events_as_the_stock_client(mock: MockLLM) -> None:
    mock.default = Reply(text="one two three four")
    stock = AsyncOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)

    _, expected = await _events(stock)
    _, got = await _events(lean)

    assert [type(e) for e in got] == [type(e) for e in expected]
    assert [_stable(e.model_dump()) for e in got] == [_stable(e.model_dump()) for e in expected]
    deltas = [e.delta for e in got if isinstance(e, ResponseTextDeltaEvent)]
    assert "".join(deltas) == "one two three four"


async def test_unstreamed_calls_are_the_stock_client(mock: MockLLM) -> None:
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)
    async with lean.responses.with_streaming_response.create(
        model="gpt-test", input="hello"
    ) as response:
        parsed = await response.parse()
    assert parsed.output_text == "Hello from the mock model."


async def test_a_dropped_connection_is_a_connection_error(mock: MockLLM) -> None:
    mock.default = Reply(text="one two three four five", drop_after=2)
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)
    with pytest.raises(APIConnectionError):
        await _events(lean)


async def test_a_stalled_stream_is_a_timeout(mock: MockLLM) -> None:
    mock.default = Reply(text="one two three", token_delay=2.0)
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0, timeout=0.5)
    with pytest.raises(APITimeoutError):
        await _events(lean)


def _stream_of(*payloads: dict[str, Any] | str) -> StreamedEvents[Any]:
    body = "".join(
        f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads
    ).encode()
    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")
    return StreamedEvents(httpx2.Response(200, content=body, request=request), parse_event)


async def test_an_error_payload_raises_the_clients_api_error() -> None:
    stream = _stream_of({"error": {"message": "quota exceeded", "type": "insufficient_quota"}})
    with pytest.raises(APIError, match="quota exceeded") as raised:
        _ = [event async for event in stream]
    assert raised.value.body == {"message": "quota exceeded", "type": "insufficient_quota"}


async def test_done_ends_the_stream_and_unknown_types_are_passed_over() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "hi",
        "sequence_number": 1,
        "logprobs": [],
    }
    stream = _stream_of({"type": "response.brand_new_event"}, delta, "[DONE]", delta)
    events = [event async for event in stream]
    assert [e.type for e in events] == ["response.output_text.delta"]


def test_a_known_event_with_missing_fields_is_built_loosely() -> None:
    event = parse_event('{"type": "response.output_text.delta", "delta": "hi"}')
    assert isinstance(event, ResponseTextDeltaEvent)
    assert event.delta == "hi"


async def _chunks(client: AsyncOpenAI) -> list[Any]:
    stream: AsyncIterator[Any] = await client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    return [chunk async for chunk in stream]


async def test_same_chunks_as_the_stock_client(mock: MockLLM) -> None:
    mock.default = Reply(text="one two three four")
    stock = AsyncOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)

    expected, got = await _chunks(stock), await _chunks(lean)

    assert [_stable(c.model_dump()) for c in got] == [_stable(c.model_dump()) for c in expected]
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    assert text == "one two three four"


async def test_a_dropped_chat_stream_is_a_connection_error(mock: MockLLM) -> None:
    mock.default = Reply(text="one two three four five", drop_after=2)
    lean = StreamParsingOpenAI(api_key="sk-test", base_url=mock.url, max_retries=0)
    with pytest.raises(APIConnectionError):
        await _chunks(lean)


def test_a_chunk_a_provider_bent_is_built_loosely() -> None:
    chunk = parse_chunk('{"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}]}')
    assert chunk is not None
    assert chunk.id == "c1"


async def test_requests_carry_the_same_body_as_the_stock_clients(mock: MockLLM) -> None:
    """`input` and `tools` skip the client's transform; what goes on the wire is the same."""
    history: list[Any] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi, I am Ada."}]},
        ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text="Hello Ada.", annotations=[])],
        ),
        {"type": "function_call", "call_id": "c1", "name": "find", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "nothing found"},
        {"role": "user", "content": "What is my name?"},
    ]
    tools: list[Any] = [
        {
            "type": "function",
            "name": "find",
            "description": "Finds things.",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            "strict": False,
        }
    ]
    bodies = []
    for client_class in (AsyncOpenAI, StreamParsingOpenAI):
        client = client_class(api_key="sk-test", base_url=mock.url, max_retries=0)
        await client.responses.create(
            model="gpt-test", input=history, tools=tools, instructions="Be brief.", stream=False
        )
        bodies.append(mock.requests[-1].body)
    assert bodies[1] == bodies[0]
    assert bodies[1]["input"][1]["content"][0]["text"] == "Hello Ada."
