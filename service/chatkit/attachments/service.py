"""The attachments service: takes uploads in, hands bytes out, builds the Attachment records.

Both upload strategies end in `ingest`: the type is judged from the first bytes, the size is
counted as the bytes stream to storage, and the object appears only when all of it arrived.
Bytes a browser PUT straight to the bucket (signed URL) are judged the same way by `settle`
when the record is next loaded. Preview URLs expire after `link_seconds`: `fresh` re-signs them
whenever a record goes back to a client (see `fresh.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from chatkit.types import (
    Attachment,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
)
from pydantic import AnyUrl
from quart import has_request_context, request

from service.chatkit.attachments.blobs import BlobInfo, Blobs, object_key
from service.chatkit.attachments.errors import BadUpload, UnsupportedFileType, UploadTooLarge
from service.chatkit.attachments.links import LinkGrant, LinkSigner
from service.chatkit.attachments.types import SNIFF_BYTES, TypePolicy, media_type, sniff
from service.request_context import RequestContext

UPLOAD_PATH = "/chatkit/api/upload"
CONTENT_PATH = "/chatkit/api/attachments/{attachment_id}/content"
PREVIEW_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# `metadata` keys (kept by the store, never sent to clients) of a record whose bytes a browser
# PUTs straight to the bucket through a signed URL: nobody tells the service when that is done,
# so the record is settled when next loaded; `REFUSED` says why bytes that came were deleted.
BUCKET_UPLOAD, REFUSED = "bucket_upload", "refused"
MAX_NAME_CHARS = 255

UploadCounter = Callable[[str, int | None], None]
"""Told of each upload's outcome (`ok`, or the refusal's code) and its size when stored."""


@dataclass(eq=False, kw_only=True)
class Attachments:
    blobs: Blobs
    """Where the bytes live (local disk or GCS)."""
    policy: TypePolicy
    max_bytes: int
    links: LinkSigner
    """Signs this service's own upload and preview links; its `max_age_seconds` is also how
    long signed GCS URLs stay valid."""
    public_url: str | None

    @property
    def backend(self) -> str:
        return self.blobs.backend

    @property
    def link_seconds(self) -> int:
        return self.links.max_age_seconds

    def key(self, tenant_id: str, attachment_id: str) -> str:
        return object_key(tenant_id, attachment_id)

    # --- limits ------------------------------------------------------------------------------

    def check_declared(self, size: int | None, mime_type: str) -> None:
        """Refuse early what the client says it will send (the bytes are checked again)."""
        if size is not None and size > self.max_bytes:
            raise UploadTooLarge(self._too_large())
        self.policy.check(mime_type)

    def _too_large(self) -> str:
        return f"files may be at most {self.max_bytes} bytes"

    def _judge(self, head: bytes, declared_type: str) -> str:
        """The type of a file starting with `head`, if it is allowed (and not empty)."""
        if not head:
            raise BadUpload("the file is empty")
        mime_type = sniff(head[:SNIFF_BYTES], declared_type)
        self.policy.check(mime_type)
        return mime_type

    # --- bytes in ----------------------------------------------------------------------------

    async def ingest(
        self,
        context: RequestContext,
        attachment_id: str,
        name: str,
        declared_type: str,
        chunks: AsyncIterator[bytes],
    ) -> BlobInfo:
        """Store the upload; its size and the type judged from its bytes."""
        head = bytearray()
        async for chunk in chunks:
            head.extend(chunk)
            if len(head) >= SNIFF_BYTES:
                break
        mime_type = self._judge(bytes(head), declared_type)
        size = len(head)
        if size > self.max_bytes:
            raise UploadTooLarge(self._too_large())
        writer = await self.blobs.writer(
            self.key(context.tenant_id, attachment_id), mime_type, name
        )
        try:
            await writer.write(bytes(head))
            del head
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise UploadTooLarge(self._too_large())
                await writer.write(chunk)
            await writer.commit()
        except BaseException:
            # A cut upload cancels this task; the clean-up must finish even if cancelled again.
            await asyncio.shield(writer.abort())
            raise
        return BlobInfo(size=size, content_type=mime_type)

    async def settle(
        self,
        context: RequestContext,
        attachment: Attachment,
        counted: UploadCounter | None = None,
    ) -> Attachment | None:
        """A record whose bytes were PUT straight to the bucket, once they are there: checked
        like a direct upload (size, type from the bytes) and without its upload descriptor.
        None while nothing arrived. Bytes that fail the checks are deleted and the record says
        why (`NotUploaded` then carries the reason). `counted` is told the outcome (`ok` or the
        refusal's code) and the size, as the direct upload route counts its uploads."""
        key = self.key(context.tenant_id, attachment.id)
        info = await self.blobs.info(key)
        if info is None:
            return None
        try:
            if info.size > self.max_bytes:
                raise UploadTooLarge(self._too_large())
            try:
                head = await self.blobs.head(key, SNIFF_BYTES)
            except FileNotFoundError:
                return None
            mime_type = self._judge(head, attachment.mime_type)
        except (UploadTooLarge, UnsupportedFileType, BadUpload) as refused:
            await self.blobs.delete(key)
            if counted is not None:
                counted(refused.code, None)
            metadata = {**(attachment.metadata or {}), REFUSED: refused.message}
            return attachment.model_copy(update={"metadata": metadata})
        metadata = {k: v for k, v in (attachment.metadata or {}).items() if k != BUCKET_UPLOAD}
        if counted is not None:
            counted("ok", info.size)
        return await self.record(
            context,
            attachment.id,
            attachment.name,
            mime_type,
            thread_id=attachment.thread_id,
            metadata=metadata or None,
        )

    # --- records -----------------------------------------------------------------------------

    async def record(
        self,
        context: RequestContext,
        attachment_id: str,
        name: str,
        mime_type: str,
        *,
        upload: AttachmentUploadDescriptor | None = None,
        thread_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Attachment:
        fields: dict[str, Any] = {
            "id": attachment_id,
            "name": clean_name(name),
            "mime_type": mime_type,
            "upload_descriptor": upload,
            "thread_id": thread_id,
            "metadata": metadata,
        }
        if media_type(mime_type) in PREVIEW_TYPES:
            url = await self.preview_url(context, attachment_id, mime_type)
            return ImageAttachment(**fields, preview_url=AnyUrl(url))
        return FileAttachment(**fields)

    async def new_upload(
        self, context: RequestContext, attachment_id: str, name: str, mime_type: str
    ) -> Attachment:
        """The record `attachments.create` answers: a signed PUT straight to the bucket when
        the storage can sign one, else this service's own upload link."""
        mime_type = media_type(mime_type)
        signed = await self.blobs.upload_url(
            self.key(context.tenant_id, attachment_id), mime_type, self.max_bytes, self.link_seconds
        )
        if signed is None:
            upload = self.upload_descriptor(context, attachment_id)
            metadata = None
        else:
            upload = AttachmentUploadDescriptor(
                url=AnyUrl(signed.url), method="PUT", headers=signed.headers
            )
            metadata = {BUCKET_UPLOAD: True}
        return await self.record(
            context, attachment_id, name, mime_type, upload=upload, metadata=metadata
        )

    async def fresh(self, context: RequestContext, attachment: Attachment) -> Attachment:
        """The record with a preview URL valid from now on (previews expire)."""
        if not isinstance(attachment, ImageAttachment):
            return attachment
        url = await self.preview_url(context, attachment.id, attachment.mime_type)
        return attachment.model_copy(update={"preview_url": AnyUrl(url)})

    def upload_descriptor(
        self, context: RequestContext, attachment_id: str
    ) -> AttachmentUploadDescriptor:
        token = self.links.sign("upload", _grant(context, attachment_id))
        url = (
            f"{self._base_url()}{UPLOAD_PATH}/{quote(attachment_id)}?{urlencode({'token': token})}"
        )
        return AttachmentUploadDescriptor(url=AnyUrl(url), method="PUT", headers={})

    async def preview_url(self, context: RequestContext, attachment_id: str, mime_type: str) -> str:
        """A signed GCS GET URL when the storage can sign one, else this service's content
        route with an expiring token; both valid for `link_seconds`."""
        signed = await self.blobs.download_url(
            self.key(context.tenant_id, attachment_id),
            media_type(mime_type),
            "inline",
            self.link_seconds,
        )
        return signed or self.content_url(context, attachment_id)

    def content_url(self, context: RequestContext, attachment_id: str) -> str:
        token = self.links.sign("download", _grant(context, attachment_id))
        path = CONTENT_PATH.format(attachment_id=quote(attachment_id))
        return f"{self._base_url()}{path}?{urlencode({'token': token})}"

    def _base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        if has_request_context():
            return request.host_url.rstrip("/")
        return "http://localhost"

    # --- bytes out ---------------------------------------------------------------------------

    async def read_all(self, tenant_id: str, attachment_id: str) -> bytes | None:
        """The whole file (at most `max_bytes`), or None when its bytes never arrived."""
        data = bytearray()
        try:
            async for chunk in self.blobs.read(self.key(tenant_id, attachment_id)):
                data.extend(chunk)
        except FileNotFoundError:
            return None
        return bytes(data)

    async def delete_bytes(self, tenant_id: str, attachment_id: str) -> None:
        await self.blobs.delete(self.key(tenant_id, attachment_id))


def _grant(context: RequestContext, attachment_id: str) -> LinkGrant:
    return LinkGrant(context.tenant_id, context.user_id, attachment_id)


def clean_name(name: str) -> str:
    """The file's own name, without a client's path or control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:MAX_NAME_CHARS] or "file"
