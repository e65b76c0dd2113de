"""Attachment bytes in Google Cloud Storage: `gs://bucket/prefix/<tenant>/<attachment id>`.

The client is blocking, so every call runs in a worker thread. A write is spooled to a local
temporary file and uploaded only on commit: a cut upload never becomes an object. Credentials
come from Application Default Credentials (Workload Identity in a cluster); with
`STORAGE_EMULATOR_HOST` set the client talks to that emulator anonymously.

When the credentials can sign (`signing.py`), browsers PUT two-phase uploads to and GET
previews from the bucket through V4 signed URLs; `ATTACHMENTS_BUCKET_CORS_ORIGINS` makes the
service add the CORS rule those browser requests need to the bucket at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiofiles
import aiofiles.os
import requests
from aiofiles.threadpool.binary import AsyncBufferedIOBase
from google.api_core.exceptions import Forbidden, GoogleAPIError, NotFound
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from service.chatkit.attachments.blobs import (
    CHUNK_BYTES,
    BlobInfo,
    Blobs,
    BlobWriter,
    SignedUpload,
    SpooledWriter,
)
from service.chatkit.attachments.errors import StorageUnavailable
from service.chatkit.attachments.signing import Resolved, SignedUrls, UrlSigner, resolve_signer

T = TypeVar("T")
logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4 * CHUNK_BYTES
UPLOAD_CHUNK_BYTES = 32 * CHUNK_BYTES  # 8 MiB; resumable chunks are multiples of 256 KiB
TIMEOUT_SECONDS = 30.0
# The library retries transient failures for two minutes by default; an outage should turn
# into a 503 while the person is still waiting.
RETRY = DEFAULT_RETRY.with_timeout(8.0)
_FAILURES = (GoogleAPIError, GoogleAuthError, requests.RequestException, OSError, ValueError)
LENGTH_RANGE_HEADER = "x-goog-content-length-range"
CREATE_ONLY_HEADER = "x-goog-if-generation-match"
"""`0`: the signed PUT may create the object, never replace one (a checked upload stays)."""
CORS_METHODS = ("GET", "HEAD", "PUT")
CORS_HEADERS = ("Content-Type", LENGTH_RANGE_HEADER, CREATE_ONLY_HEADER)
CORS_MAX_AGE_SECONDS = 3600
MAX_CACHED_URLS = 10_000
SIGNING_PAUSE_SECONDS = 60
"""After a failed signature (IAM refusing signBlob, say), how long this service's own links
are used without trying again."""


async def _call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except NotFound:
        raise
    except _FAILURES as exc:
        raise StorageUnavailable() from exc


class GcsBlobs(Blobs):
    backend = "gcs"

    def __init__(
        self, url: str, *, signed_urls: SignedUrls = "off", cors_origins: Sequence[str] = ()
    ) -> None:
        parts = urlsplit(url)
        self.bucket_name = parts.netloc
        self.prefix = parts.path.strip("/")
        self.signed_urls: SignedUrls = signed_urls
        self.cors_origins = tuple(cors_origins)
        self._client: storage.Client | None = None
        self._resolving: asyncio.Future[Resolved] | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._signing_paused_until = 0.0
        self._previews: dict[str, tuple[str, str, str, float]] = {}
        """Signed GET URLs by key: (content type, disposition, url, monotonic expiry)."""

    def _bucket(self) -> storage.Bucket:
        if self._client is None:
            # The library itself switches to `STORAGE_EMULATOR_HOST` (anonymously) when set.
            try:
                self._client = storage.Client()
            except _FAILURES as exc:  # no credentials, no project: the bucket is unreachable
                raise StorageUnavailable() from exc
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

    async def head(self, key: str, size: int) -> bytes:
        blob = self._bucket().blob(self._name(key))
        try:
            data = await _call(
                blob.download_as_bytes, start=0, end=size - 1, timeout=TIMEOUT_SECONDS, retry=RETRY
            )
        except NotFound as exc:
            raise FileNotFoundError(key) from exc
        return bytes(data)

    async def delete(self, key: str) -> None:
        self._previews.pop(key, None)
        with contextlib.suppress(NotFound):
            await _call(
                self._bucket().blob(self._name(key)).delete, timeout=TIMEOUT_SECONDS, retry=RETRY
            )

    # --- signed URLs -----------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.add(asyncio.ensure_future(self._log_signing()))
        if self.cors_origins:
            self._tasks.add(asyncio.ensure_future(self._apply_cors()))
        for task in self._tasks:
            task.add_done_callback(self._tasks.discard)

    async def _log_signing(self) -> None:
        resolved = await self._resolved()
        if resolved.signer is not None:
            logger.info(
                "two-phase uploads and image previews go straight to gs://%s through V4 signed "
                "URLs (%s)",
                self.bucket_name,
                resolved.reason,
            )
        else:
            logger.info(
                "two-phase uploads and image previews go through this service: no signed GCS "
                "URLs (%s)",
                resolved.reason,
            )

    async def _resolved(self) -> Resolved:
        if self._resolving is None:
            self._resolving = asyncio.ensure_future(asyncio.to_thread(self._prepare))
        return await asyncio.shield(self._resolving)

    def _prepare(self) -> Resolved:
        """Blocking: the client (Application Default Credentials) and the signer, at start-up
        in a worker thread rather than on the event loop at the first upload."""
        with contextlib.suppress(StorageUnavailable):  # said again by the first request
            self._bucket()
        return resolve_signer(self.signed_urls)

    async def signer(self) -> UrlSigner | None:
        return (await self._resolved()).signer

    async def _sign(self, key: str, **kwargs: Any) -> str | None:
        """A signed URL; None when the credentials cannot sign, or when signing fails (logged,
        and this service's own link is used instead)."""
        signer = await self.signer()
        if signer is None or time.monotonic() < self._signing_paused_until:
            return None
        try:
            return await _call(signer.sign, self._bucket().blob(self._name(key)), **kwargs)
        except (StorageUnavailable, NotFound) as exc:
            # Not every preview of every page load should wait for (and log) the same refusal.
            self._signing_paused_until = time.monotonic() + SIGNING_PAUSE_SECONDS
            logger.warning(
                "could not sign a GCS URL (%s); this service's own links are used for the next "
                "%d s",
                type(exc.__cause__ or exc).__name__,
                SIGNING_PAUSE_SECONDS,
            )
            return None

    async def upload_url(
        self, key: str, content_type: str, max_bytes: int, seconds: int
    ) -> SignedUpload | None:
        headers = {LENGTH_RANGE_HEADER: f"0,{max_bytes}", CREATE_ONLY_HEADER: "0"}
        url = await self._sign(
            key,
            method="PUT",
            expiration=timedelta(seconds=seconds),
            content_type=content_type,
            headers=dict(headers),  # the library adds `Host` to the dict it is given
        )
        return SignedUpload(url, {"Content-Type": content_type, **headers}) if url else None

    async def download_url(
        self, key: str, content_type: str, disposition: str, seconds: int
    ) -> str | None:
        now = time.monotonic()
        cached = self._previews.get(key)
        # Reused while it has at least half its life left: a page of previews costs no
        # signBlob calls each time it is loaded.
        if cached and cached[:2] == (content_type, disposition) and cached[3] - now >= seconds / 2:
            return cached[2]
        url = await self._sign(
            key,
            method="GET",
            expiration=timedelta(seconds=seconds),
            response_type=content_type,
            response_disposition=disposition,
        )
        if url is not None:
            if len(self._previews) >= MAX_CACHED_URLS:
                self._previews.clear()
            self._previews[key] = (content_type, disposition, url, now + seconds)
        return url

    # --- bucket CORS -------------------------------------------------------------------------

    async def _apply_cors(self) -> None:
        try:
            changed = await asyncio.to_thread(lambda: apply_cors(self._bucket(), self.cors_origins))
        except Forbidden:
            logger.warning(
                "could not set the CORS rule of gs://%s (its service account lacks "
                "storage.buckets.get/update): browsers cannot PUT uploads to or GET previews "
                "from the bucket until an operator sets it (README: Attachments)",
                self.bucket_name,
            )
        except _FAILURES as exc:
            logger.warning(
                "could not set the CORS rule of gs://%s (%s); retried at the next start",
                self.bucket_name,
                type(exc).__name__,
            )
        else:
            logger.info(
                "CORS rule of gs://%s for %s: %s",
                self.bucket_name,
                ", ".join(self.cors_origins),
                "set" if changed else "already in place",
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await asyncio.to_thread(self._client.close)


def cors_rule(origins: Sequence[str]) -> dict[str, Any]:
    """The bucket CORS rule browsers need for signed PUTs (uploads) and GETs (previews)."""
    return {
        "origin": list(origins),
        "method": list(CORS_METHODS),
        "responseHeader": list(CORS_HEADERS),
        "maxAgeSeconds": CORS_MAX_AGE_SECONDS,
    }


def apply_cors(bucket: storage.Bucket, origins: Sequence[str]) -> bool:
    """Blocking: make our rule one of the bucket's CORS rules, replacing a rule for the same
    origins and keeping the others; False when it was already there (nothing written)."""
    rule = cors_rule(origins)
    bucket.reload(timeout=TIMEOUT_SECONDS, retry=RETRY)
    current = [dict(existing) for existing in bucket.cors]
    if rule in current:
        return False
    bucket.cors = [r for r in current if r.get("origin") != rule["origin"]] + [rule]
    bucket.patch(timeout=TIMEOUT_SECONDS, retry=RETRY)
    return True


class _GcsWriter(SpooledWriter):
    """Spools to a local temporary file, then uploads it whole on commit: the client's
    streaming writer finalises an upload whenever it is closed, even by the garbage
    collector after an abort, which would publish a truncated object."""

    def __init__(
        self, blob: storage.Blob, content_type: str, spool: Path, handle: AsyncBufferedIOBase
    ) -> None:
        super().__init__(spool, handle)
        self.blob = blob
        self.content_type = content_type

    async def _publish(self) -> None:
        try:
            await _call(
                self.blob.upload_from_filename,
                str(self.spool),
                content_type=self.content_type,
                if_generation_match=0,
                timeout=TIMEOUT_SECONDS,
                retry=RETRY,
            )
        finally:
            await self.abort()  # the spool goes, uploaded or not
