"""Real conversations through the real server, on both provider paths."""

from __future__ import annotations

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply

PROVIDERS = ["openai", "gemini", "openai-compatible"]


@pytest.fixture(scope="module", params=PROVIDERS)
def provider_server(
    request: pytest.FixtureRequest, server_factory: ServerFactory, mock_llm: MockLLM
):
    return request.param, server_factory(provider_env(request.param, mock_llm))


def conversation_texts(body: dict) -> list[tuple[str, str]]:
    """(role, text) pairs of what the model was sent, whichever API format."""
    pairs: list[tuple[str, str]] = []
    for message in body.get("input") or body.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant"):
            continue
        if isinstance(content, list):
            text = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        else:
            text = content or ""
        pairs.append((role, text))
    return pairs


async def test_three_turn_conversation_keeps_history_and_persists(
    provider_server, mock_llm: MockLLM, user: str
) -> None:
    _, server = provider_server
    mock_llm.enqueue(
        Reply(text="Nice to meet you, Ada."),
        Reply(text="You like Python."),
        Reply(text="Your name is Ada and you like Python."),
    )
    mock_llm.title = "Getting to know Ada"
    async with ChatKitClient(server.url, user=user) as client:
        first = await client.create_thread("Hi, my name is Ada.")
        assert first.status == 200
        assert first.headers["content-type"].startswith("text/event-stream")
        assert first.errors == []
        thread_id = first.thread_id
        assert first.assistant_text() == "Nice to meet you, Ada."
        titles = [e["thread"]["title"] for e in first.of_type("thread.updated")]
        assert titles[-1] == "Getting to know Ada"

        second = await client.add_message(thread_id, "I like Python.")
        third = await client.add_message(thread_id, "What do you know about me?")
        assert second.errors == [] and third.errors == [], (second.errors, third.errors)
        assert third.assistant_text() == "Your name is Ada and you like Python."

        # The model saw the whole thread on the third turn, not only the last message.
        last_request = mock_llm.conversation_requests()[-1].body
        assert conversation_texts(last_request) == [
            ("user", "Hi, my name is Ada."),
            ("assistant", "Nice to meet you, Ada."),
            ("user", "I like Python."),
            ("assistant", "You like Python."),
            ("user", "What do you know about me?"),
        ]

        thread = await client.get_thread(thread_id)
        items = thread["items"]["data"]
        assert [i["type"] for i in items] == ["user_message", "assistant_message"] * 3
        assistant_ids = [i["id"] for i in items if i["type"] == "assistant_message"]
        assert len(set(assistant_ids)) == 3, assistant_ids
        assert "__fake_id__" not in assistant_ids
        assert thread["title"] == "Getting to know Ada"


async def test_the_title_is_asked_for_once_the_answer_has_begun(
    provider_server, mock_llm: MockLLM, user: str
) -> None:
    """The title call never competes with the answer's own request for the first token."""
    _, server = provider_server
    mock_llm.default = Reply(text="An answer that takes its time.", first_token_delay=0.3)
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("Hello there")
    assert stream.errors == []
    assert stream.of_type("thread.updated")[-1]["thread"]["title"] == mock_llm.title
    answer = mock_llm.conversation_requests()[-1]
    title = [r for r in mock_llm.requests if r.is_title][-1]
    assert title.at > answer.at


async def test_streamed_item_ids_match_stored_ids(
    provider_server, mock_llm: MockLLM, user: str
) -> None:
    _, server = provider_server
    mock_llm.default = Reply(text="one two three")
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("count")
        added = stream.of_type("thread.item.added")[0]["item"]["id"]
        updated = {e["item_id"] for e in stream.of_type("thread.item.updated")}
        done = stream.done_items("assistant_message")[0]["id"]
        assert updated == {added} and done == added
        stored = await client.list_items(stream.thread_id, order="asc")
        assert stored["data"][-1]["id"] == done


async def test_conversation_survives_restart(
    server_factory: ServerFactory, mock_llm: MockLLM, user: str
) -> None:
    server = server_factory(provider_env("gemini", mock_llm))
    mock_llm.enqueue(
        Reply(text="First answer."), Reply(text="Second answer."), Reply(text="Third answer.")
    )
    async with ChatKitClient(server.url, user=user) as client:
        thread_id = (await client.create_thread("first")).thread_id
        await client.add_message(thread_id, "second")
    assert server.stop() == 0

    server.start()
    async with ChatKitClient(server.url, user=user) as client:
        listed = await client.list_threads()
        assert [t["id"] for t in listed["data"]] == [thread_id]
        third = await client.add_message(thread_id, "third")
        assert third.assistant_text() == "Third answer."
        texts = [
            part["text"]
            for item in (await client.list_items(thread_id, order="asc"))["data"]
            for part in item["content"]
        ]
        assert texts == [
            "first",
            "First answer.",
            "second",
            "Second answer.",
            "third",
            "Third answer.",
        ]


async def test_tool_call_answers_with_the_tool_result(
    openai_server, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.enqueue(
        Reply(tool_call=("current_datetime", {"timezone": "Europe/Paris"})),
        Reply(text="It is late in Paris."),
    )
    async with ChatKitClient(openai_server.url, user=user) as client:
        stream = await client.create_thread("What time is it in Paris?")
    assert stream.errors == []
    assert stream.assistant_text() == "It is late in Paris."
    follow_up = mock_llm.conversation_requests()[-1].body
    outputs = [i for i in follow_up["input"] if i.get("type") == "function_call_output"]
    assert len(outputs) == 1 and "Europe/Paris" in outputs[0]["output"]


async def test_locale_reaches_the_instructions(openai_server, mock_llm: MockLLM, user: str) -> None:
    async with ChatKitClient(openai_server.url, user=user) as client:
        client.http.headers["Accept-Language"] = "fr-FR,fr;q=0.9,en;q=0.8"
        await client.create_thread("Bonjour")
    instructions = mock_llm.conversation_requests()[-1].body["instructions"]
    assert "fr-FR" in instructions
