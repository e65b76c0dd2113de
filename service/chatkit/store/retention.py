"""Retention: what `prune` reports, how it walks its batches, and ages like `30d` or `12h`."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from chatkit.types import Attachment


@dataclass(frozen=True, slots=True)
class PrunedAttachment:
    """An attachment record that `prune` deleted, with its owner (to delete the bytes too)."""

    attachment: Attachment
    tenant_id: str
    user_id: str


AttachmentsPruned = Callable[[Sequence[PrunedAttachment]], Awaitable[None]]
"""Called after each committed batch of `prune` with the attachment records it deleted."""


@dataclass(frozen=True, slots=True)
class PruneReport:
    threads: int = 0
    items: int = 0
    feedback: int = 0
    attachment_ids: tuple[str, ...] = ()
    batches: int = 0

    def __add__(self, other: PruneReport) -> PruneReport:
        return PruneReport(
            threads=self.threads + other.threads,
            items=self.items + other.items,
            feedback=self.feedback + other.feedback,
            attachment_ids=self.attachment_ids + other.attachment_ids,
            batches=self.batches + other.batches,
        )


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
            if batch == PruneReport():  # nothing was left to delete
                break
            report += PruneReport(batches=1) + batch
            if on_attachments is not None and attachments:
                await on_attachments(attachments)
    return report
