"""The composer's model picker and tool choice through `/chatkit/api`, on both API paths."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.e2e.tools_support import client_as
from tests.support.client import user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess

DEFAULT_MODELS = {"openai": "gpt-test", "openai-compatible": "local-test"}


@pytest.fixture(scope="module", params=["openai", "openai-compatible"])
def server(
    request: pytest.FixtureRequest, server_factory: ServerFactory, mock_llm: MockLLM
) -> ServerProcess:
    env = {**provider_env(request.param, mock_llm), "MODEL_ALLOWLIST": "mock-large, mock-small"}
    return server_factory(env, start=False).start(120)


def asking(text: str, **options: Any) -> dict[str, Any]:
    return {**user_input(text), "inference_options": options}


def models_called(mock: MockLLM) -> list[str]:
    return [request.body["model"] for request in mock.conversation_requests()]


async def test_a_model_on_the_allow_list_answers_the_turn(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    mock_llm.enqueue(Reply(text="Answered by the large model."))
    async with client_as(server, f"u-{uuid.uuid4().hex[:8]}", "t", "employee") as client:
        stream = await client.stream("threads.create", input=asking("Hi", model="mock-large"))
        assert stream.errors == []
        assert stream.assistant_text() == "Answered by the large model."
        assert models_called(mock_llm) == ["mock-large"]

        mock_llm.enqueue(Reply(text="Back on the default."))
        second = await client.add_message(stream.thread_id, "And now?")
        assert second.assistant_text() == "Back on the default."
    assert models_called(mock_llm)[-1] in DEFAULT_MODELS.values()


async def test_a_model_outside_the_allow_list_is_refused(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    async with client_as(server, f"u-{uuid.uuid4().hex[:8]}", "t", "employee") as client:
        response = await client.call("threads.create", input=asking("Hi", model="gpt-premium"))
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert "the model 'gpt-premium' is not available here" in message
        assert "mock-large" in message
        assert (await client.list_threads())["data"] == []
    assert mock_llm.conversation_requests() == []


async def test_a_tool_choice_is_passed_to_the_model(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    mock_llm.enqueue(Reply(tool_call=("list_my_tickets", {})), Reply(text="No tickets."))
    async with client_as(server, f"u-{uuid.uuid4().hex[:8]}", "t", "employee") as client:
        stream = await client.stream(
            "threads.create", input=asking("Tickets?", tool_choice={"id": "list_my_tickets"})
        )
    assert stream.assistant_text() == "No tickets."
    first, after_tool = (request.body for request in mock_llm.conversation_requests())
    assert "list_my_tickets" in json.dumps(first["tool_choice"])
    assert "list_my_tickets" not in json.dumps(after_tool.get("tool_choice"))


async def test_an_unknown_tool_choice_is_refused(server: ServerProcess, mock_llm: MockLLM) -> None:
    async with client_as(server, f"u-{uuid.uuid4().hex[:8]}", "t", "employee") as client:
        response = await client.call(
            "threads.create", input=asking("Hi", tool_choice={"id": "delete_everything"})
        )
    assert response.status_code == 400
    assert "the tool 'delete_everything' is not available" in response.json()["error"]["message"]
    assert mock_llm.conversation_requests() == []
