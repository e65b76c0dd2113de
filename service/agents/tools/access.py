"""Who may do what, and how a refusal reaches the model.

Tenant and role rules live here and in the tools, in code: the prompt only explains them.
"""

from __future__ import annotations

import logging
from typing import Any

from agents import RunContextWrapper
from agents.tool_context import ToolContext as SDKToolContext

from service.observability.tool_calls import report_tool_failure

logger = logging.getLogger(__name__)

PRIVILEGED_ROLES = frozenset({"manager", "admin"})
"""Roles that may see an employee's private fields (salary band, personal phone)."""


class ToolError(Exception):
    """A failure the model may relay to the user: its text says what went wrong, never how
    (no arguments, no secrets, no internals)."""


class ToolRefused(ToolError):
    """The caller may not do this, or the thing asked for is not theirs to see."""


def explain_tool_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """`failure_error_function` for tools that refuse or fail in ways the user should hear
    about: a `ToolError`'s text reaches the model; any other error stays the SDK's generic
    message. Either way the call is counted as failed."""
    generic = report_tool_failure(ctx, error)
    tool = ctx.tool_name if isinstance(ctx, SDKToolContext) else "a tool"
    # Never the arguments (they may hold personal data); a ToolError's text holds none.
    if isinstance(error, ToolError):
        logger.info("tool %s did not complete: %s", tool, error)
        return f"The tool did not complete: {error}"
    logger.error("tool %s failed: %s", tool, type(error).__name__)
    return generic
