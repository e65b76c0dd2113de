"""Deletes the bytes of attachment records that `prune` or `delete-user` removed."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from service.chatkit.attachments.errors import StorageUnavailable
from service.chatkit.attachments.factory import create_attachments
from service.chatkit.store.retention import AttachmentsPruned, PrunedAttachment
from service.settings import Settings

logger = logging.getLogger(__name__)


def bytes_deleter(settings: Settings) -> AttachmentsPruned | None:
    """None when uploads are off (no bytes to delete)."""
    attachments = create_attachments(settings)
    if attachments is None:
        return None

    async def delete(pruned: Sequence[PrunedAttachment]) -> None:
        for gone in pruned:
            try:
                await attachments.delete_bytes(gone.tenant_id, gone.attachment.id)
            except StorageUnavailable:
                # Idempotent: the record is gone, so say which object an operator must remove.
                logger.warning(
                    "could not delete the bytes of attachment %s (tenant %s)",
                    gone.attachment.id,
                    gone.tenant_id,
                )

    return delete
