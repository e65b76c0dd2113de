"""Gives real ids to assistant items that Chat Completions models all call `__fake_id__`.

Without this, every assistant message in a thread shares one id and overwrites the previous
one in the store and in the UI.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from agents.models.fake_id import FAKE_RESPONSES_ID
from chatkit.types import (
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemReplacedEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)


async def rewrite_fake_ids(
    events: AsyncIterator[ThreadStreamEvent], new_id: Callable[[], str]
) -> AsyncIterator[ThreadStreamEvent]:
    current: str | None = None  # the id standing in for the fake id of the item in progress
    last: str | None = None

    def assigned() -> str:
        nonlocal current
        if current is None:
            current = new_id()
        return current

    async for event in events:
        if isinstance(event, ThreadItemAddedEvent) and event.item.id == FAKE_RESPONSES_ID:
            current = new_id()
            event = ThreadItemAddedEvent(item=event.item.model_copy(update={"id": current}))
        elif isinstance(event, ThreadItemUpdatedEvent) and event.item_id == FAKE_RESPONSES_ID:
            event = event.model_copy(update={"item_id": assigned()})
        elif isinstance(event, ThreadItemDoneEvent) and event.item.id == FAKE_RESPONSES_ID:
            last = assigned()
            event = ThreadItemDoneEvent(item=event.item.model_copy(update={"id": last}))
            current = None
        elif isinstance(event, ThreadItemReplacedEvent) and event.item.id == FAKE_RESPONSES_ID:
            event = ThreadItemReplacedEvent(
                item=event.item.model_copy(update={"id": current or last or new_id()})
            )
        elif isinstance(event, ThreadItemRemovedEvent) and event.item_id == FAKE_RESPONSES_ID:
            event = event.model_copy(update={"item_id": current or last or new_id()})
        yield event
