"""Thread items -> model input, fixing what the SDK's default converter gets wrong for us."""

from __future__ import annotations

import json

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import AssistantMessageItem, UserMessageTagContent
from openai.types.responses import EasyInputMessageParam, ResponseInputTextParam


class HistoryConverter(ThreadItemConverter):
    async def assistant_message_to_input(
        self, item: AssistantMessageItem
    ) -> TResponseInputItem | list[TResponseInputItem] | None:
        # The SDK replays assistant turns as `output_text` parts, which the Chat Completions
        # converter rejects ("Unknown content"), failing every second turn on Gemini and
        # OpenAI-compatible servers. Plain text works with both APIs.
        text = "\n\n".join(part.text for part in item.content if part.text)
        if not text:
            return None
        return EasyInputMessageParam(type="message", role="assistant", content=text)

    async def tag_to_message_content(self, tag: UserMessageTagContent) -> ResponseInputTextParam:
        details = json.dumps(tag.data, ensure_ascii=False, default=str) if tag.data else "{}"
        return ResponseInputTextParam(
            type="input_text", text=f"@{tag.text} refers to {tag.group or 'an entity'}: {details}"
        )
