"""The ChatKit `AttachmentStore`: two-phase `attachments.create` and the bytes of a delete."""

from __future__ import annotations

from chatkit.store import AttachmentStore
from chatkit.types import Attachment, AttachmentCreateParams

from service.chatkit.attachments.service import Attachments
from service.chatkit.store.base import new_id
from service.request_context import RequestContext


class FileAttachmentStore(AttachmentStore[RequestContext]):
    def __init__(self, attachments: Attachments) -> None:
        self.attachments = attachments

    def generate_attachment_id(self, mime_type: str, context: RequestContext) -> str:
        return new_id("attachment")

    async def create_attachment(
        self, input: AttachmentCreateParams, context: RequestContext
    ) -> Attachment:
        """A record whose `upload_descriptor` is a signed PUT straight to the bucket, or this
        service's upload URL; the type is checked again from the bytes when they arrive."""
        self.attachments.check_declared(input.size, input.mime_type)
        attachment_id = self.generate_attachment_id(input.mime_type, context)
        return await self.attachments.new_upload(
            context, attachment_id, input.name, input.mime_type
        )

    async def delete_attachment(self, attachment_id: str, context: RequestContext) -> None:
        # The server checked the record exists and is the user's before this runs.
        await self.attachments.delete_bytes(context.tenant_id, attachment_id)
