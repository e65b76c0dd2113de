"""`prune` removes the bytes of the attachment records it deletes (never-attached uploads)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from service.chatkit.attachments.factory import create_attachments
from service.chatkit.attachments.pruning import bytes_deleter
from service.chatkit.store.sqlite import SQLiteStore
from service.cli import main, orphan_age
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
            await attachments.record(context, "atc_old", "notes.txt", stored.content_type), context
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


async def test_never_attached_uploads_go_after_attachment_orphan_hours(tmp_path: Path) -> None:
    settings = Settings(
        attachments_url=f"file://{tmp_path / 'uploads'}",
        attachment_orphan_hours=24,
        attachments_link_seconds=3600,
    )
    attachments = create_attachments(settings)
    assert attachments is not None
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    await store.open(migrate=True)
    try:
        context = RequestContext("u1", "acme", "user", None)
        for attachment_id in ("atc_a", "atc_b"):
            await store.save_attachment(
                await attachments.record(context, attachment_id, "a.pdf", "application/pdf"),
                context,
            )
        now = datetime.now(UTC)
        # Threads are kept for 30 days, uploads not yet 24 hours old stay.
        report = await store.prune(
            now - timedelta(days=30), orphans_older_than=now - orphan_age(settings)
        )
        assert report.attachment_ids == ()
        # A day later (as seen from the rows' age): the orphans go, old threads' cutoff or not.
        report = await store.prune(
            now - timedelta(days=30),
            orphans_older_than=now + timedelta(days=1) - orphan_age(settings),
        )
        assert set(report.attachment_ids) == {"atc_a", "atc_b"}
    finally:
        await store.close()


def test_the_orphan_age_never_undercuts_a_live_upload_link() -> None:
    assert orphan_age(Settings(attachment_orphan_hours=24)) == timedelta(hours=24)
    assert orphan_age(
        Settings(attachment_orphan_hours=1, attachments_link_seconds=3 * 3600)
    ) == timedelta(hours=3)
    assert Settings().attachment_orphan_hours == 24


async def _seed_orphans(tmp_path: Path, settings: Settings) -> None:
    """Two never-attached uploads with their bytes: `atc_day_old` 30 hours old, `atc_new` 1."""
    attachments = create_attachments(settings)
    assert attachments is not None
    store = SQLiteStore(str(tmp_path / "db.sqlite"))
    await store.open(migrate=True)
    context = RequestContext("u1", "acme", "user", None)
    for attachment_id in ("atc_day_old", "atc_new"):
        stored = await attachments.ingest(
            context, attachment_id, "n.txt", "text/plain", _chunks(b"an upload never sent")
        )
        record = await attachments.record(context, attachment_id, "n.txt", stored.content_type)
        await store.save_attachment(record, context)
    await store.close()
    async with aiosqlite.connect(tmp_path / "db.sqlite") as db:
        hour = 3600 * 1_000_000
        for attachment_id, hours in (("atc_day_old", 30), ("atc_new", 1)):
            await db.execute(
                "UPDATE attachments SET created_at = created_at - ? WHERE id = ?",
                (hours * hour, attachment_id),
            )
        await db.commit()


def test_the_prune_command_removes_orphans_after_attachment_orphan_hours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "ATTACHMENTS_URL": f"file://{tmp_path / 'uploads'}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "ATTACHMENT_ORPHAN_HOURS": "48",
    }
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    asyncio.run(_seed_orphans(tmp_path, Settings()))
    uploads = tmp_path / "uploads" / "acme"

    assert main(["prune", "--older-than", "30d"]) == 0
    assert "0 attachment record(s)" in capsys.readouterr().out
    monkeypatch.setenv("ATTACHMENT_ORPHAN_HOURS", "24")
    assert main(["prune", "--older-than", "30d"]) == 0
    assert "1 attachment record(s)" in capsys.readouterr().out
    assert sorted(p.name for p in uploads.iterdir() if not p.name.startswith(".")) == ["atc_new"]
