"""Chat Completions models give every assistant message `__fake_id__`: each gets its own id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from itertools import count

from agents.models.fake_id import FAKE_RESPONSES_ID
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadStreamEvent,
)

from service.chatkit.ids import rewrite_fake_ids


def message(item_id: str, text: str = "") -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id,
        thread_id="thr_1",
        created_at=datetime(2026, 1, 1),
        content=[AssistantMessageContent(text=text)] if text else [],
    )


async def events_of(*events: ThreadStreamEvent) -> AsyncIterator[ThreadStreamEvent]:
    for event in events:
        yield event


async def test_each_fake_id_message_gets_its_own_id() -> None:
    numbers = count(1)
    stream = events_of(
        ThreadItemAddedEvent(item=message(FAKE_RESPONSES_ID)),
        ThreadItemUpdatedEvent(
            item_id=FAKE_RESPONSES_ID,
            update=AssistantMessageContentPartTextDelta(content_index=0, delta="a"),
        ),
        ThreadItemDoneEvent(item=message(FAKE_RESPONSES_ID, "a")),
        ThreadItemAddedEvent(item=message(FAKE_RESPONSES_ID)),
        ThreadItemDoneEvent(item=message(FAKE_RESPONSES_ID, "b")),
        ThreadItemDoneEvent(item=message("msg_real", "c")),
    )
    out = [e async for e in rewrite_fake_ids(stream, lambda: f"msg_{next(numbers)}")]
    ids = [e.item.id if hasattr(e, "item") else e.item_id for e in out]
    assert ids == ["msg_1", "msg_1", "msg_1", "msg_2", "msg_2", "msg_real"]
