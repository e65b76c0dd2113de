"""A real server whose PostgreSQL goes away: mid-stream (the proxy in front of it drops every
connection and refuses new ones, as in a restart), its sessions killed with
`pg_terminate_backend`, and absent at start-up. The error is clean, nothing half-written shows,
and the service recovers by itself."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from service.chatkit.store.base import StoreUnavailableError
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.conversation import (
    WORDS,
    items,
    readiness,
    text_of,
    wait_until_streaming,
)
from tests.support.mock_llm import MockLLM, Reply
from tests.support.postgres import scratch_schema_sync, terminate, with_port
from tests.support.proxy import TcpProxy, proxy_to_test_database
from tests.support.server import ServerProcess
from tests.support.waiting import status_of


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_schema_sync("outage") as url:
        yield url


@pytest.fixture(scope="module")
def proxy() -> Iterator[TcpProxy]:
    with proxy_to_test_database() as running:
        yield running


@pytest.fixture(autouse=True)
def _database_up(proxy: TcpProxy) -> Iterator[None]:
    proxy.restore()
    yield
    proxy.restore()


def server_env(database_url: str, proxy: TcpProxy, mock_llm: MockLLM) -> dict[str, str]:
    return {
        **provider_env("openai", mock_llm),
        "DATABASE_URL": with_port(database_url, proxy.port),
        "DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
        "DATABASE_STARTUP_RETRY_MAX_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def server(
    database_url: str, proxy: TcpProxy, server_factory: ServerFactory, mock_llm: MockLLM
) -> ServerProcess:
    return server_factory(server_env(database_url, proxy, mock_llm))


async def test_database_lost_mid_stream_ends_the_turn_cleanly_and_the_service_recovers(
    server: ServerProcess, proxy: TcpProxy, mock_llm: MockLLM, user: str
) -> None:
    async with ChatKitClient(server.url, user=user) as client:
        mock_llm.enqueue(Reply(text="Hello there."))
        thread_id = (await client.create_thread("hello")).thread_id
        streams_before = len(mock_llm.streams)
        mock_llm.enqueue(Reply(text=WORDS, token_delay=0.05))
        turn = asyncio.create_task(client.add_message(thread_id, "tell me a long story"))
        await wait_until_streaming(mock_llm, streams_before)

        proxy.cut()
        failed = await turn

        assert failed.status == 200
        assert failed.errors == [
            {
                "type": "error",
                "code": "custom",
                "message": StoreUnavailableError.USER_MESSAGE,
                "allow_retry": True,
            }
        ]
        assert failed.done_items("assistant_message") == []
        # While the database is away: plain requests answer 503 with a reason, not 500.
        response = await client.call("items.list", thread_id=thread_id)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_unavailable"
        refused = await client.create_thread("anyone there?")
        assert refused.status == 503  # before the stream starts: a plain answer, nothing saved
        assert json.loads(refused.body)["error"]["code"] == "store_unavailable"
        status, body = await readiness(server.url)
        assert status == 503
        assert "store" in body["causes"]
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.get("/healthz")).status_code == 200

        proxy.restore()
        await status_of(server.url, "/readyz", 200)
        mock_llm.enqueue(Reply(text="Back again."))
        after = await client.add_message(thread_id, "are you back?")
        assert after.errors == []
        assert after.assistant_text() == "Back again."
        stored = await items(client, thread_id)
        # The failed turn left the question it had saved, and no partial answer.
        assert [(i["type"], text_of(i)) for i in stored] == [
            ("user_message", "hello"),
            ("assistant_message", "Hello there."),
            ("user_message", "tell me a long story"),
            ("user_message", "are you back?"),
            ("assistant_message", "Back again."),
        ]


async def test_sessions_killed_mid_conversation_do_not_break_it(
    server: ServerProcess, database_url: str, mock_llm: MockLLM, user: str
) -> None:
    async with ChatKitClient(server.url, user=user) as client:
        mock_llm.enqueue(Reply(text="Hello there."))
        thread_id = (await client.create_thread("hello")).thread_id
        streams_before = len(mock_llm.streams)
        mock_llm.enqueue(Reply(text=WORDS, token_delay=0.05))
        turn = asyncio.create_task(client.add_message(thread_id, "a long one"))
        await wait_until_streaming(mock_llm, streams_before)

        killed = await terminate(database_url)  # the pool's sessions and the turn lock's
        result = await turn

        assert killed >= 2
        assert result.errors == []  # the store replaced the dead connections on its own
        assert result.assistant_text() == WORDS
        mock_llm.enqueue(Reply(text="Still here."))
        after = await client.add_message(thread_id, "still there?")
        assert after.errors == []
        assert after.assistant_text() == "Still here."
        stored = await items(client, thread_id)
        assert [i["type"] for i in stored] == ["user_message", "assistant_message"] * 3


async def test_start_up_without_the_database_serves_not_ready_then_recovers(
    database_url: str, proxy: TcpProxy, server_factory: ServerFactory, mock_llm: MockLLM, user: str
) -> None:
    proxy.cut()
    late = server_factory(server_env(database_url, proxy, mock_llm), start=False)
    failures: list[BaseException] = []

    def start() -> None:
        try:
            late.start(timeout=60)
        except BaseException as exc:
            failures.append(exc)

    starting = threading.Thread(target=start)
    starting.start()
    try:
        await status_of(late.url, "/healthz", 200)
        status, body = await readiness(late.url)
        assert status == 503
        assert "not connected to the database" in body["causes"]["store"]
        async with ChatKitClient(late.url, user=user) as client:
            response = await client.call("threads.list")
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "store_unavailable"
        await asyncio.sleep(2)  # a few retries later: still up, still not ready
        assert late.proc is not None
        assert late.proc.poll() is None
        assert (await readiness(late.url))[0] == 503
        assert "database unreachable at start-up" in late.log
    finally:
        proxy.restore()
        await asyncio.to_thread(starting.join, 60)
    assert failures == []
    async with ChatKitClient(late.url, user=user) as client:
        mock_llm.enqueue(Reply(text="Up now."))
        stream = await client.create_thread("are you up?")
        assert stream.errors == []
        assert stream.assistant_text() == "Up now."
