"""Abuse limits counted in the server process (no REDIS_URL), as a client meets them."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.limits.helpers import WORDS, assert_limited, eventually, open_stream
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.scrape import scrape, series
from tests.support.server import ServerProcess

PER_MINUTE = 6


@pytest.fixture(scope="module")
def burst_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(
        {**provider_env("openai", mock_llm), "RATE_LIMIT_PER_MINUTE": str(PER_MINUTE)}
    )


@pytest.fixture(scope="module")
def stream_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "MAX_CONCURRENT_STREAMS_PER_USER": "1",
            "TITLE_GENERATION": "false",
        }
    )


async def test_a_burst_over_the_minute_limit_gets_429_with_retry_after(
    burst_server: ServerProcess, user: str
) -> None:
    async with ChatKitClient(burst_server.url, user=user) as client:
        for _ in range(PER_MINUTE):
            assert (await client.call("threads.list")).status_code == 200
        over = await client.call("threads.list")
    assert_limited(over, f"at most {PER_MINUTE} a minute")
    assert 1 <= int(over.headers["Retry-After"]) <= 60

    # Keys are per tenant and user: neighbours are not punished for it.
    for neighbour in (
        ChatKitClient(burst_server.url, user=f"{user}-next-door"),
        ChatKitClient(burst_server.url, user=user, tenant="another-tenant"),
    ):
        async with neighbour:
            assert (await neighbour.call("threads.list")).status_code == 200

    rejected = series(scrape(burst_server.url), "chatkit_limit_rejections_total")
    assert rejected[(("limit", "requests_per_minute"),)] >= 1
    assert "Traceback" not in burst_server.log


async def test_a_second_stream_over_the_limit_gets_429_until_the_first_ends(
    stream_server: ServerProcess, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.default = Reply(text=WORDS, token_delay=0.05)
    async with ChatKitClient(stream_server.url, user=user) as client:
        async with open_stream(client) as first:
            second = await client.call("threads.create", input=user_input("and me"))
            assert_limited(second, "at most 1 open")
            await first.finish()  # the first answer runs to its end

        async def stream_accepted() -> bool:
            return (await client.create_thread("my turn now")).status == 200

        await eventually(stream_accepted)

    assert (
        series(scrape(stream_server.url), "chatkit_limit_rejections_total")[
            (("limit", "concurrent_streams"),)
        ]
        >= 1
    )


async def test_the_stop_button_gives_the_stream_slot_back(
    stream_server: ServerProcess, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.default = Reply(text=WORDS, token_delay=0.2)
    async with ChatKitClient(stream_server.url, user=user) as client:
        async with open_stream(client):
            pass  # closed after its first event: the user pressed stop
        mock_llm.default = Reply()

        async def stream_accepted() -> bool:
            return (await client.create_thread("again")).status == 200

        await eventually(stream_accepted)


async def test_failed_streams_give_their_slot_back(
    stream_server: ServerProcess, mock_llm: MockLLM, user: str
) -> None:
    async with ChatKitClient(stream_server.url, user=user) as client:
        # refused before the stream began (an unknown thread), twice: no slot is kept
        for _ in range(2):
            missing = await client.add_message("thr_unknown", "hello?")
            assert missing.status == 404
        # the model fails mid-turn: the stream ends with an error event, then the slot is free
        mock_llm.enqueue(Reply(status=500))
        failed = await client.create_thread("this one fails")
        assert failed.status == 200 and failed.errors

        async def stream_accepted() -> bool:
            return (await client.create_thread("and this one works")).status == 200

        await eventually(stream_accepted)


async def test_json_requests_hold_no_stream_slot(
    stream_server: ServerProcess, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.default = Reply(text=WORDS, token_delay=0.05)
    async with (
        ChatKitClient(stream_server.url, user=user) as client,
        open_stream(client) as first,
    ):
        listed = await asyncio.gather(*(client.call("threads.list") for _ in range(3)))
        assert [r.status_code for r in listed] == [200, 200, 200]
        await first.finish()
