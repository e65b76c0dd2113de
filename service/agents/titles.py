"""Short thread titles: asked of the model, with a plain fallback when it cannot answer."""

from __future__ import annotations

import asyncio
import logging

from agents import Agent, RunHooks, Runner

from service.agents.context import ToolContext
from service.agents.factory import ModelHandle

logger = logging.getLogger(__name__)

TITLE_INSTRUCTIONS = (
    "You write conversation titles. Reply with a title of at most six words for the "
    "conversation that starts with the user's message. Reply with the title only: no quotes, "
    "no trailing punctuation, in the language of the message."
)
MAX_TITLE_LENGTH = 80
_MARKDOWN = str.maketrans("", "", "*#`")


def fallback_title(text: str, max_words: int = 8) -> str:
    words = text.split()
    title = " ".join(words[:max_words])
    if len(words) > max_words:
        title += "…"
    return clean_title(title) or "New conversation"


def clean_title(raw: str) -> str:
    first_line = raw.strip().splitlines()[0] if raw.strip() else ""
    title = " ".join(first_line.translate(_MARKDOWN).split())
    title = title.removeprefix("Title:").strip("\"'“”‘’ ").rstrip(".")  # noqa: RUF001
    if len(title) > MAX_TITLE_LENGTH:
        title = title[: MAX_TITLE_LENGTH - 1].rstrip() + "…"
    return title


class TitleWriter:
    def __init__(self, handle: ModelHandle, *, timeout: float) -> None:
        self._timeout = timeout
        self._agent: Agent[ToolContext] | None = None
        if handle.model is not None:
            self._agent = Agent[ToolContext](
                name="title-writer",
                instructions=TITLE_INSTRUCTIONS,
                model=handle.model,
                model_settings=handle.model_settings,
            )

    async def title_for(
        self,
        first_message: str,
        context: ToolContext | None = None,
        hooks: RunHooks[ToolContext] | None = None,
    ) -> str:
        """`context` and `hooks` are the turn's: the title call counts like the turn's own calls
        (a tenant's token budget, say)."""
        if self._agent is not None and first_message.strip():
            try:
                run = Runner.run(
                    self._agent, first_message[:2000], context=context, max_turns=1, hooks=hooks
                )
                result = await asyncio.wait_for(run, self._timeout)
                title = clean_title(str(result.final_output or ""))
                if title:
                    return title
            except Exception as exc:  # the conversation matters more than its title
                logger.info(
                    "title generation failed, using the first words: %s", type(exc).__name__
                )
        return fallback_title(first_message)
