"""The small context tools receive: who is asking, and a way to show progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass


async def _ignore_progress(_text: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ToolContext:
    user_id: str
    tenant_id: str
    role: str = "user"
    locale: str | None = None
    report_progress: Callable[[str], Awaitable[None]] = _ignore_progress
    """Shows a short progress line in the chat UI while a tool works."""
