"""Thread items -> model input, fixing what the SDK's default converter gets wrong for us."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable

from agents import TResponseInputItem
from chatkit.agents import ThreadItemConverter
from chatkit.types import AssistantMessageItem, Attachment, UserMessageTagContent
from openai.types.responses import (
    EasyInputMessageParam,
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
)

from service.chatkit.attachments.types import is_text_type, media_type

AttachmentBytes = Callable[[Attachment], Awaitable[bytes | None]]
"""The bytes of one of the user's attachments, or None when they never arrived."""

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
FILE_TYPES = ("application/pdf",)
MAX_TEXT_CHARS = 100_000
"""Text files longer than this reach the model cut, with a note saying so."""

ContentPart = ResponseInputTextParam | ResponseInputImageParam | ResponseInputFileParam


class HistoryConverter(ThreadItemConverter):
    def __init__(self, attachment_bytes: AttachmentBytes | None = None) -> None:
        """`attachment_bytes`: reads the current user's files (None: uploads are off)."""
        self.attachment_bytes = attachment_bytes

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

    async def attachment_to_message_content(self, attachment: Attachment) -> ContentPart:
        """Images as image input and PDFs as file input (both APIs take them inline, as data
        URLs), text files as text; anything else, or a file whose bytes are missing, as a
        note the model can pass on instead of a failed turn."""
        kind = media_type(attachment.mime_type)
        data = await self.attachment_bytes(attachment) if self.attachment_bytes else None
        if data is None:
            return _note(
                f"The user attached {attachment.name!r}, but its content is not available."
            )
        if kind in IMAGE_TYPES:
            return ResponseInputImageParam(
                type="input_image", image_url=_data_url(kind, data), detail="auto"
            )
        if kind in FILE_TYPES:
            return ResponseInputFileParam(
                type="input_file", filename=attachment.name, file_data=_data_url(kind, data)
            )
        if is_text_type(kind):
            text = data.decode("utf-8", errors="replace")
            cut = len(text) > MAX_TEXT_CHARS
            return _note(
                f"The user attached the file {attachment.name!r} ({kind}):\n"
                + text[:MAX_TEXT_CHARS]
                + ("\n[The file continues; only its beginning is shown.]" if cut else "")
            )
        return _note(
            f"The user attached {attachment.name!r} ({kind}), a kind of file this assistant "
            "cannot read. Say so, and suggest sending it as PDF, text or an image."
        )


def _data_url(mime_type: str, data: bytes) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(data).decode()}"


def _note(text: str) -> ResponseInputTextParam:
    return ResponseInputTextParam(type="input_text", text=text)
