"""Function tools the default agent may call. Each states whether it only reads or changes
something, so reviewers can see at a glance what the assistant is able to do."""

from agents import FunctionTool

from service.agents.tools.clock import current_datetime

DEFAULT_TOOLS: list[FunctionTool] = [current_datetime]

__all__ = ["DEFAULT_TOOLS"]
