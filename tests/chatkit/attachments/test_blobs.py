"""Both storage backends honour one contract: all-or-nothing writes, reads, deletes, failures
as `StorageUnavailable` (GCS against fake-gcs-server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.chatkit.attachments.blobs import Blobs, object_key
from service.chatkit.attachments.errors import StorageUnavailable
from service.chatkit.attachments.factory import create_blobs
from service.chatkit.attachments.gcs import GcsBlobs
from service.chatkit.attachments.local import LocalBlobs, local_root
from tests.chatkit.attachments.emulator import Emulator, start_emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    yield from start_emulator()


@pytest.fixture(params=["local", "gcs"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Blobs:
    if request.param == "local":
        return LocalBlobs(tmp_path / "uploads")
    emulator: Emulator = request.getfixturevalue("emulator")
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    return GcsBlobs(f"gs://{emulator.new_bucket()}/uploads")


async def read(blobs: Blobs, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.read(key)])


async def test_a_committed_write_can_be_read_described_and_deleted(blobs: Blobs) -> None:
    data = os.urandom(1_500_000)  # several GCS upload chunks
    writer = await blobs.writer("t1/atc_1", "application/pdf", "report.pdf")
    for start in range(0, len(data), 100_000):
        await writer.write(data[start : start + 100_000])
    await writer.commit()

    info = await blobs.info("t1/atc_1")
    assert info is not None
    assert (info.size, info.content_type) == (len(data), "application/pdf")
    assert await read(blobs, "t1/atc_1") == data

    await blobs.delete("t1/atc_1")
    assert await blobs.info("t1/atc_1") is None
    with pytest.raises(FileNotFoundError):
        await read(blobs, "t1/atc_1")
    await blobs.delete("t1/atc_1")  # already gone: no error


async def test_an_aborted_write_leaves_nothing(blobs: Blobs, tmp_path: Path) -> None:
    writer = await blobs.writer("t1/atc_2", "image/png", "cut.png")
    await writer.write(os.urandom(1_200_000))
    await writer.abort()
    assert await blobs.info("t1/atc_2") is None
    if isinstance(blobs, LocalBlobs):
        assert [p.name for p in (tmp_path / "uploads").rglob("*") if p.is_file()] == []


async def test_gcs_objects_carry_tenant_type_and_original_name(emulator: Emulator) -> None:
    os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
    bucket = emulator.new_bucket()
    blobs = GcsBlobs(f"gs://{bucket}/prefix/uploads")
    writer = await blobs.writer(object_key("acme", "atc_9"), "image/png", "cat photo.png")
    await writer.write(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    await writer.commit()
    assert emulator.object_names(bucket) == ["prefix/uploads/acme/atc_9"]
    blob = emulator.read(bucket, "prefix/uploads/acme/atc_9")
    assert blob.content_type == "image/png"
    assert blob.metadata == {"original-name": "cat photo.png"}


async def test_an_unreachable_bucket_is_storage_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # nothing listens there
    blobs = GcsBlobs("gs://nowhere/uploads")
    with pytest.raises(StorageUnavailable):
        await blobs.info("t/a")


async def test_an_unwritable_directory_is_storage_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    blobs = LocalBlobs(tmp_path / "file")
    with pytest.raises(StorageUnavailable):
        await blobs.writer("t/a", "text/plain", "a.txt")


def test_object_keys_cannot_leave_the_tenant_folder() -> None:
    assert object_key("..", "atc_1") == "%2E./atc_1"
    assert object_key("a/b", "atc_1") == "a%2Fb/atc_1"
    assert object_key("acme.eu", "atc_1") == "acme.eu/atc_1"


def test_the_url_chooses_the_backend(tmp_path: Path) -> None:
    assert isinstance(create_blobs(f"file://{tmp_path}"), LocalBlobs)
    assert local_root("file://./data/uploads") == Path("./data/uploads")
    assert local_root("file:///var/uploads") == Path("/var/uploads")
    gcs = create_blobs("gs://bucket/some/prefix/")
    assert isinstance(gcs, GcsBlobs)
    assert (gcs.bucket_name, gcs.prefix) == ("bucket", "some/prefix")
