"""`prune` removes the bytes of the attachment records it deletes (never-attached uploads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.chatkit.attachments.factory import create_attachments
from service.chatkit.attachments.pruning import bytes_deleter
from service.chatkit.store.sqlite import SQLiteStore
from service.request_context import RequestContext
from service.settings import Settings


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_prune_deletes_the_bytes_of_never_attached_uploads(tmp_path: Path) -> None:
    settings = Settings(
        attachments_url=f"file://{tmp_path / 'uploads'}",
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    attachments = create_attachments(settings)
    assert attachments is not None
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    await store.open(migrate=True)
    try:
        context = RequestContext("u1", "acme", "user", None)
        stored = await attachments.ingest(
            context, "atc_old", "notes.txt", "text/plain", _chunks(b"forgotten upload")
        )
        await store.save_attachment(
            attachments.record(context, "atc_old", "notes.txt", stored.mime_type), context
        )
        key_path = tmp_path / "uploads" / attachments.key("acme", "atc_old")
        assert key_path.exists()

        report = await store.prune(
            datetime.now(UTC) + timedelta(seconds=1), on_attachments=bytes_deleter(settings)
        )
        assert report.attachment_ids == ("atc_old",)
        assert not key_path.exists()
    finally:
        await store.close()


def test_no_deleter_when_uploads_are_off() -> None:
    assert bytes_deleter(Settings(attachments_url="")) is None
