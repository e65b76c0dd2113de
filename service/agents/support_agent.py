"""The default assistant: instructions that know who is asking, and the default tools."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from agents import (
    Agent,
    FunctionToolResult,
    RunContextWrapper,
    Tool,
    ToolsToFinalOutputResult,
)

from service.agents.context import ToolContext
from service.agents.factory import ModelHandle

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, accurate assistant embedded in a product's chat window. "
    "Answer concisely and use Markdown when it helps readability. "
    "If you are unsure, say so instead of guessing. Use your tools when a question needs "
    "information you do not have."
)


def build_support_agent(
    handle: ModelHandle,
    *,
    instructions: str | None = None,
    tools: Sequence[Tool] = (),
) -> Agent[ToolContext]:
    base = instructions or DEFAULT_INSTRUCTIONS

    def personalised(ctx: RunContextWrapper[ToolContext], _agent: Agent[ToolContext]) -> str:
        who = ctx.context
        lines = [
            base,
            "",
            f"Today is {datetime.now(UTC):%A %d %B %Y} (UTC).",
            f"You are serving workspace '{who.tenant_id}'; the user's role is '{who.role}'.",
        ]
        if who.locale:
            lines.append(
                f"The user's interface language is {who.locale}: reply in that language "
                "unless they write in another one."
            )
        return "\n".join(lines)

    if handle.model is None:
        raise ValueError("cannot build an agent without a model: " + str(handle.unavailable_reason))
    return Agent[ToolContext](
        name="assistant",
        instructions=personalised,
        model=handle.model,
        model_settings=handle.model_settings,
        tools=list(tools),
        tool_use_behavior=stop_for_client_tools,
    )


def stop_for_client_tools(
    ctx: RunContextWrapper[ToolContext], _results: list[FunctionToolResult]
) -> ToolsToFinalOutputResult:
    """A client tool that was asked for ends the run: the app runs it, and its output starts
    the next one. Otherwise (no client tool, or one that refused) the model carries on."""
    if ctx.context.client_tool_requested():
        return ToolsToFinalOutputResult(is_final_output=True, final_output="")
    return ToolsToFinalOutputResult(is_final_output=False)
