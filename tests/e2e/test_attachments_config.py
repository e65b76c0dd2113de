"""Attachments under other configurations: turned off, storage down, the Chat Completions path."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from tests.conftest import ServerFactory, provider_env
from tests.e2e.test_attachments import PDF, PNG, START_SECONDS, upload
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess, free_port


def started(server_factory: ServerFactory, env: dict[str, str]) -> ServerProcess:
    return server_factory(env, start=False).start(timeout=START_SECONDS)


async def test_uploads_turned_off_say_so(server_factory: ServerFactory, mock_llm: MockLLM) -> None:
    server = started(server_factory, {**provider_env("openai", mock_llm), "ATTACHMENTS_URL": ""})
    async with ChatKitClient(server.url, user="u1") as client:
        for type_, params in (
            ("attachments.create", {"name": "a.png", "size": 10, "mime_type": "image/png"}),
            ("attachments.delete", {"attachment_id": "atc_1"}),
        ):
            response = await client.call(type_, **params)
            assert response.status_code == 400
            assert "file uploads are not enabled" in response.json()["error"]["message"]
        # No body: the server would close a connection whose body it refused unread.
        no_route = await client.http.post("/chatkit/api/upload", content=b"")
        assert no_route.status_code == 404


async def test_a_storage_outage_is_503_while_chat_and_readiness_carry_on(
    server_factory: ServerFactory, mock_llm: MockLLM
) -> None:
    server = started(
        server_factory,
        {
            **provider_env("openai", mock_llm),
            "ATTACHMENTS_URL": "gs://bucket/uploads",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{free_port()}",  # nothing listens
        },
    )
    async with ChatKitClient(server.url, user="u1") as client:
        response = await upload(client, PNG)
        assert response.status_code == 503
        assert response.json()["error"] == {
            "code": "storage_unavailable",
            "message": "File storage is unavailable right now; try the upload again in a moment.",
        }
        assert (await httpx.AsyncClient().get(f"{server.url}/readyz")).status_code == 200
        stream = await client.create_thread("still there?")
        assert stream.errors == [] and stream.assistant_text()
    assert "Traceback" not in server.log


async def test_the_chat_completions_path_receives_image_and_pdf(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path: Path
) -> None:
    server = started(
        server_factory,
        {**provider_env("gemini", mock_llm), "ATTACHMENTS_URL": f"file://{tmp_path}"},
    )
    async with ChatKitClient(server.url, user="u1") as client:
        image = (await upload(client, PNG)).json()
        pdf = (await upload(client, PDF, "report.pdf", "application/pdf")).json()
        stream = await client.stream(
            "threads.create", input=user_input("what are these?", [image["id"], pdf["id"]])
        )
        assert stream.errors == []
    messages = mock_llm.conversation_requests()[-1].body["messages"]
    parts = [p for m in messages if isinstance(m["content"], list) for p in m["content"]]
    assert {
        "type": "image_url",
        "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
            "detail": "auto",
        },
    } in parts
    assert {
        "type": "file",
        "file": {
            "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
            "filename": "report.pdf",
        },
    } in parts
