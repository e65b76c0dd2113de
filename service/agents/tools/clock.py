"""Read-only: the current date and time, so the assistant never guesses "today"."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agents import RunContextWrapper, function_tool

from service.agents.context import ToolContext
from service.observability.tool_calls import report_tool_failure


@function_tool(failure_error_function=report_tool_failure)
async def current_datetime(ctx: RunContextWrapper[ToolContext], timezone: str = "UTC") -> str:
    """Return the current date and time.

    Args:
        timezone: An IANA time zone name such as "Europe/Paris"; UTC when not given.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"Unknown time zone {timezone!r}; use an IANA name such as 'Europe/Paris'."
    now = datetime.now(UTC).astimezone(zone)
    return now.strftime(f"%A %d %B %Y, %H:%M:%S ({timezone}, UTC%z)")
