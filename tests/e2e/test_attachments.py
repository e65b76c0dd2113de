"""Attachments end to end through the HTTP API, on local disk and on GCS (fake-gcs-server):
both upload strategies, the model receiving the files, previews, deletes, limits and failures."""

from __future__ import annotations

import base64
import socket
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chatkit.attachments.emulator import Emulator, start_emulator
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 3000 + b"\n%%EOF\n"
ZIP = b"PK\x03\x04" + b"\x00" * 200
MAX_BYTES = 2_000_000
START_SECONDS = 120  # a loaded CI machine imports the service slowly


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    yield from start_emulator()


class Backend:
    """Where a test server keeps its files, and how a test looks inside."""

    def __init__(self, name: str, root: Path | None = None, emulator: Emulator | None = None):
        self.name = name
        self.root = root
        self.emulator = emulator
        self.bucket = emulator.new_bucket() if emulator else ""

    def env(self) -> dict[str, str]:
        if self.emulator is not None:
            return {
                "ATTACHMENTS_URL": f"gs://{self.bucket}/uploads",
                "STORAGE_EMULATOR_HOST": self.emulator.url,
                # This service's own links on GCS too (signed URLs: test_attachments_signed.py).
                "ATTACHMENTS_SIGNED_URLS": "off",
            }
        return {"ATTACHMENTS_URL": f"file://{self.root}"}

    def objects(self) -> list[str]:
        if self.emulator is not None:
            return [n.removeprefix("uploads/") for n in self.emulator.object_names(self.bucket)]
        assert self.root is not None
        return sorted(
            str(p.relative_to(self.root))
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def leftovers(self) -> list[str]:
        """Partial files a cut upload might have left (local disk)."""
        if self.root is None:
            return []
        return sorted(p.name for p in self.root.rglob("*.part"))


@pytest.fixture(scope="module", params=["local", "gcs"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    if request.param == "gcs":
        return Backend("gcs", emulator=request.getfixturevalue("emulator"))
    return Backend("local", root=tmp_path_factory.mktemp("uploads"))


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM, backend: Backend) -> ServerProcess:
    env = {
        **provider_env("openai", mock_llm),
        **backend.env(),
        "ATTACHMENTS_MAX_BYTES": str(MAX_BYTES),
        "TITLE_GENERATION": "false",
    }
    return server_factory(env, start=False).start(timeout=START_SECONDS)


@pytest.fixture
async def client(server: ServerProcess, user: str) -> AsyncIterator[ChatKitClient]:
    async with ChatKitClient(server.url, user=user, tenant="acme") as chatkit:
        yield chatkit


async def upload(
    client: ChatKitClient, data: bytes, name: str = "cat.png", content_type: str = "image/png"
) -> httpx.Response:
    return await client.http.post("/chatkit/api/upload", files={"file": (name, data, content_type)})


async def uploaded(client: ChatKitClient, data: bytes, name: str, content_type: str) -> Any:
    response = await upload(client, data, name, content_type)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def attachment_rows(server: ServerProcess) -> list[tuple[str, str | None]]:
    with sqlite3.connect(server.workdir / "chatkit.db") as db:
        return db.execute("SELECT id, thread_id FROM attachments ORDER BY id").fetchall()


# --- direct strategy -------------------------------------------------------------------------


async def test_direct_upload_stores_the_bytes_under_the_tenant_and_previews_them(
    client: ChatKitClient, backend: Backend
) -> None:
    attachment = await uploaded(client, PNG, "cat.png", "image/png")
    assert attachment["type"] == "image"
    assert attachment["name"] == "cat.png"
    assert attachment["mime_type"] == "image/png"
    assert attachment["upload_descriptor"] is None
    assert "metadata" not in attachment
    assert f"acme/{attachment['id']}" in backend.objects()

    async with httpx.AsyncClient() as browser:  # an <img> tag sends no auth headers
        preview = await browser.get(attachment["preview_url"])
    assert preview.status_code == 200
    assert preview.content == PNG
    assert preview.headers["content-type"] == "image/png"
    assert preview.headers["x-content-type-options"] == "nosniff"


async def test_the_model_receives_image_and_pdf(
    client: ChatKitClient, mock_llm: MockLLM, server: ServerProcess
) -> None:
    image = await uploaded(client, PNG, "cat.png", "image/png")
    pdf = await uploaded(client, PDF, "report.pdf", "application/pdf")
    assert pdf["type"] == "file"
    stream = await client.stream(
        "threads.create", input=user_input("what is this?", [image["id"], pdf["id"]])
    )
    assert stream.errors == [], server.log
    sent = mock_llm.conversation_requests()[-1].body["input"]
    parts = [part for item in sent for part in item.get("content", []) if isinstance(part, dict)]
    assert {
        "type": "input_image",
        "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        "detail": "auto",
    } in parts
    files = [p for p in parts if p["type"] == "input_file"]
    assert files == [
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode(),
        }
    ]
    message = stream.done_items("user_message")[0]
    assert [a["id"] for a in message["attachments"]] == [image["id"], pdf["id"]]


async def test_text_files_reach_the_model_as_text_and_unreadable_ones_as_a_note(
    client: ChatKitClient, mock_llm: MockLLM
) -> None:
    notes = await uploaded(
        client, "Meeting notes: ship on Friday ✓\n".encode(), "n.md", "text/markdown"
    )
    docx = await uploaded(
        client,
        ZIP,
        "plan.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )
    assert docx["mime_type"].startswith("application/vnd.openxmlformats")
    stream = await client.stream(
        "threads.create", input=user_input("summarise", [notes["id"], docx["id"]])
    )
    assert stream.errors == []
    text = str(mock_llm.conversation_requests()[-1].body["input"])
    assert "Meeting notes: ship on Friday ✓" in text
    assert "plan.docx" in text and "cannot read" in text


# --- two-phase strategy ----------------------------------------------------------------------


async def test_two_phase_upload_then_the_descriptor_is_gone(
    client: ChatKitClient, backend: Backend, mock_llm: MockLLM
) -> None:
    created = await client.call(
        "attachments.create", name="scan.pdf", size=len(PDF), mime_type="application/pdf"
    )
    assert created.status_code == 200, created.text
    attachment = created.json()
    descriptor = attachment["upload_descriptor"]
    assert descriptor["method"] == "PUT"
    assert f"acme/{attachment['id']}" not in backend.objects()

    async with httpx.AsyncClient() as browser:
        put = await browser.put(descriptor["url"], content=PDF, headers=descriptor["headers"])
        assert put.status_code == 200, put.text
        assert put.json()["upload_descriptor"] is None
        again = await browser.put(descriptor["url"], content=PDF)
        assert again.status_code == 400
    assert f"acme/{attachment['id']}" in backend.objects()

    stream = await client.stream("threads.create", input=user_input("read it", [attachment["id"]]))
    assert stream.errors == []
    message = stream.done_items("user_message")[0]
    assert message["attachments"][0].get("upload_descriptor") is None
    assert "application/pdf;base64," + base64.b64encode(PDF).decode() in str(
        mock_llm.conversation_requests()[-1].body["input"]
    )


async def test_two_phase_create_refuses_what_it_will_not_take(client: ChatKitClient) -> None:
    big = await client.call(
        "attachments.create", name="big.pdf", size=MAX_BYTES + 1, mime_type="application/pdf"
    )
    assert big.status_code == 413
    exe = await client.call(
        "attachments.create", name="x.exe", size=10, mime_type="application/x-msdownload"
    )
    assert exe.status_code == 415


async def test_a_two_phase_upload_link_works_only_for_its_file(client: ChatKitClient) -> None:
    created = (
        await client.call("attachments.create", name="a.png", size=len(PNG), mime_type="image/png")
    ).json()
    url = httpx.URL(created["upload_descriptor"]["url"])
    for wrong in (
        url.copy_with(path="/chatkit/api/upload/atc_other"),
        url.copy_set_param("token", "forged"),
    ):
        # A fresh connection each: the server closes one whose body it refused unread.
        async with httpx.AsyncClient() as browser:
            assert (await browser.put(wrong, content=PNG)).status_code == 404


# --- lifecycle -------------------------------------------------------------------------------


async def test_delete_removes_bytes_and_record_and_an_unknown_id_touches_nothing(
    client: ChatKitClient, backend: Backend, server: ServerProcess
) -> None:
    keep = await uploaded(client, PNG, "keep.png", "image/png")
    doomed = await uploaded(client, PNG, "doomed.png", "image/png")

    assert (await client.call("attachments.delete", attachment_id=doomed["id"])).status_code == 200
    assert f"acme/{doomed['id']}" not in backend.objects()
    assert doomed["id"] not in [row[0] for row in attachment_rows(server)]
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(doomed["preview_url"])).status_code == 404

    for unknown in (doomed["id"], "atc_never_existed"):
        response = await client.call("attachments.delete", attachment_id=unknown)
        assert response.status_code == 404
    assert f"acme/{keep['id']}" in backend.objects()


async def test_another_users_attachment_is_unknown_everywhere(
    client: ChatKitClient, server: ServerProcess, backend: Backend
) -> None:
    mine = await uploaded(client, PNG, "mine.png", "image/png")
    for user, tenant in (("intruder", "acme"), (client.http.headers["X-User-Id"], "other")):
        async with ChatKitClient(server.url, user=user, tenant=tenant) as intruder:
            use = await intruder.call("threads.create", input=user_input("hi", [mine["id"]]))
            assert use.status_code == 404
            content = await intruder.http.get(f"/chatkit/api/attachments/{mine['id']}/content")
            assert content.status_code == 404
            delete = await intruder.call("attachments.delete", attachment_id=mine["id"])
            assert delete.status_code == 404
    assert f"acme/{mine['id']}" in backend.objects()


# --- limits and bad input --------------------------------------------------------------------


async def test_an_oversized_file_is_413_and_leaves_nothing(
    client: ChatKitClient, backend: Backend, server: ServerProcess
) -> None:
    before = (backend.objects(), attachment_rows(server))
    response = await upload(client, PNG + b"0" * MAX_BYTES)
    assert response.status_code == 413
    assert str(MAX_BYTES) in error_of(response)["message"]
    assert (backend.objects(), attachment_rows(server)) == before
    assert backend.leftovers() == []


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (ZIP, "application/zip"),  # not allowed
        (b"MZ\x90\x00" + b"\x00" * 300, "image/png"),  # an executable calling itself a PNG
    ],
)
async def test_a_disallowed_type_is_415_judged_from_the_bytes(
    client: ChatKitClient, data: bytes, declared: str
) -> None:
    response = await upload(client, data, "x.png", declared)
    assert response.status_code == 415
    assert "not accepted" in error_of(response)["message"]


