"""The stop button: the client drops the stream; the model run stops and the partial answer stays."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply

WORDS = " ".join(f"word{n}" for n in range(60))


async def wait_for_provider_stream_end(mock: MockLLM, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (mock.streams and mock.streams[0].done.is_set()):
        assert asyncio.get_running_loop().time() < deadline, "provider stream never ended"
        await asyncio.sleep(0.05)


async def stored_assistant_text(client: ChatKitClient, thread_id: str) -> str:
    items = (await client.list_items(thread_id, order="asc"))["data"]
    return "".join(
        p["text"] for i in items if i["type"] == "assistant_message" for p in i["content"]
    )


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_stop_cancels_the_model_run_and_keeps_the_partial_answer(
    request: pytest.FixtureRequest, provider: str, mock_llm: MockLLM, user: str
) -> None:
    server = request.getfixturevalue(f"{provider}_server")
    mock_llm.enqueue(Reply(text=WORDS, token_delay=0.1))
    received = ""
    thread_id = None
    async with ChatKitClient(server.url, user=user) as client:
        body = json.dumps({"type": "threads.create", "params": {"input": user_input("talk a lot")}})
        async with client.http.stream("POST", "/chatkit/api", content=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if event["type"] == "thread.created":
                    thread_id = event["thread"]["id"]
                update = event.get("update", {})
                if update.get("type") == "assistant_message.content_part.text_delta":
                    received += update["delta"]
                if received.count("word") >= 5:
                    break  # the user presses stop: the connection closes

        await wait_for_provider_stream_end(mock_llm)
        log = mock_llm.streams[0]
        assert log.client_closed and not log.completed
        assert log.chunks_sent < log.chunks_planned  # no further tokens were consumed

        assert thread_id is not None
        await asyncio.sleep(0.3)
        saved = await stored_assistant_text(client, thread_id)
        assert saved.startswith(received) and WORDS.startswith(saved)
        assert len(saved) < len(WORDS)

        mock_llm.enqueue(Reply(text="Stopped as asked."))
        follow_up = await client.add_message(thread_id, "ok, stop")
        assert follow_up.errors == [] and follow_up.assistant_text() == "Stopped as asked."
        sent = json.dumps(mock_llm.conversation_requests()[-1].body)
        assert "The user cancelled the stream" in sent  # the SDK's hidden note reaches the model
        visible = [i["type"] for i in (await client.list_items(thread_id, order="asc"))["data"]]
        assert visible == ["user_message", "assistant_message", "user_message", "assistant_message"]
    errors = [line for line in server.output if '"level": "ERROR"' in line or "Traceback" in line]
    assert errors == []  # a stop is not an error


async def test_stop_while_the_socket_write_is_blocked_still_saves(
    openai_server, mock_llm: MockLLM, user: str
) -> None:
    """The client stops reading (the server's writes block), then goes away."""
    # ~12 MB of deltas: far beyond what the kernel buffers on both ends can absorb unread.
    long_text = " ".join(f"token{n}-{'x' * 4000}" for n in range(3000))
    mock_llm.enqueue(Reply(text=long_text, token_delay=0.001))
    async with ChatKitClient(openai_server.url, user=user) as client:
        body = json.dumps({"type": "threads.create", "params": {"input": user_input("flood me")}})
        async with client.http.stream("POST", "/chatkit/api", content=body) as response:
            raw = response.aiter_raw()  # keep a reference: a collected iterator closes the stream
            first = await raw.__anext__()
            thread_id = json.loads(first.split(b"\n\n")[0][6:])["thread"]["id"]
            await asyncio.sleep(3)  # not reading: socket buffers fill, the server's send blocks

        await wait_for_provider_stream_end(mock_llm, timeout=30)
        assert mock_llm.streams[0].client_closed
        await asyncio.sleep(0.3)
        saved = await stored_assistant_text(client, thread_id)
        assert saved and long_text.startswith(saved) and len(saved) < len(long_text)
