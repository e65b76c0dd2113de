"""Attachments are current whenever the Store hands them out.

The SDK returns attachments to the client from three Store calls: `load_attachment` (a new
message's attachments, streamed back in `thread.item.done`), `load_thread_items` (`items.list`,
`threads.get_by_id`) and `load_item`. `keep_attachments_fresh` wraps exactly those methods on the
store instance (public Store contract only, like the metrics wrapper):

- image previews expire (`ATTACHMENTS_LINK_SECONDS`), so each record gets a preview URL signed
  now; an expired URL never reaches the client;
- a two-phase upload that went straight to the bucket (signed PUT) is settled the first time it
  is loaded after its bytes arrived: checked like a direct upload, its descriptor cleared, saved;
- a message (a streamed turn) using such an attachment before its bytes arrived, or whose bytes
  were refused, gets a 409 with a one-line reason instead of a model call on nothing.
"""

from __future__ import annotations

from chatkit.types import Attachment, Page, ThreadItem, UserMessageItem

from service.chatkit.attachments.errors import NotUploaded
from service.chatkit.attachments.service import (
    BUCKET_UPLOAD,
    REFUSED,
    Attachments,
    UploadCounter,
)
from service.chatkit.store.base import ChatStore
from service.request_context import RequestContext


def keep_attachments_fresh(
    store: ChatStore, attachments: Attachments, counted: UploadCounter | None = None
) -> ChatStore:
    """`counted`: told of each bucket upload once it is checked (the upload metrics)."""
    load_attachment = store.load_attachment
    load_thread_items = store.load_thread_items
    load_item = store.load_item
    save_attachment = store.save_attachment

    async def settled(attachment: Attachment, context: RequestContext) -> Attachment:
        metadata = attachment.metadata or {}
        if not metadata.get(REFUSED):
            done = await attachments.settle(context, attachment, counted)
            if done is not None:
                await save_attachment(done, context)
                attachment, metadata = done, done.metadata or {}
        if attachment.upload_descriptor is not None and context.turn is not None:
            reason = metadata.get(REFUSED)
            raise NotUploaded(
                f"the file {attachment.name!r} was refused: {reason}"
                if reason
                else f"the file {attachment.name!r} has not been uploaded yet; wait for the "
                "upload to finish or attach it again"
            )
        return attachment

    async def fresh_attachment(attachment_id: str, context: RequestContext) -> Attachment:
        attachment = await load_attachment(attachment_id, context)
        if attachment.upload_descriptor is not None and (attachment.metadata or {}).get(
            BUCKET_UPLOAD
        ):
            attachment = await settled(attachment, context)
        return await attachments.fresh(context, attachment)

    async def fresh_item(item: ThreadItem, context: RequestContext) -> ThreadItem:
        if isinstance(item, UserMessageItem) and item.attachments:
            item.attachments = [await attachments.fresh(context, a) for a in item.attachments]
        return item

    async def fresh_items(
        thread_id: str, after: str | None, limit: int, order: str, context: RequestContext
    ) -> Page[ThreadItem]:
        page = await load_thread_items(thread_id, after, limit, order, context)
        page.data = [await fresh_item(item, context) for item in page.data]
        return page

    async def fresh_loaded_item(
        thread_id: str, item_id: str, context: RequestContext
    ) -> ThreadItem:
        return await fresh_item(await load_item(thread_id, item_id, context), context)

    # Instance attributes shadow the methods (mypy sees assignments to methods as errors).
    setattr(store, "load_attachment", fresh_attachment)  # noqa: B010
    setattr(store, "load_thread_items", fresh_items)  # noqa: B010
    setattr(store, "load_item", fresh_loaded_item)  # noqa: B010
    return store
