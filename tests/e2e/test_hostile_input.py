"""Crafted bodies and headers (issue 9): a one-line 4xx, never a 500, never an ERROR log line,
never counted as a server error, and nothing written that could break later requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory({**provider_env("openai", mock_llm), "TITLE_GENERATION": "false"})


@pytest.fixture
async def chat(server: ServerProcess, user: str) -> AsyncIterator[ChatKitClient]:
    async with ChatKitClient(server.url, user=user) as client:
        yield client


def assert_clean_log(server: ServerProcess) -> None:
    for line in server.output:
        record = json.loads(line)
        assert record["level"] not in ("ERROR", "CRITICAL"), line[:500]
        assert "exc_info" not in record, line[:500]


def error_count(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("chatkit_requests_total{") and 'outcome="error"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def one_line_400(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text[:300]
    message = str(response.json()["error"]["message"])
    assert "\n" not in message and 0 < len(message) <= 500
    return message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 1000 + b"]" * 1000, "not valid JSON"),
        (
            b'{"type":"threads.list","params":{},"metadata":{"a":'
            + b"[" * 5000
            + b"]" * 5000
            + b"}}",
            "not valid JSON",
        ),
        (b'{"type":"threads.list","params":{"limit":' + b"9" * 5000 + b"}}", "not valid JSON"),
        (b'{"type":"threads.get_by_id","params":{"thread_id":"\\ud800"}}', "surrogate"),
        (b'{"type":"items.list","params":{"thread_id":"thr_1","after":"\\udc00"}}', "surrogate"),
        (
            b'{"type":"threads.retry_after_item","params":{"thread_id":"t","item_id":"\\ud800"}}',
            "surrogate",
        ),
        (b'{"type":"threads.get_by_id","params":{"thread_id":"a\\u0000b"}}', "NUL"),
    ],
)
async def test_crafted_bodies_are_one_line_400s(
    server: ServerProcess, chat: ChatKitClient, body: bytes, fragment: str
) -> None:
    errors_before = error_count(server)
    assert fragment in one_line_400(await chat.post(body))
    assert error_count(server) == errors_before
    assert_clean_log(server)


async def test_a_lone_surrogate_in_message_text_is_refused_and_saves_nothing(
    server: ServerProcess, chat: ChatKitClient
) -> None:
    body = json.dumps({"type": "threads.create", "params": {"input": user_input("hi \ud83d")}})
    assert "surrogate" in one_line_400(await chat.post(body.encode()))
    assert (await chat.list_threads())["data"] == []
    created = await chat.create_thread("hello")
    body = json.dumps(
        {
            "type": "threads.add_user_message",
            "params": {"thread_id": created.thread_id, "input": user_input("x\udfffy")},
        }
    )
    assert "surrogate" in one_line_400(await chat.post(body.encode()))
    items = await chat.list_items(created.thread_id)
    assert sorted(item["type"] for item in items["data"]) == ["assistant_message", "user_message"]
    assert_clean_log(server)


async def test_a_title_cut_inside_an_emoji_is_refused_and_the_history_stays_readable(
    server: ServerProcess, chat: ChatKitClient
) -> None:
    created = await chat.create_thread("hello")
    body = json.dumps(
        {"type": "threads.update", "params": {"thread_id": created.thread_id, "title": "x\ud800y"}}
    )
    assert "surrogate" in one_line_400(await chat.post(body.encode()))
    listed = await chat.list_threads()
    assert [thread["id"] for thread in listed["data"]] == [created.thread_id]
    assert (await chat.get_thread(created.thread_id))["id"] == created.thread_id
    follow_up = await chat.add_message(created.thread_id, "still here?")
    assert follow_up.errors == []
    assert_clean_log(server)


async def test_a_huge_id_is_capped_in_the_answer_and_in_the_log(
    server: ServerProcess, chat: ChatKitClient
) -> None:
    huge = "x" * 1_000_000
    log_size_before = sum(len(line) for line in server.output)
    response = await chat.call("threads.get_by_id", thread_id=huge)
    assert response.status_code == 404
    assert len(response.text) < 1_000
    response = await chat.call("items.list", thread_id=huge)
    assert response.status_code == 404
    assert sum(len(line) for line in server.output) - log_size_before < 20_000
    assert_clean_log(server)


async def test_a_key_like_request_id_is_replaced_so_the_log_can_still_be_searched(
    server: ServerProcess, chat: ChatKitClient
) -> None:
    sent = "sk-requestid12345678"
    listing = {"type": "threads.list", "params": {}}
    response = await chat.post(listing, headers={"X-Request-ID": sent})
    returned = response.headers["x-request-id"]
    assert returned != sent and len(returned) == 32
    assert any(json.loads(line).get("request_id") == returned for line in server.output)
    kept = await chat.post(listing, headers={"X-Request-ID": "trace-abc.123"})
    assert kept.headers["x-request-id"] == "trace-abc.123"
