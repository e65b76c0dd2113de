"""Retention: how `prune` walks its batches, and ages written as `30d`, `12h` or `90m`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from service.chatkit.store.base import AttachmentsPruned, PrunedAttachment, PruneReport

PruneBatch = Callable[[], Awaitable[tuple[PruneReport, list[PrunedAttachment]]]]
"""Deletes (and commits) one batch; an empty report means nothing was left to delete."""

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhm])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m` (a positive number and one unit: days, hours, minutes)."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age like 30d, 12h or 90m")
    age = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
    if age <= timedelta(0):
        raise ValueError(f"{text!r}: the age must be more than zero")
    return age


async def run_batches(
    batches: Sequence[PruneBatch], on_attachments: AttachmentsPruned | None
) -> PruneReport:
    """Run each kind of batch until it finds nothing more; report the sum."""
    report = PruneReport()
    for next_batch in batches:
        while True:
            batch, attachments = await next_batch()
            if batch.threads == 0 and not batch.attachment_ids:
                break
            report += PruneReport(batches=1) + batch
            if on_attachments is not None and attachments:
                await on_attachments(attachments)
    return report
