"""Deleting a thread deletes its attachments' bytes and records too."""

from __future__ import annotations

import logging

from chatkit.store import NotFoundError
from chatkit.types import UserMessageItem

from service.chatkit.attachments.errors import StorageUnavailable
from service.chatkit.attachments.service import Attachments
from service.chatkit.store.base import ChatStore, StoreUnavailableError
from service.request_context import RequestContext

logger = logging.getLogger(__name__)

PAGE = 100


async def attachment_ids_of_thread(
    store: ChatStore, thread_id: str, context: RequestContext
) -> list[str]:
    ids: list[str] = []
    after: str | None = None
    while True:
        page = await store.load_thread_items(thread_id, after, PAGE, "asc", context)
        for item in page.data:
            if isinstance(item, UserMessageItem):
                ids.extend(attachment.id for attachment in item.attachments)
        if not page.has_more or page.after is None:
            return ids
        after = page.after


async def delete_attachments(
    attachments: Attachments, store: ChatStore, ids: list[str], context: RequestContext
) -> None:
    """Bytes first, then the record: a failure leaves a record (retried by `prune`, which
    deletes unattached records and their bytes), never bytes nobody points at."""
    for attachment_id in ids:
        try:
            await attachments.delete_bytes(context.tenant_id, attachment_id)
            await store.delete_attachment(attachment_id, context)
        except NotFoundError:
            continue
        except (StorageUnavailable, StoreUnavailableError):
            logger.warning("an attachment of a deleted thread stays until the next prune")
