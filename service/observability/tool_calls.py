"""Function tools that count and time their calls (`chatkit_tool_calls_total`, `..._duration`).

A tool "errors" when its function raises. The SDK then tells the model the tool failed instead
of failing the run, so the wrapper sees either the exception (tools without a failure handler)
or the SDK's note that its default failure message answered the call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext

from service.observability.metrics import Metrics

# Set on the call's ToolContext when the SDK's default failure formatter produced the result;
# the SDK reads and clears it after the call returns (agents 0.24, tool.py). A test guards it.
_SDK_DEFAULT_FAILURE_FLAG = "_function_tool_default_failure_handled"


def metered_tools(tools: Sequence[FunctionTool], metrics: Metrics) -> list[FunctionTool]:
    return [metered_tool(tool, metrics) for tool in tools]


def metered_tool(tool: FunctionTool, metrics: Metrics) -> FunctionTool:
    invoke = tool.on_invoke_tool
    calls = metrics.tool_calls
    duration = metrics.tool_call_duration.labels(tool.name)

    # The SDK reads this signature: a `ToolContext` first parameter gets the full tool context.
    async def timed_invoke(ctx: ToolContext[Any], arguments: str) -> Any:
        started = time.perf_counter()
        try:
            result = await invoke(ctx, arguments)
        except asyncio.CancelledError:
            raise  # the turn was stopped: neither ok nor error
        except Exception:
            duration.observe(time.perf_counter() - started)
            calls.labels(tool.name, "error").inc()
            raise
        duration.observe(time.perf_counter() - started)
        failed = bool(getattr(ctx, _SDK_DEFAULT_FAILURE_FLAG, False))
        calls.labels(tool.name, "error" if failed else "ok").inc()
        return result

    return dataclasses.replace(tool, on_invoke_tool=timed_invoke)
