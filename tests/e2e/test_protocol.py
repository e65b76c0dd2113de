"""Every ChatKit request type against the real server, and how bad requests are answered."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import provider_env
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess


async def new_thread(client: ChatKitClient, text: str = "hello") -> str:
    stream = await client.create_thread(text)
    assert stream.errors == []
    return stream.thread_id


def error_of(response) -> dict:
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert "\n" not in body["error"]["message"]
    return body["error"]


async def test_stream_headers_and_event_order(client: ChatKitClient) -> None:
    stream = await client.create_thread("hello")
    assert stream.status == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.headers["cache-control"].startswith("no-cache")
    assert stream.headers["x-accel-buffering"] == "no"
    types = [e["type"] for e in stream.events]
    assert types[:3] == ["thread.created", "thread.item.done", "stream_options"]
    assert types[-2:] == ["thread.item.done", "thread.updated"]
    assert stream.body.endswith(b"\n\n")


async def test_get_list_update_delete_thread(client: ChatKitClient) -> None:
    thread_id = await new_thread(client)
    thread = await client.get_thread(thread_id)
    assert thread["id"] == thread_id
    assert [i["type"] for i in thread["items"]["data"]] == ["user_message", "assistant_message"]

    renamed = await client.call("threads.update", thread_id=thread_id, title="Renamed")
    assert renamed.status_code == 200 and renamed.json()["title"] == "Renamed"
    assert (await client.get_thread(thread_id))["title"] == "Renamed"

    listed = await client.list_threads(limit=10)
    assert [t["id"] for t in listed["data"]] == [thread_id]

    deleted = await client.call("threads.delete", thread_id=thread_id)
    assert deleted.status_code == 200 and deleted.json() == {}
    assert (await client.call("threads.get_by_id", thread_id=thread_id)).status_code == 404
    assert (await client.list_threads())["data"] == []


async def test_thread_list_pages_newest_first(client: ChatKitClient) -> None:
    ids = [await new_thread(client, f"thread {n}") for n in range(5)]
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = await client.list_threads(**params)
        seen += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            break
        after = page["after"]
    assert seen == list(reversed(ids))


async def test_items_list_pages_in_both_orders(client: ChatKitClient) -> None:
    thread_id = await new_thread(client, "one")
    for text in ("two", "three"):
        await client.add_message(thread_id, text)
    everything = (await client.list_items(thread_id, order="asc", limit=100))["data"]
    assert len(everything) == 6
    for order in ("asc", "desc"):
        seen, after = [], None
        while True:
            page = await client.list_items(thread_id, order=order, limit=4, after=after)
            seen += [i["id"] for i in page["data"]]
            if not page["has_more"]:
                break
            after = page["after"]
        expected = [i["id"] for i in everything]
        assert seen == (expected if order == "asc" else list(reversed(expected)))


async def test_feedback_is_stored_and_queryable(
    client: ChatKitClient, openai_server: ServerProcess
) -> None:
    stream = await client.create_thread("rate me")
    answer_id = stream.done_items("assistant_message")[0]["id"]
    response = await client.call(
        "items.feedback", thread_id=stream.thread_id, item_ids=[answer_id], kind="negative"
    )
    assert response.status_code == 200 and response.json() == {}
    exported = subprocess.run(
        [sys.executable, "-m", "service", "feedback", "--thread", stream.thread_id],
        env=openai_server.env,
        cwd=openai_server.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(r["item_id"], r["kind"]) for r in records] == [(answer_id, "negative")]

    missing = await client.call(
        "items.feedback", thread_id=stream.thread_id, item_ids=["msg_nope"], kind="positive"
    )
    assert missing.status_code == 404


async def test_retry_after_item_regenerates_the_answer(
    client: ChatKitClient, mock_llm: MockLLM
) -> None:
    mock_llm.enqueue(Reply(text="First try."), Reply(text="Second try."))
    stream = await client.create_thread("question")
    user_item = stream.done_items("user_message")[0]["id"]
    first_answer = stream.done_items("assistant_message")[0]["id"]

    retried = await client.stream(
        "threads.retry_after_item", thread_id=stream.thread_id, item_id=user_item
    )
    assert retried.status == 200 and retried.errors == []
    assert retried.assistant_text() == "Second try."
    items = (await client.list_items(stream.thread_id, order="asc"))["data"]
    assert items[0]["id"] == user_item
    assert first_answer not in [i["id"] for i in items]
    assert [i["type"] for i in items] == ["user_message", "assistant_message"]

    on_answer = await client.call(
        "threads.retry_after_item", thread_id=stream.thread_id, item_id=items[1]["id"]
    )
    assert on_answer.status_code == 400
    assert "not a user message" in error_of(on_answer)["message"]
    unknown = await client.call(
        "threads.retry_after_item", thread_id=stream.thread_id, item_id="msg_x"
    )
    assert unknown.status_code == 404


async def test_requests_that_need_state_the_thread_lacks_are_400(client: ChatKitClient) -> None:
    thread_id = await new_thread(client)
    items = (await client.list_items(thread_id, order="asc"))["data"]
    tool_output = await client.call(
        "threads.add_client_tool_output", thread_id=thread_id, result={}
    )
    assert tool_output.status_code == 400
    assert "client tool call" in error_of(tool_output)["message"]
    structured = await client.call(
        "threads.add_structured_input",
        thread_id=thread_id,
        item_id=items[0]["id"],
        input={"status": "answered", "answers": {}},
    )
    assert structured.status_code == 400
    sync_action = await client.call(
        "threads.sync_custom_action", thread_id=thread_id, action={"type": "noop", "payload": {}}
    )
    assert sync_action.status_code == 400
    assert "no handler" in error_of(sync_action)["message"]
    on_non_widget = await client.call(
        "threads.custom_action",
        thread_id=thread_id,
        item_id=items[0]["id"],
        action={"type": "noop", "payload": {}},
    )
    assert on_non_widget.status_code == 400


async def test_custom_action_without_handler_ends_with_an_error_event(
    client: ChatKitClient,
) -> None:
    thread_id = await new_thread(client)
    stream = await client.stream(
        "threads.custom_action", thread_id=thread_id, action={"type": "noop", "payload": {}}
    )
    assert stream.status == 200
    assert [e["message"] for e in stream.errors] == [
        "This server has no handler for the action 'noop'."
    ]


@pytest.mark.parametrize(
    ("type_", "params", "fragment"),
    [
        # Uploads are on by default (tests/e2e/test_attachments.py covers ATTACHMENTS_URL="").
        ("input.transcribe", {"audio_base64": "AAAA", "mime_type": "audio/webm"}, "voice input"),
    ],
)
async def test_features_not_enabled_answer_clearly(
    client: ChatKitClient, type_, params, fragment
) -> None:
    response = await client.call(type_, **params)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "not_enabled"
    assert fragment in error["message"] and "not enabled on this server" in error["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"params": {}}', "no 'type'"),
        (b'{"type": "threads.explode", "params": {}}', "unknown request type 'threads.explode'"),
        (b'{"type": "threads.get_by_id", "params": {}}', "params.thread_id"),
        (b'{"type": "threads.list", "params": {"limit": "many"}}', "params.limit"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
async def test_malformed_requests_are_400_with_a_reason(
    client: ChatKitClient, body: bytes, fragment: str
) -> None:
    response = await client.post(body)
    assert response.status_code == 400
    assert fragment in error_of(response)["message"]


@pytest.mark.parametrize(
    ("type_", "params", "fragment"),
    [
        ("threads.list", {"limit": -1}, "limit must be between 1 and 100"),
        ("threads.list", {"limit": 100_000}, "limit must be between 1 and 100"),
        ("items.list", {"thread_id": "thr_x", "limit": 0}, "limit must be between 1 and 100"),
        ("threads.update", {"thread_id": "thr_x", "title": "t" * 201}, "at most 200 characters"),
    ],
)
async def test_out_of_range_values_are_400(client: ChatKitClient, type_, params, fragment) -> None:
    response = await client.call(type_, **params)
    assert response.status_code == 400
    assert fragment in error_of(response)["message"]


async def test_empty_message_is_rejected_before_anything_is_saved(client: ChatKitClient) -> None:
    response = await client.call("threads.create", input=user_input("   "))
    assert response.status_code == 400
    assert (await client.list_threads())["data"] == []


async def test_unknown_attachment_is_404_and_creates_no_thread(client: ChatKitClient) -> None:
    response = await client.call("threads.create", input=user_input("see file", ["atc_missing"]))
    assert response.status_code == 404
    assert (await client.list_threads())["data"] == []


@pytest.mark.parametrize(
    ("type_", "params"),
    [
        ("threads.get_by_id", {}),
        ("items.list", {}),
        ("threads.update", {"title": "mine now"}),
        ("threads.delete", {}),
        ("threads.add_user_message", {"input": user_input("hi")}),
        ("threads.retry_after_item", {"item_id": "msg_1"}),
        ("items.feedback", {"item_ids": ["msg_1"], "kind": "positive"}),
        ("threads.custom_action", {"action": {"type": "noop", "payload": {}}}),
    ],
)
async def test_foreign_thread_is_not_found(
    openai_server: ServerProcess, type_: str, params: dict, user: str
) -> None:
    async with ChatKitClient(openai_server.url, user=f"{user}-owner") as owner:
        thread_id = await new_thread(owner)
    async with ChatKitClient(openai_server.url, user=f"{user}-other") as other:
        response = await other.call(type_, thread_id=thread_id, **params)
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
    async with ChatKitClient(
        openai_server.url, user=f"{user}-owner", tenant="other-tenant"
    ) as twin:
        assert (await twin.call("threads.get_by_id", thread_id=thread_id)).status_code == 404
    async with ChatKitClient(openai_server.url, user=f"{user}-owner") as owner:
        assert (await owner.get_thread(thread_id))["title"] != "mine now"


async def test_unknown_thread_is_not_found(client: ChatKitClient) -> None:
    for type_ in ("threads.get_by_id", "items.list", "threads.delete"):
        response = await client.call(type_, thread_id="thr_does_not_exist")
        assert response.status_code == 404, type_


async def test_invalid_identity_header_is_401(openai_server: ServerProcess) -> None:
    async with ChatKitClient(openai_server.url, user="bad user\twith spaces") as client:
        response = await client.call("threads.list")
    assert response.status_code == 401


async def test_oversized_body_is_413(server_factory, mock_llm: MockLLM) -> None:
    server = server_factory({**provider_env("openai", mock_llm), "MAX_REQUEST_BYTES": "4096"})
    async with ChatKitClient(server.url) as client:
        response = await client.post(b'{"type": "threads.list", "pad": "' + b"x" * 10_000 + b'"}')
    assert response.status_code == 413
    error_of(response)


async def test_unknown_route_is_json_404(openai_server: ServerProcess) -> None:
    async with ChatKitClient(openai_server.url) as client:
        response = await client.http.get("/nope")
    assert response.status_code == 404
    error_of(response)


async def test_playground_page_embeds_chatkit(openai_server: ServerProcess) -> None:
    async with ChatKitClient(openai_server.url) as client:
        page = await client.http.get("/")
    assert page.status_code == 200
    assert "cdn.platform.openai.com/deployments/chatkit/chatkit.js" in page.text
    assert "/chatkit/api" in page.text
