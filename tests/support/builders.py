"""Builders for store-level tests: callers, threads and messages."""

from __future__ import annotations

import uuid
from datetime import datetime

from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageItem,
    InferenceOptions,
    ThreadMetadata,
    UserMessageItem,
    UserMessageTextContent,
)

from service.request_context import RequestContext

ALICE = RequestContext(user_id="alice", tenant_id="acme")
BOB = RequestContext(user_id="bob", tenant_id="acme")
ALICE_ELSEWHERE = RequestContext(user_id="alice", tenant_id="globex")
T0 = datetime(2026, 1, 1, 12, 0, 0)


def thread(
    thread_id: str | None = None, created_at: datetime = T0, **fields: object
) -> ThreadMetadata:
    return ThreadMetadata(
        id=thread_id or f"thr_{uuid.uuid4().hex}", created_at=created_at, **fields
    )


def user_message(
    thread_id: str, text: str, created_at: datetime = T0, item_id: str | None = None
) -> UserMessageItem:
    return UserMessageItem(
        id=item_id or f"msg_{uuid.uuid4().hex}",
        thread_id=thread_id,
        created_at=created_at,
        content=[UserMessageTextContent(text=text)],
        inference_options=InferenceOptions(),
    )


def assistant_message(
    thread_id: str, text: str, created_at: datetime = T0, item_id: str | None = None
) -> AssistantMessageItem:
    return AssistantMessageItem(
        id=item_id or f"msg_{uuid.uuid4().hex}",
        thread_id=thread_id,
        created_at=created_at,
        content=[AssistantMessageContent(text=text)],
    )
