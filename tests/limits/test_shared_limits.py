"""Limits shared by replicas through Redis (REDIS_URL), and what happens when Redis goes away.

Every test counts under a key prefix of its own (REDIS_KEY_PREFIX) and deletes its keys after.
Redis "going away" is a loopback proxy in front of the shared Redis that the test cuts; the
shared server itself is never stopped. Without a Redis the tests skip, saying why (fail under
CI=true).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerFactory, provider_env
from tests.limits.helpers import (
    TEST_REDIS_URL,
    WORDS,
    assert_limited,
    eventually,
    open_stream,
    redis_keys_removed,
    redis_target,
    unique_prefix,
)
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.proxy import TcpProxy
from tests.support.scrape import scrape, series
from tests.support.server import ServerProcess, free_port

OUTAGE_LINE = re.compile(r"rate-limit store at \S+ is unreachable")


@pytest.fixture
def prefix() -> Iterator[str]:
    redis_target()
    name = unique_prefix()
    with redis_keys_removed(name):
        yield name


def limited_env(mock_llm: MockLLM, redis_url: str, prefix: str, **settings: str) -> dict[str, str]:
    return {
        **provider_env("openai", mock_llm),
        "TITLE_GENERATION": "false",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
        **settings,
    }


async def logged(server: ServerProcess, line: re.Pattern[str]) -> bool:
    return line.search(server.log) is not None


def assert_no_server_error(server: ServerProcess) -> None:
    answered = series(scrape(server.url), "chatkit_http_requests_total")
    assert answered and all(int(dict(key)["status"]) < 500 for key in answered), answered
    assert "Traceback" not in server.log


def failures_counted(server: ServerProcess) -> float:
    return scrape(server.url).get(("chatkit_limit_store_failures_total", ()), 0.0)


async def test_two_replicas_share_one_request_budget_and_one_stream_budget(
    server_factory: ServerFactory, mock_llm: MockLLM, prefix: str, user: str
) -> None:
    env = limited_env(
        mock_llm,
        TEST_REDIS_URL,
        prefix,
        RATE_LIMIT_PER_MINUTE="8",
        MAX_CONCURRENT_STREAMS_PER_USER="1",
    )
    a, b = server_factory(env), server_factory(env)
    mock_llm.default = Reply(text=WORDS, token_delay=0.05)
    async with ChatKitClient(a.url, user=user) as on_a, ChatKitClient(b.url, user=user) as on_b:
        # one stream open on A: B refuses a second one for the same user
        async with open_stream(on_a) as first:
            second = await on_b.call("threads.create", input=user_input("me too"))
            assert_limited(second, "at most 1 open")
            await first.finish()
        # 2 requests so far; 6 more across both replicas, then both refuse
        for client in (on_a, on_b, on_a, on_b, on_a, on_b):
            assert (await client.call("threads.list")).status_code == 200
        assert_limited(await on_a.call("threads.list"), "at most 8 a minute")
        assert_limited(await on_b.call("threads.list"), "at most 8 a minute")
    for server in (a, b):
        assert failures_counted(server) == 0
        assert not OUTAGE_LINE.search(server.log)


async def test_two_replicas_share_one_token_budget(
    server_factory: ServerFactory, mock_llm: MockLLM, prefix: str, user: str
) -> None:
    env = limited_env(mock_llm, TEST_REDIS_URL, prefix, TENANT_DAILY_TOKEN_BUDGET="20")
    a, b = server_factory(env), server_factory(env)
    mock_llm.default = Reply(text="one two three four five", input_tokens=11)  # 16 a call
    async with ChatKitClient(a.url, user=user) as on_a, ChatKitClient(b.url, user=user) as on_b:
        assert (await on_a.create_thread("first")).errors == []
        assert (await on_b.create_thread("second")).errors == []  # 32 of 20 now
        for client in (on_a, on_b):
            over = await client.call("threads.create", input=user_input("x"))
            assert_limited(over, "token budget for today")


async def test_redis_going_away_mid_test_keeps_the_service_serving(
    server_factory: ServerFactory, mock_llm: MockLLM, prefix: str, user: str
) -> None:
    host, port = redis_target()
    proxy = TcpProxy(host, port).start()
    try:
        server = server_factory(
            limited_env(
                mock_llm,
                f"redis://127.0.0.1:{proxy.port}/0",
                prefix,
                RATE_LIMIT_PER_MINUTE="3",
            )
        )
        async with ChatKitClient(server.url, user=user) as client:
            for _ in range(3):
                assert (await client.call("threads.list")).status_code == 200
            assert_limited(await client.call("threads.list"), "at most 3 a minute")

            proxy.cut()  # Redis is gone: limits are not enforced, nothing fails
            for _ in range(5):
                assert (await client.call("threads.list")).status_code == 200
            answer = await client.create_thread("still there?")
            assert answer.status == 200 and answer.errors == []
            assert (await client.call("threads.list")).status_code == 200

            await eventually(lambda: logged(server, OUTAGE_LINE))
            assert len(OUTAGE_LINE.findall(server.log)) == 1  # once per outage
            assert failures_counted(server) >= 5

            proxy.restore()  # back: the minute's count is enforced again

            async def limited_again() -> bool:
                return (await client.call("threads.list")).status_code == 429

            await eventually(limited_again, timeout=20)
        await eventually(lambda: logged(server, re.compile("is reachable again")))
        assert_no_server_error(server)
    finally:
        proxy.stop()


async def test_an_unreachable_redis_never_shows_its_password(
    server_factory: ServerFactory, mock_llm: MockLLM, prefix: str, user: str
) -> None:
    password = "Sup3rSecretRedisPassword"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"  # nothing listens there
    server = server_factory(limited_env(mock_llm, url, prefix, RATE_LIMIT_PER_MINUTE="3"))
    async with ChatKitClient(server.url, user=user) as client:
        for _ in range(5):
            response = await client.call("threads.list")
            assert response.status_code == 200
            assert password not in response.text
        assert (await client.create_thread("hello")).errors == []
    await eventually(lambda: logged(server, OUTAGE_LINE))
    assert_no_server_error(server)
    assert password not in server.log
    async with httpx.AsyncClient() as http:
        assert password not in (await http.get(f"{server.url}/metrics")).text


async def test_a_stream_ended_by_a_shutdown_drain_gives_its_slot_back(
    server_factory: ServerFactory, mock_llm: MockLLM, prefix: str, user: str
) -> None:
    env = limited_env(
        mock_llm,
        TEST_REDIS_URL,
        prefix,
        MAX_CONCURRENT_STREAMS_PER_USER="1",
        SHUTDOWN_DRAIN_SECONDS="0.5",
    )
    leaving, staying = server_factory(env), server_factory(env)
    mock_llm.default = Reply(text=WORDS, token_delay=0.5)  # ~20 s: longer than the drain
    async with (
        ChatKitClient(leaving.url, user=user) as on_leaving,
        ChatKitClient(staying.url, user=user) as on_staying,
    ):
        async with open_stream(on_leaving) as open_answer:
            refused = await on_staying.call("threads.create", input=user_input("me too"))
            assert_limited(refused, "at most 1 open")
            leaving.signal(signal.SIGTERM)  # the drain runs out and ends the stream
            await open_answer.finish()
        assert leaving.wait(30) == 0
        mock_llm.default = Reply()

        async def stream_accepted() -> bool:
            return (await on_staying.create_thread("my turn now")).status == 200

        await eventually(stream_accepted)
