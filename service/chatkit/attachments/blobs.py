"""Where an attachment's bytes live: the backend interface shared by local disk and GCS.

A write is all or nothing: the object appears only when `BlobWriter.commit` succeeds; `abort`
(or an exception) leaves nothing behind. Every backend failure is `StorageUnavailable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    content_type: str


class BlobWriter(ABC):
    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def commit(self) -> None:
        """Make the object visible, complete."""

    @abstractmethod
    async def abort(self) -> None:
        """Drop whatever was written; idempotent."""


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

    async def close(self) -> None:
        return None


def object_key(tenant_id: str, attachment_id: str) -> str:
    """`<tenant>/<attachment id>`, each part safe as a path segment ('..' included)."""
    return f"{_segment(tenant_id)}/{_segment(attachment_id)}"


def _segment(value: str) -> str:
    segment = quote(value, safe="@+:-_")
    return "%2E" + segment[1:] if segment.startswith(".") else segment