async def test_a_spoofed_type_is_stored_as_what_the_bytes_are(client: ChatKitClient) -> None:
    attachment = await uploaded(client, PDF, "photo.png", "image/png")
    assert (attachment["type"], attachment["mime_type"]) == ("file", "application/pdf")


@pytest.mark.parametrize(
    ("content", "content_type", "fragment"),
    [
        (b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
         "multipart/form-data; boundary=b", "no field named 'file'"),
        (b"garbage without any boundary", "multipart/form-data; boundary=b", "malformed"),
        (PNG, "image/png", "multipart/form-data"),
        (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n\r\n--b--\r\n',
         "multipart/form-data; boundary=b", "empty"),
        (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc',
         "multipart/form-data; boundary=b", "before the multipart body was complete"),
    ],
)  # fmt: skip
async def test_a_bad_form_is_400_with_a_reason(
    client: ChatKitClient, content: bytes, content_type: str, fragment: str
) -> None:
    response = await client.http.post(
        "/chatkit/api/upload", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400
    assert fragment in error_of(response)["message"]


async def test_an_upload_cut_halfway_leaves_no_object_and_no_record(
    server: ServerProcess, backend: Backend, user: str
) -> None:
    before = (backend.objects(), attachment_rows(server))
    head = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="cut.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG + b"0" * 600_000
    )
    request = (
        f"POST /chatkit/api/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Id: {user}\r\n"
        "X-Tenant-Id: acme\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {len(head) + 1_000_000}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request + head)
    async with ChatKitClient(server.url, user=user, tenant="acme") as chatkit:
        # A later request on a fresh connection has been answered after the cut one ended.
        assert (await upload(chatkit, PNG)).status_code == 200
    after = (backend.objects(), attachment_rows(server))
    assert len(after[0]) == len(before[0]) + 1
    assert len(after[1]) == len(before[1]) + 1
    assert backend.leftovers() == []
    assert "Traceback" not in server.log


async def test_deleting_a_thread_deletes_its_attachments(
    client: ChatKitClient, backend: Backend, server: ServerProcess
) -> None:
    attachment = await uploaded(client, PNG, "in-thread.png", "image/png")
    stream = await client.stream("threads.create", input=user_input("look", [attachment["id"]]))
    assert stream.errors == []
    assert (attachment["id"], stream.thread_id) in attachment_rows(server)

    deleted = await client.call("threads.delete", thread_id=stream.thread_id)
    assert deleted.status_code == 200, deleted.text
    assert f"acme/{attachment['id']}" not in backend.objects()
    assert attachment["id"] not in [row[0] for row in attachment_rows(server)]


async def test_a_two_phase_upload_may_also_post_a_form(
    client: ChatKitClient, backend: Backend
) -> None:
    created = await client.call(
        "attachments.create", name="photo.png", size=len(PNG), mime_type="image/png"
    )
    descriptor = created.json()["upload_descriptor"]
    async with httpx.AsyncClient() as browser:
        posted = await browser.post(
            descriptor["url"], files={"file": ("photo.png", PNG, "image/png")}
        )
        assert posted.status_code == 200, posted.text
        attachment = posted.json()
        assert (attachment["type"], attachment["upload_descriptor"]) == ("image", None)
        assert (await browser.get(attachment["preview_url"])).content == PNG
    assert f"acme/{attachment['id']}" in backend.objects()
