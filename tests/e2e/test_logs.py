"""The server's stdout: JSON lines that follow a request by its id, without secrets or prompts."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import TEST_GEMINI_KEY, TEST_OPENAI_KEY, ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess

PROMPT = "PROMPT-MARKER please summarise the zebra migration plan"
ANSWER = "ANSWER-MARKER zebras walk north in spring."
REQUEST_ID = "test-req-0001"


def lines_of(server: ServerProcess) -> list[dict[str, Any]]:
    parsed = []
    for line in server.output:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(parsed[-1], dict), line
    return parsed


async def converse(server: ServerProcess, mock: MockLLM) -> None:
    """A turn that calls a tool and answers; then a turn the provider refuses, quoting the key."""
    mock.enqueue(Reply(tool_call=("current_datetime", {"timezone": "UTC"})), Reply(text=ANSWER))
    async with ChatKitClient(server.url, user="log-user@example.com") as client:
        response = await client.http.post(
            "/chatkit/api",
            json={
                "type": "threads.create",
                "params": {
                    "input": {
                        "content": [{"type": "input_text", "text": PROMPT}],
                        "attachments": [],
                        "inference_options": {},
                    }
                },
            },
            headers={"X-Request-ID": REQUEST_ID},
        )
        assert response.status_code == 200
        assert response.headers["x-request-id"] == REQUEST_ID
        assert ANSWER.split()[1] in response.text
        thread_id = json.loads(response.text.split("\n\n")[0][len("data: ") :])["thread"]["id"]

        mock.enqueue(Reply(status=401, error_message=f"Incorrect API key: {TEST_OPENAI_KEY}"))
        refused = await client.add_message(thread_id, "and again")
        assert len(refused.errors) == 1


async def test_every_line_is_json_and_a_request_can_be_followed_by_its_id(
    server_factory: ServerFactory, mock_llm: MockLLM
) -> None:
    server = server_factory(
        {
            **provider_env("openai", mock_llm),
            "LOG_LEVEL": "DEBUG",
            "GEMINI_API_KEY": TEST_GEMINI_KEY,
        }
    )
    await converse(server, mock_llm)
    async with httpx.AsyncClient(base_url=server.url) as http:
        bad_id = await http.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})
    generated = bad_id.headers["x-request-id"]
    assert len(generated) == 32
    assert generated != "no spaces allowed"
    assert server.stop() == 0

    lines = lines_of(server)
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line)
        assert line["timestamp"].endswith("+00:00")

    # From the request's first line to its last, every line carries its id: the model calls,
    # the tool call and the SDK's own logs inside the stream included.
    ours = [i for i, line in enumerate(lines) if line.get("request_id") == REQUEST_ID]
    window = lines[ours[0] : ours[-1] + 1]
    assert all(line.get("request_id") == REQUEST_ID for line in window)
    loggers = {line["logger"] for line in window}
    assert {"httpx2", "service.chatkit.outcomes", "hypercorn.access"} <= loggers

    [finished] = [line for line in window if line["logger"] == "service.chatkit.outcomes"]
    assert finished["message"] == "threads.create completed"
    assert finished["request_type"] == "threads.create"
    assert finished["thread_id"].startswith("thr_")
    assert finished["tenant_id"] == "default"
    assert len(finished["user_hash"]) == 16
    assert "log-user" not in json.dumps(lines)
    assert finished["outcome"] == "completed"
    assert finished["duration_ms"] > 0

    [access] = [line for line in window if line["logger"] == "hypercorn.access"]
    assert access["message"] == "POST /chatkit/api 200"
    assert access["status"] == 200
    assert access["thread_id"] == finished["thread_id"]

    refused = [line for line in lines if line.get("outcome") == "error"]
    assert [line["error_type"] for line in refused] == ["auth"]
    assert refused[0]["request_id"] != REQUEST_ID
    assert any(line.get("request_id") == generated for line in lines)

    text = server.log
    for secret in (TEST_OPENAI_KEY, TEST_GEMINI_KEY, "SECRET"):
        assert secret not in text
    for private in ("PROMPT-MARKER", "zebra", "ANSWER-MARKER"):
        assert private not in text
