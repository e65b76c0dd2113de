"""SIGTERM: readiness off at once, new streams refused, open streams finish (or are ended with a
retry notice when the drain budget runs out), exit code 0."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from chatkit.types import AssistantMessageItem

from service.chatkit.store import create_store
from service.request_context import RequestContext
from service.settings import Settings
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.waiting import status_of

WORDS = " ".join(f"word{n}" for n in range(16))


class OpenStream:
    """A threads.create stream read line by line in the background."""

    def __init__(self, client: ChatKitClient) -> None:
        self.events: list[dict[str, Any]] = []
        self.first_delta = asyncio.Event()
        self._client = client
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> int:
        body = json.dumps({"type": "threads.create", "params": {"input": user_input("go on")}})
        async with self._client.http.stream("POST", "/chatkit/api", content=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    self.events.append(json.loads(line[len("data: ") :]))
                    if self.events[-1].get("update", {}).get("type", "").endswith("text_delta"):
                        self.first_delta.set()
            return response.status_code

    def text(self) -> str:
        return "".join(
            event["update"]["delta"]
            for event in self.events
            if event.get("update", {}).get("type", "").endswith("text_delta")
        )

    def errors(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == "error"]


async def test_sigterm_lets_the_open_stream_finish_and_refuses_new_ones(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str
) -> None:
    server = server_factory(
        {
            **provider_env("openai", mock_llm),
            "SHUTDOWN_DRAIN_SECONDS": "60",
            "TITLE_GENERATION": "false",
        }
    )
    mock_llm.enqueue(Reply(text=WORDS, token_delay=0.25))
    async with (
        ChatKitClient(server.url, user=user) as streaming,
        ChatKitClient(server.url, user=user) as other,
    ):
        stream = OpenStream(streaming)
        await asyncio.wait_for(stream.first_delta.wait(), 30)
        server.signal(signal.SIGTERM)

        not_ready = await status_of(server.url, "/readyz", 503, within=10)
        assert not_ready.json() == {
            "status": "not ready",
            "causes": {"draining": "the server is shutting down"},
        }
        refused = await other.call("threads.create", input=user_input("hello?"))
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "draining"
        assert (await other.list_threads())["data"] is not None  # JSON requests still answered

        assert await asyncio.wait_for(stream.task, 60) == 200
    assert stream.errors() == []
    assert stream.text() == WORDS  # the whole answer, not cut
    assert server.wait(timeout=30) == 0
    logged = [json.loads(line) for line in server.output]
    assert any(line["message"] == "threads.create completed" for line in logged)
    assert any(line["message"] == "threads.create rejected (draining)" for line in logged)


async def test_a_stream_longer_than_the_budget_ends_with_a_retry_notice(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str
) -> None:
    env = {
        **provider_env("openai", mock_llm),
        "SHUTDOWN_DRAIN_SECONDS": "1",
        "TITLE_GENERATION": "false",
    }
    server = server_factory(env)
    env["DATABASE_URL"] = server.env["DATABASE_URL"]
    mock_llm.enqueue(Reply(text=" ".join(f"w{n}" for n in range(400)), token_delay=0.1))
    async with ChatKitClient(server.url, user=user) as client:
        stream = OpenStream(client)
        await asyncio.wait_for(stream.first_delta.wait(), 30)
        server.signal(signal.SIGTERM)
        assert await asyncio.wait_for(stream.task, 30) == 200
    [notice] = stream.errors()
    assert notice["allow_retry"] is True
    assert "Send your message again" in notice["message"]
    assert stream.events[-1] == notice
    assert server.wait(timeout=30) == 0
    provider = mock_llm.streams[0]
    provider.done.wait(10)
    assert provider.client_closed
    assert not provider.completed

    # The partial answer was saved: the next pod (or a retry) finds it in the thread.
    store = create_store(Settings(_env_file=None, database_url=env["DATABASE_URL"]))  # type: ignore[call-arg]
    await store.open(migrate=False)
    try:
        thread_id = stream.events[0]["thread"]["id"]
        context = RequestContext(user_id=user, tenant_id="default")
        items = (await store.load_thread_items(thread_id, None, 20, "asc", context)).data
    finally:
        await store.close()
    assert [item.type for item in items if item.type != "sdk_hidden_context"] == [
        "user_message",
        "assistant_message",
    ]
    [answer] = [item for item in items if isinstance(item, AssistantMessageItem)]
    saved = answer.content[0].text
    assert saved.startswith("w0 w1")
    assert stream.text().startswith(saved)
