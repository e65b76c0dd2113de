"""The attachments service: takes uploads in, hands bytes out, builds the Attachment records.

Both upload strategies end in `ingest`: the type is judged from the first bytes, the size is
counted as the bytes stream to storage, and the object appears only when all of it arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from chatkit.types import (
    Attachment,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
)
from pydantic import AnyUrl
from quart import has_request_context, request

from service.chatkit.attachments.blobs import Blobs, object_key
from service.chatkit.attachments.errors import BadUpload, UploadTooLarge
from service.chatkit.attachments.links import LinkGrant, LinkSigner
from service.chatkit.attachments.types import SNIFF_BYTES, TypePolicy, media_type, sniff
from service.request_context import RequestContext

UPLOAD_PATH = "/chatkit/api/upload"
CONTENT_PATH = "/chatkit/api/attachments/{attachment_id}/content"
PREVIEW_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_NAME_CHARS = 255


@dataclass(frozen=True, slots=True)
class Stored:
    mime_type: str
    size: int


class Attachments:
    def __init__(
        self,
        blobs: Blobs,
        *,
        policy: TypePolicy,
        max_bytes: int,
        links: LinkSigner,
        public_url: str | None,
    ) -> None:
        self.blobs = blobs
        self.policy = policy
        self.max_bytes = max_bytes
        self.links = links
        self.public_url = public_url

    @property
    def backend(self) -> str:
        return self.blobs.backend

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

    # --- bytes in ----------------------------------------------------------------------------

    async def ingest(
        self,
        context: RequestContext,
        attachment_id: str,
        name: str,
        declared_type: str,
        chunks: AsyncIterator[bytes],
    ) -> Stored:
        head = bytearray()
        async for chunk in chunks:
            head.extend(chunk)
            if len(head) >= SNIFF_BYTES:
                break
        if not head:
            raise BadUpload("the file is empty")
        mime_type = sniff(bytes(head[:SNIFF_BYTES]), declared_type)
        self.policy.check(mime_type)
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
        return Stored(mime_type, size)

    # --- records -----------------------------------------------------------------------------

    def record(
        self,
        context: RequestContext,
        attachment_id: str,
        name: str,
        mime_type: str,
        *,
        upload: AttachmentUploadDescriptor | None = None,
        thread_id: str | None = None,
    ) -> Attachment:
        name = clean_name(name)
        if media_type(mime_type) in PREVIEW_TYPES:
            return ImageAttachment(
                id=attachment_id,
                name=name,
                mime_type=mime_type,
                upload_descriptor=upload,
                thread_id=thread_id,
                preview_url=AnyUrl(self.content_url(context, attachment_id)),
            )
        return FileAttachment(
            id=attachment_id,
            name=name,
            mime_type=mime_type,
            upload_descriptor=upload,
            thread_id=thread_id,
        )

    def upload_descriptor(
        self, context: RequestContext, attachment_id: str
    ) -> AttachmentUploadDescriptor:
        token = self.links.sign("upload", _grant(context, attachment_id))
        url = (
            f"{self._base_url()}{UPLOAD_PATH}/{quote(attachment_id)}?{urlencode({'token': token})}"
        )
        return AttachmentUploadDescriptor(url=AnyUrl(url), method="PUT", headers={})

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
