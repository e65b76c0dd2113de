"""Two-phase uploads straight to GCS through V4 signed URLs, end to end: a server on
fake-gcs-server whose Application Default Credentials are a generated service-account key.

fake-gcs-server checks neither signature nor expiry nor `x-goog-content-length-range`; the
signatures are verified here with the key's public half (`verify_v4`), and the service judges
size and type from the bytes that arrived."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chatkit.attachments.emulator import Emulator, start_emulator
from tests.chatkit.attachments.signed import GCS_HOST, ServiceAccountKey, query, verify_v4
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM
from tests.support.scrape import scrape, series
from tests.support.server import ServerProcess

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
EXE = b"MZ\x90\x00" + bytes(2000)
MAX_BYTES = 2_000_000
LINK_SECONDS = 600
START_SECONDS = 120


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    yield from start_emulator()


@pytest.fixture(scope="module")
def key() -> ServiceAccountKey:
    return ServiceAccountKey.generate()


@pytest.fixture(scope="module")
def bucket(emulator: Emulator) -> str:
    return emulator.new_bucket()


@pytest.fixture(scope="module")
def server(
    server_factory: ServerFactory,
    mock_llm: MockLLM,
    emulator: Emulator,
    key: ServiceAccountKey,
    bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> ServerProcess:
    key_file = key.write(tmp_path_factory.mktemp("credentials") / "key.json")
    env = {
        **provider_env("openai", mock_llm),
        "ATTACHMENTS_URL": f"gs://{bucket}/uploads",
        "STORAGE_EMULATOR_HOST": emulator.url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "ATTACHMENTS_SIGNED_URLS": "auto",
        "ATTACHMENTS_BUCKET_CORS_ORIGINS": "https://app.example.com",
        "ATTACHMENTS_MAX_BYTES": str(MAX_BYTES),
        "ATTACHMENTS_LINK_SECONDS": str(LINK_SECONDS),
        "TITLE_GENERATION": "false",
        "LOG_FORMAT": "text",
    }
    return server_factory(env, start=False).start(timeout=START_SECONDS)


@pytest.fixture
async def client(server: ServerProcess, user: str) -> AsyncIterator[ChatKitClient]:
    async with ChatKitClient(server.url, user=user, tenant="acme") as chatkit:
        yield chatkit


async def create(client: ChatKitClient, name: str, data: bytes, mime_type: str) -> Any:
    created = await client.call(
        "attachments.create", name=name, size=len(data), mime_type=mime_type
    )
    assert created.status_code == 200, created.text
    return created.json()


async def browser_put(descriptor: dict[str, Any], data: bytes) -> httpx.Response:
    """What the ChatKit web component does with a PUT descriptor: the raw bytes, exactly the
    headers given (plus the Host the emulator routes signed paths by)."""
    async with httpx.AsyncClient() as browser:
        return await browser.put(
            descriptor["url"], content=data, headers={**descriptor["headers"], "Host": GCS_HOST}
        )


def uploads_counted(server: ServerProcess, outcome: str) -> float:
    counted = series(scrape(server.url), "chatkit_uploads_total", backend="gcs", outcome=outcome)
    return sum(counted.values())


async def test_the_browser_puts_to_the_bucket_then_the_message_uses_the_checked_file(
    client: ChatKitClient,
    server: ServerProcess,
    emulator: Emulator,
    bucket: str,
    key: ServiceAccountKey,
    mock_llm: MockLLM,
) -> None:
    attachment = await create(client, "cat.png", PNG, "image/png")
    descriptor = attachment["upload_descriptor"]
    assert descriptor["method"] == "PUT"
    assert descriptor["url"].startswith(f"{emulator.url}/{bucket}/uploads/acme/{attachment['id']}?")
    assert descriptor["headers"] == {
        "Content-Type": "image/png",
        "x-goog-content-length-range": f"0,{MAX_BYTES}",
        "x-goog-if-generation-match": "0",
    }
    verify_v4(descriptor["url"], "PUT", descriptor["headers"], key)
    assert "metadata" not in attachment

    put = await browser_put(descriptor, PNG)
    assert put.status_code == 200, put.text
    assert f"uploads/acme/{attachment['id']}" in emulator.object_names(bucket)
    kept_before = uploads_counted(server, "ok")

    stream = await client.stream(
        "threads.create", input=user_input("what is it?", [attachment["id"]])
    )
    assert stream.errors == []
    sent = stream.done_items("user_message")[0]["attachments"][0]
    assert sent.get("upload_descriptor") is None
    assert uploads_counted(server, "ok") == kept_before + 1  # counted once checked
    assert "image/png;base64," + base64.b64encode(PNG).decode() in str(
        mock_llm.conversation_requests()[-1].body["input"]
    )

    # The thread reloaded: a preview signed now, straight from the bucket, for an <img> tag.
    items = await client.list_items(stream.thread_id)
    message = next(item for item in items["data"] if item["type"] == "user_message")
    image = message["attachments"][0]
    assert image.get("upload_descriptor") is None
    preview = image["preview_url"]
    assert query(preview)["X-Goog-Expires"] == str(LINK_SECONDS)
    verify_v4(preview, "GET", {}, key)
    async with httpx.AsyncClient() as browser:
        got = await browser.get(preview, headers={"Host": GCS_HOST})
    assert got.status_code == 200
    assert got.content == PNG

    assert "straight to gs://" in server.log
    assert f"CORS rule of gs://{bucket} for https://app.example.com: set" in server.log
    assert "X-Goog-Signature" not in server.log


async def test_a_message_before_the_bytes_arrived_is_a_409_with_a_reason(
    client: ChatKitClient,
) -> None:
    attachment = await create(client, "late.png", PNG, "image/png")
    response = await client.post(
        {"type": "threads.create", "params": {"input": user_input("here", [attachment["id"]])}}
    )
    assert response.status_code == 409, response.text
    assert "'late.png' has not been uploaded yet" in response.text
    assert "Traceback" not in response.text


async def test_bytes_of_a_refused_type_are_deleted_and_the_message_says_why(
    client: ChatKitClient, server: ServerProcess, emulator: Emulator, bucket: str
) -> None:
    refused_before = uploads_counted(server, "unsupported_type")
    attachment = await create(client, "cat.png", PNG, "image/png")
    assert (await browser_put(attachment["upload_descriptor"], EXE)).status_code == 200
    response = await client.post(
        {"type": "threads.create", "params": {"input": user_input("here", [attachment["id"]])}}
    )
    assert response.status_code == 409, response.text
    assert "was refused" in response.text and "not accepted" in response.text
    assert f"uploads/acme/{attachment['id']}" not in emulator.object_names(bucket)
    assert uploads_counted(server, "unsupported_type") == refused_before + 1
    # Still deletable like any attachment.
    deleted = await client.call("attachments.delete", attachment_id=attachment["id"])
    assert deleted.status_code == 200


async def test_local_disk_keeps_this_services_upload_links(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path: Path, user: str
) -> None:
    env = {
        **provider_env("openai", mock_llm),
        "ATTACHMENTS_URL": f"file://{tmp_path / 'uploads'}",
        "ATTACHMENTS_SIGNED_URLS": "auto",  # local disk never signs
        "TITLE_GENERATION": "false",
    }
    server = server_factory(env, start=False).start(timeout=START_SECONDS)
    async with ChatKitClient(server.url, user=user, tenant="acme") as chatkit:
        attachment = await create(chatkit, "cat.png", PNG, "image/png")
    assert attachment["upload_descriptor"]["url"].startswith(f"{server.url}/chatkit/api/upload/")
    assert attachment["upload_descriptor"]["headers"] == {}
