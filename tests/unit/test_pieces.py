from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from itertools import count

import pytest
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

from service.agents.titles import clean_title, fallback_title
from service.auth import preferred_locale
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


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, None),
        ("", None),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr-FR"),
        ("en;q=0.5, de-CH", "de-CH"),
        ("*", None),
        ("es;q=0", None),
        ("da, en-gb;q=0.8, en;q=0.7", "da"),
        ("<script>, ja", "ja"),
    ],
)
def test_preferred_locale(header: str | None, locale: str | None) -> None:
    assert preferred_locale(header) == locale


def test_titles_are_short_and_clean() -> None:
    assert clean_title('"Trip planning to Kyoto."\nmore') == "Trip planning to Kyoto"
    assert clean_title("**Budget** review") == "Budget review"
    assert clean_title("Title: Weekly sync") == "Weekly sync"
    assert len(clean_title("x" * 500)) == 80
    assert fallback_title("Can you help me plan a week-long trip to Kyoto in April please") == (
        "Can you help me plan a week-long trip…"
    )
    assert fallback_title("   ") == "New conversation"
