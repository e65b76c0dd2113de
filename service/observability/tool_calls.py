"""Function tools that count and time their calls (`chatkit_tool_calls_total`, `..._duration`).

A tool "errors" when its function raises. Tools declare `report_tool_failure` as their
`failure_error_function` (the Agents SDK's public hook): the SDK calls it with the exception,
it tells the model the tool failed (the SDK's default message) and marks the call so that the
metering wrapper counts it as an error. A tool declared with `failure_error_function=None`
raises through the wrapper, which counts that too. A tool left on the SDK's implicit default
handler would be counted as ok: declare the handler on every tool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from agents import FunctionTool, RunContextWrapper, default_tool_error_function
from agents.tool_context import ToolContext

from service.observability.metrics import Metrics

# id() of the context of each metered call in progress -> whether its function raised. The SDK
# passes the same context object to the wrapper and to the failure handler, and a context lives
# for one call only.
_calls_in_progress: dict[int, bool] = {}


def report_tool_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """`failure_error_function` for our tools: marks the call failed, answers the SDK's default
    message (which keeps the exception's text away from the model)."""
    if id(ctx) in _calls_in_progress:
        _calls_in_progress[id(ctx)] = True
    return default_tool_error_function(ctx, error)


def metered_tools(tools: Sequence[FunctionTool], metrics: Metrics) -> list[FunctionTool]:
    return [metered_tool(tool, metrics) for tool in tools]


def metered_tool(tool: FunctionTool, metrics: Metrics) -> FunctionTool:
    invoke = tool.on_invoke_tool
    calls = metrics.tool_calls
    duration = metrics.tool_call_duration.labels(tool.name)

    # The SDK reads this signature: a `ToolContext` first parameter gets the full tool context.
    async def timed_invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        started = time.perf_counter()
        _calls_in_progress[id(ctx)] = False
        try:
            result = await invoke(ctx, arguments)
        except asyncio.CancelledError:
            raise  # the turn was stopped: neither ok nor error
        except Exception:
            duration.observe(time.perf_counter() - started)
            calls.labels(tool.name, "error").inc()
            raise
        finally:
            failed = _calls_in_progress.pop(id(ctx), False)
        duration.observe(time.perf_counter() - started)
        calls.labels(tool.name, "error" if failed else "ok").inc()
        return result

    return dataclasses.replace(tool, on_invoke_tool=timed_invoke)
