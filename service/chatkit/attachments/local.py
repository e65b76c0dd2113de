"""Attachment bytes on local disk (aiofiles): `<root>/<tenant>/<attachment id>`.

A write goes to a hidden `.part` file renamed into place on commit, so a cut upload never
leaves a partial object; the type and original name sit in a `.meta.json` file beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiofiles
import aiofiles.os
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from service.chatkit.attachments.blobs import (
    CHUNK_BYTES,
    BlobInfo,
    Blobs,
    BlobWriter,
    SpooledWriter,
)
from service.chatkit.attachments.errors import StorageUnavailable


class LocalBlobs(Blobs):
    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    async def writer(self, key: str, content_type: str, file_name: str) -> BlobWriter:
        path = self._path(key)
        partial = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        opening = asyncio.ensure_future(_open_for_writing(partial))
        try:
            handle = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The file may be created after all: remove it once the open is done.
            opening.add_done_callback(lambda _: _discard(opening, partial))
            raise
        except OSError as exc:
            raise StorageUnavailable() from exc
        meta = json.dumps({"content_type": content_type, "name": file_name})
        return _LocalWriter(path, partial, handle, meta)

    async def info(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        try:
            size = (await aiofiles.os.stat(path)).st_size
            async with aiofiles.open(_meta_path(path)) as meta_file:
                meta = json.loads(await meta_file.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StorageUnavailable() from exc
        return BlobInfo(size=size, content_type=str(meta.get("content_type", "")))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            async with aiofiles.open(self._path(key), "rb") as handle:
                while chunk := await handle.read(CHUNK_BYTES):
                    yield chunk
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageUnavailable() from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        for doomed in (path, _meta_path(path)):
            try:
                await aiofiles.os.remove(doomed)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageUnavailable() from exc


async def _open_for_writing(partial: Path) -> AsyncBufferedIOBase:
    await aiofiles.os.makedirs(partial.parent, exist_ok=True)
    return await aiofiles.open(partial, "wb")


def _discard(opening: asyncio.Future[AsyncBufferedIOBase], partial: Path) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    handle = opening.result()

    async def close_and_remove() -> None:
        with contextlib.suppress(OSError):
            await handle.close()
            await aiofiles.os.remove(partial)

    task = asyncio.ensure_future(close_and_remove())
    _cleanups.add(task)
    task.add_done_callback(_cleanups.discard)


_cleanups: set[asyncio.Future[None]] = set()
"""Clean-ups running after their request was cancelled (kept so they are not collected)."""


def _meta_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.meta.json")


class _LocalWriter(SpooledWriter):
    """The spool is the hidden `.part` file, renamed into place (beside its meta file)."""

    def __init__(self, path: Path, partial: Path, handle: AsyncBufferedIOBase, meta: str) -> None:
        super().__init__(partial, handle)
        self.path = path
        self.meta = meta

    async def _publish(self) -> None:
        try:
            async with aiofiles.open(_meta_path(self.path), "w") as meta_file:
                await meta_file.write(self.meta)
            await aiofiles.os.replace(self.spool, self.path)
        except OSError as exc:
            await self.abort()
            raise StorageUnavailable() from exc


def local_root(url: str) -> Path:
    """`file:///abs/path` or `file://./relative/path` -> the directory."""
    return Path(os.path.expanduser(url.removeprefix("file://") or "."))
