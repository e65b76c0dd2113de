"""Where an attachment's bytes live: the backend interface shared by local disk and GCS.

A write is all or nothing: the object appears only when `BlobWriter.commit` succeeds; `abort`
(or an exception) leaves nothing behind. Every backend failure is `StorageUnavailable`.
A backend that can hand browsers signed URLs (GCS with signing credentials) says so through
`upload_url` / `download_url`; the others answer None and this service's own links are used.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from service.chatkit.attachments.errors import StorageUnavailable

CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    content_type: str


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """Where a browser PUTs the bytes, with exactly the headers the URL was signed with."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)


class BlobWriter(ABC):
    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the object visible, complete."""

    @abstractmethod
    async def abort(self) -> None:
        """Drop whatever was written; idempotent."""


class SpooledWriter(BlobWriter):
    """Writes to a local file (`spool`); `commit` then publishes it (`_publish`)."""

    def __init__(self, spool: Path, handle: AsyncBufferedIOBase) -> None:
        self.spool = spool
        self.handle = handle
        self.closed = False

    async def write(self, data: bytes) -> None:
        try:
            await self.handle.write(data)
        except OSError as exc:
            await self.abort()
            raise StorageUnavailable() from exc

    async def _close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.handle.close()

    @abstractmethod
    async def _publish(self) -> None:
        """Turn the complete spool into the object (the handle is closed)."""

    async def commit(self) -> None:
        try:
            await self._close()
        except OSError as exc:
            await self.abort()
            raise StorageUnavailable() from exc
        await self._publish()

    async def abort(self) -> None:
        with contextlib.suppress(OSError):
            await self._close()
        with contextlib.suppress(OSError):
            await aiofiles.os.remove(self.spool)


class Blobs(ABC):
    backend: str
    """`local` or `gcs`, for metrics."""

    @abstractmethod
    async def writer(self, key: str, content_type: str, file_name: str) -> BlobWriter: ...

    @abstractmethod
    async def info(self, key: str) -> BlobInfo | None:
        """The object's size and type, or None when there is no such object."""

    @abstractmethod
    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; `FileNotFoundError` when it does not exist."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the object; no error when it is already gone."""

    async def head(self, key: str, size: int) -> bytes:
        """The first `size` bytes (fewer for a shorter object); `FileNotFoundError`."""
        data = bytearray()
        async for chunk in self.read(key):
            data.extend(chunk)
            if len(data) >= size:
                break
        return bytes(data[:size])

    async def upload_url(
        self, key: str, content_type: str, max_bytes: int, seconds: int
    ) -> SignedUpload | None:
        """A URL a browser PUTs the object to directly, valid `seconds`; None: cannot sign."""
        return None

    async def download_url(
        self, key: str, content_type: str, disposition: str, seconds: int
    ) -> str | None:
        """A URL a browser GETs the object from directly, valid `seconds` (or a little less
        than that when reused); None: cannot sign."""
        return None

    def start(self) -> None:
        """Start-up work in the background (never blocks nor fails start-up); none here."""
        return

    async def close(self) -> None:
        return None


def object_key(tenant_id: str, attachment_id: str) -> str:
    """`<tenant>/<attachment id>`, each part safe as a path segment ('..' included)."""
    return f"{_segment(tenant_id)}/{_segment(attachment_id)}"


def _segment(value: str) -> str:
    segment = quote(value, safe="@+:-_")
    return "%2E" + segment[1:] if segment.startswith(".") else segment
