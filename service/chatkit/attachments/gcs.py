"""Attachment bytes in Google Cloud Storage: `gs://bucket/prefix/<tenant>/<attachment id>`.

The client is blocking, so every call runs in a worker thread. A write is spooled to a local
temporary file and uploaded only on commit: a cut upload never becomes an object. Credentials
come from Application Default Credentials (Workload Identity in a cluster); with
`STORAGE_EMULATOR_HOST` set the client talks to that emulator anonymously.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiofiles
import aiofiles.os
import requests
from aiofiles.threadpool.binary import AsyncBufferedIOBase
from google.api_core.exceptions import GoogleAPIError, NotFound
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from service.chatkit.attachments.blobs import CHUNK_BYTES, BlobInfo, Blobs, BlobWriter
from service.chatkit.attachments.errors import StorageUnavailable

T = TypeVar("T")

READ_CHUNK_BYTES = 4 * CHUNK_BYTES
UPLOAD_CHUNK_BYTES = 32 * CHUNK_BYTES  # 8 MiB; resumable chunks are multiples of 256 KiB
TIMEOUT_SECONDS = 30.0
# The library retries transient failures for two minutes by default; an outage should turn
# into a 503 while the person is still waiting.
RETRY = DEFAULT_RETRY.with_timeout(8.0)
_FAILURES = (GoogleAPIError, GoogleAuthError, requests.RequestException, OSError, ValueError)


async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except NotFound:
        raise
    except _FAILURES as exc:
        raise StorageUnavailable() from exc


class GcsBlobs(Blobs):
    backend = "gcs"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.bucket_name = parts.netloc
        self.prefix = parts.path.strip("/")
        self._client: storage.Client | None = None

    def _bucket(self) -> storage.Bucket:
        if self._client is None:
            # The library itself switches to `STORAGE_EMULATOR_HOST` (anonymously) when set.
            self._client = storage.Client()
        return self._client.bucket(self.bucket_name)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def writer(self, key: str, content_type: str, file_name: str) -> BlobWriter:
        # Sent in chunks of this size: the client's default (100 MiB) is held in memory.
        blob = self._bucket().blob(self._name(key), chunk_size=UPLOAD_CHUNK_BYTES)
        blob.metadata = {"original-name": file_name}
        try:
            descriptor, spool = tempfile.mkstemp(prefix="upload-", suffix=".part")
            os.close(descriptor)
            handle = await aiofiles.open(spool, "wb")
        except OSError as exc:
            raise StorageUnavailable() from exc
        return _GcsWriter(blob, content_type, Path(spool), handle)

    async def info(self, key: str) -> BlobInfo | None:
        blob = await _call(
            self._bucket().get_blob, self._name(key), timeout=TIMEOUT_SECONDS, retry=RETRY
        )
        if blob is None:
            return None
        return BlobInfo(size=int(blob.size or 0), content_type=str(blob.content_type or ""))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        blob = self._bucket().blob(self._name(key))
        reader = await _call(blob.open, "rb", chunk_size=READ_CHUNK_BYTES, retry=RETRY)
        try:
            while chunk := await _call(reader.read, READ_CHUNK_BYTES):
                yield chunk
        except NotFound as exc:  # the reader fetches lazily: a missing object shows here
            raise FileNotFoundError(key) from exc
        finally:
            await asyncio.to_thread(reader.close)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(NotFound):
            await _call(
                self._bucket().blob(self._name(key)).delete, timeout=TIMEOUT_SECONDS, retry=RETRY
            )

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)


class _GcsWriter(BlobWriter):
    """Spools to a local temporary file, then uploads it whole on commit: the client's
    streaming writer finalises an upload whenever it is closed, even by the garbage
    collector after an abort, which would publish a truncated object."""

    def __init__(
        self, blob: storage.Blob, content_type: str, spool: Path, handle: AsyncBufferedIOBase
    ) -> None:
        self._blob = blob
        self._content_type = content_type
        self._spool = spool
        self._handle = handle
        self._closed = False

    async def write(self, data: bytes) -> None:
        try:
            await self._handle.write(data)
        except OSError as exc:
            await self.abort()
            raise StorageUnavailable() from exc

    async def _close(self) -> None:
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                await self._handle.close()

    async def commit(self) -> None:
        await self._close()
        try:
            await _call(
                self._blob.upload_from_filename,
                str(self._spool),
                content_type=self._content_type,
                if_generation_match=0,
                timeout=TIMEOUT_SECONDS,
                retry=RETRY,
            )
        finally:
            await self._remove_spool()

    async def abort(self) -> None:
        await self._close()
        await self._remove_spool()

    async def _remove_spool(self) -> None:
        with contextlib.suppress(OSError):
            await aiofiles.os.remove(self._spool)
