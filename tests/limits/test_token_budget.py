"""A tenant's daily model-token budget (TENANT_DAILY_TOKEN_BUDGET), charged from each model
call's reported usage, as the tenant's users meet it."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.limits.helpers import assert_limited
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.scrape import scrape, series
from tests.support.server import ServerProcess

BUDGET = 30
REPLY = Reply(text="one two three four five", input_tokens=11)  # 11 + 5 = 16 tokens a call


@pytest.fixture(scope="module")
def budget_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "TENANT_DAILY_TOKEN_BUDGET": str(BUDGET),
            "TITLE_GENERATION": "false",
        }
    )


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:8]}"


async def test_a_tenant_over_its_budget_gets_429_until_the_day_is_over(
    budget_server: ServerProcess, mock_llm: MockLLM, tenant: str
) -> None:
    mock_llm.default = REPLY
    async with (
        ChatKitClient(budget_server.url, user="ann", tenant=tenant) as ann,
        ChatKitClient(budget_server.url, user="ben", tenant=tenant) as ben,
        ChatKitClient(budget_server.url, user="ann", tenant=f"{tenant}-other") as elsewhere,
    ):
        first = await ann.create_thread("hello")
        assert first.status == 200 and first.errors == []
        second = await ben.create_thread("hi")
        assert second.status == 200 and second.errors == []  # 32 of 30 tokens used now

        for user in (ann, ben):  # the budget is the tenant's, whoever asks
            over = await user.call("threads.create", input=user_input("and again"))
            assert_limited(over, "token budget for today")
            assert int(over.headers["Retry-After"]) > 23 * 3600
        # reading history costs no tokens
        assert (await ann.call("threads.list")).status_code == 200
        # another tenant has a budget of its own
        assert (await elsewhere.create_thread("hello")).errors == []

    rejected = series(scrape(budget_server.url), "chatkit_limit_rejections_total")
    assert rejected[(("limit", "token_budget"),)] >= 2


async def test_a_turn_that_runs_out_of_budget_ends_with_an_error_saying_so(
    budget_server: ServerProcess, mock_llm: MockLLM, tenant: str
) -> None:
    # The first model call asks for a tool and uses the whole budget; the call that would
    # answer after the tool is not made.
    mock_llm.enqueue(Reply(tool_call=("current_datetime", {}), input_tokens=BUDGET + 10), REPLY)
    async with ChatKitClient(budget_server.url, user="ann", tenant=tenant) as ann:
        turn = await ann.create_thread("what time is it?")
    assert turn.status == 200
    assert len(turn.errors) == 1
    message = turn.errors[0]["message"]
    assert "token budget for today" in message and "\n" not in message
    assert len(mock_llm.conversation_requests()) == 1
    assert "Traceback" not in budget_server.log


@pytest.fixture(scope="module")
def titled_server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "TENANT_DAILY_TOKEN_BUDGET": "20",
            "TITLE_GENERATION": "true",
        }
    )


async def test_the_title_call_is_charged_to_the_budget_too(
    titled_server: ServerProcess, mock_llm: MockLLM, tenant: str
) -> None:
    mock_llm.default = REPLY
    async with ChatKitClient(titled_server.url, user="ann", tenant=tenant) as ann:
        first = await ann.create_thread("hello")
        assert first.errors == []
        assert [r.is_title for r in mock_llm.requests].count(
            True
        ) == 1  # 16 tokens, like the answer
        # 16 tokens for the answer alone would leave room; with the title's 16 there is none.
        over = await ann.call("threads.create", input=user_input("and again"))
    assert_limited(over, "token budget for today")
