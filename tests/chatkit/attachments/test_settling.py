"""What the Store hands out is current (`keep_attachments_fresh`): bucket uploads are settled
(checked like a direct upload, descriptor cleared) once their bytes arrived, a message using one
too early gets a 409, and image previews are signed afresh on every load and expire."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from chatkit.types import (
    AttachmentUploadDescriptor,
    ImageAttachment,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)
from pydantic import AnyUrl

from service.chatkit.attachments.errors import InvalidLink, NotUploaded
from service.chatkit.attachments.fresh import keep_attachments_fresh
from service.chatkit.attachments.links import LinkGrant, LinkSigner
from service.chatkit.attachments.local import LocalBlobs
from service.chatkit.attachments.service import BUCKET_UPLOAD, REFUSED, Attachments
from service.chatkit.attachments.types import TypePolicy
from service.chatkit.store.base import ChatStore
from service.chatkit.store.sqlite import SQLiteStore
from service.request_context import RequestContext, Turn

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"x" * 500 + b"\n%%EOF\n"
EXE = b"MZ\x90\x00" + bytes(500)
MAX_BYTES = 4096
CONTEXT = RequestContext("u1", "acme")
IN_A_TURN = RequestContext("u1", "acme", turn=Turn("threads.create", "req-1"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    await store.open(migrate=True)
    yield store
    await store.close()


@pytest.fixture
def attachments(tmp_path: Path) -> Attachments:
    return Attachments(
        blobs=LocalBlobs(tmp_path / "uploads"),
        policy=TypePolicy.parse("image/*,application/pdf"),
        max_bytes=MAX_BYTES,
        links=LinkSigner("key", 600),
        public_url="https://chat.example.com",
    )


@pytest.fixture
def fresh(store: SQLiteStore, attachments: Attachments) -> ChatStore:
    return keep_attachments_fresh(store, attachments)


async def pending_bucket_upload(
    store: ChatStore, attachments: Attachments, attachment_id: str, name: str, mime_type: str
) -> None:
    """What `attachments.create` saves when it hands out a signed PUT to the bucket."""
    record = await attachments.record(
        CONTEXT,
        attachment_id,
        name,
        mime_type,
        upload=AttachmentUploadDescriptor(
            url=AnyUrl("https://storage.googleapis.com/b/u/acme/x?X-Goog-Signature=0"),
            method="PUT",
            headers={"Content-Type": mime_type},
        ),
        metadata={BUCKET_UPLOAD: True},
    )
    await store.save_attachment(record, CONTEXT)


async def browser_puts(attachments: Attachments, attachment_id: str, data: bytes) -> None:
    """The bytes landing in the bucket behind the service's back (the signed PUT)."""
    writer = await attachments.blobs.writer(
        attachments.key("acme", attachment_id), "image/png", "x"
    )
    await writer.write(data)
    await writer.commit()


async def test_a_bucket_upload_is_settled_once_its_bytes_are_there(
    fresh: ChatStore, attachments: Attachments
) -> None:
    await pending_bucket_upload(fresh, attachments, "atc_1", "scan.png", "image/png")
    assert (await fresh.load_attachment("atc_1", CONTEXT)).upload_descriptor is not None

    await browser_puts(attachments, "atc_1", PDF)  # declared a PNG, really a PDF
    settled = await fresh.load_attachment("atc_1", IN_A_TURN)

    assert settled.upload_descriptor is None
    assert (settled.type, settled.mime_type, settled.name) == (
        "file",
        "application/pdf",
        "scan.png",
    )
    assert not (settled.metadata or {}).get(BUCKET_UPLOAD)
    again = await fresh.load_attachment("atc_1", CONTEXT)  # saved: nothing left to settle
    assert again.upload_descriptor is None and again.mime_type == "application/pdf"


async def test_a_message_using_a_bucket_upload_before_its_bytes_is_a_409(
    fresh: ChatStore, attachments: Attachments
) -> None:
    await pending_bucket_upload(fresh, attachments, "atc_2", "cat.png", "image/png")
    with pytest.raises(NotUploaded) as refused:
        await fresh.load_attachment("atc_2", IN_A_TURN)
    assert refused.value.status == 409
    assert "'cat.png' has not been uploaded yet" in refused.value.message
    # Elsewhere (a delete, the content route) the pending record is still there to act on.
    assert (await fresh.load_attachment("atc_2", CONTEXT)).upload_descriptor is not None


@pytest.mark.parametrize(
    ("data", "reason"),
    [(EXE, "are not accepted"), (PNG * 10, f"at most {MAX_BYTES} bytes"), (b"", "empty")],
)
async def test_refused_bytes_are_deleted_and_a_message_says_why(
    fresh: ChatStore, attachments: Attachments, data: bytes, reason: str
) -> None:
    await pending_bucket_upload(fresh, attachments, "atc_3", "cat.png", "image/png")
    await browser_puts(attachments, "atc_3", data)

    loaded = await fresh.load_attachment("atc_3", CONTEXT)
    assert loaded.upload_descriptor is not None
    assert reason in str((loaded.metadata or {})[REFUSED])
    assert await attachments.blobs.info(attachments.key("acme", "atc_3")) is None
    with pytest.raises(NotUploaded, match=f"'cat.png' was refused: .*{reason}"):
        await fresh.load_attachment("atc_3", IN_A_TURN)


async def test_loaded_items_and_attachments_carry_preview_urls_signed_now(
    fresh: ChatStore, attachments: Attachments
) -> None:
    stale = ImageAttachment(
        id="atc_4",
        name="cat.png",
        mime_type="image/png",
        preview_url=AnyUrl(
            "https://chat.example.com/chatkit/api/attachments/atc_4/content?token=old"
        ),
    )
    await fresh.save_attachment(stale, CONTEXT)
    thread = ThreadMetadata(id="thr_1", created_at=datetime.now())
    await fresh.save_thread(thread, CONTEXT)
    message = UserMessageItem(
        id="msg_1",
        thread_id="thr_1",
        created_at=datetime.now(),
        content=[UserMessageTextContent(text="look")],
        attachments=[stale],
        inference_options=InferenceOptions(),
    )
    await fresh.add_thread_item("thr_1", message, CONTEXT)

    page = await fresh.load_thread_items("thr_1", None, 10, "asc", CONTEXT)
    item = await fresh.load_item("thr_1", "msg_1", CONTEXT)
    record = await fresh.load_attachment("atc_4", CONTEXT)
    for loaded in (page.data[0], item):
        assert isinstance(loaded, UserMessageItem)
        assert_fresh(loaded.attachments[0], attachments)
    assert_fresh(record, attachments)


def assert_fresh(attachment: Any, attachments: Attachments) -> None:
    assert isinstance(attachment, ImageAttachment)
    url = str(attachment.preview_url)
    assert url.startswith("https://chat.example.com/chatkit/api/attachments/atc_4/content?token=")
    token = url.split("token=", 1)[1]
    assert attachments.links.verify("download", token, "atc_4").tenant_id == "acme"


def test_preview_links_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = LinkSigner("key", 600)
    grant = LinkGrant("acme", "u1", "atc_5")
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 601)
    old = signer.sign("download", grant)
    monkeypatch.setattr(time, "time", lambda: now)
    assert signer.verify("download", signer.sign("download", grant), "atc_5") == grant
    with pytest.raises(InvalidLink, match="expired; reload the conversation"):
        signer.verify("download", old, "atc_5")
