"""Metered function tools inside real Agents SDK runs: ok, a tool that raises, and the context."""

from __future__ import annotations

from agents import Agent, RunConfig, RunContextWrapper, Runner, function_tool

from service.agents.context import ToolContext
from service.agents.tools import DEFAULT_TOOLS
from service.observability.metrics import Metrics
from service.observability.tool_calls import metered_tools, report_tool_failure
from tests.support.scripted_model import ScriptedModel, message, tool_call


@function_tool(failure_error_function=report_tool_failure)
async def lookup_order(ctx: RunContextWrapper[ToolContext], order_id: str) -> str:
    """Find an order (test tool that fails for unknown orders).

    Args:
        order_id: The order number.
    """
    if order_id != "42":
        raise LookupError(f"no order {order_id} for tenant {ctx.context.tenant_id}")
    return f"order 42 of {ctx.context.user_id}: shipped"


async def run(model: ScriptedModel, metrics: Metrics) -> str:
    agent = Agent[ToolContext](
        name="test", model=model, tools=metered_tools([lookup_order, *DEFAULT_TOOLS], metrics)
    )
    result = await Runner.run(
        agent,
        "where is my order?",
        context=ToolContext("ann", "acme"),
        run_config=RunConfig(tracing_disabled=True),
    )
    return str(result.final_output)


def calls(metrics: Metrics, tool: str, outcome: str) -> float | None:
    return metrics.registry.get_sample_value(
        "chatkit_tool_calls_total", {"tool": tool, "outcome": outcome}
    )


async def test_a_successful_call_is_ok_and_sees_the_tool_context() -> None:
    metrics = Metrics()
    model = ScriptedModel(tool_call("lookup_order", '{"order_id": "42"}'), message("Shipped."))
    assert await run(model, metrics) == "Shipped."
    assert "order 42 of ann: shipped" in str(model.inputs[1])  # the tool got our ToolContext
    assert calls(metrics, "lookup_order", "ok") == 1
    assert calls(metrics, "lookup_order", "error") is None
    duration = metrics.registry.get_sample_value(
        "chatkit_tool_call_duration_seconds_count", {"tool": "lookup_order"}
    )
    assert duration == 1


async def test_a_tool_that_raises_is_an_error_and_the_model_is_told() -> None:
    metrics = Metrics()
    model = ScriptedModel(tool_call("lookup_order", '{"order_id": "7"}'), message("Not found."))
    assert await run(model, metrics) == "Not found."
    assert "An error occurred while running the tool" in str(model.inputs[1])  # model is told
    assert calls(metrics, "lookup_order", "error") == 1
    assert calls(metrics, "lookup_order", "ok") is None


async def test_an_unmetered_tool_with_the_handler_still_tells_the_model() -> None:
    model = ScriptedModel(tool_call("lookup_order", '{"order_id": "7"}'), message("Not found."))
    agent = Agent[ToolContext](name="test", model=model, tools=[lookup_order])
    result = await Runner.run(
        agent,
        "where?",
        context=ToolContext("ann", "acme"),
        run_config=RunConfig(tracing_disabled=True),
    )
    assert result.final_output == "Not found."
    assert "An error occurred while running the tool" in str(model.inputs[1])
    assert "no order 7" not in str(model.inputs[1])  # the exception's text stays private


async def test_counts_follow_each_tool_separately() -> None:
    metrics = Metrics()
    model = ScriptedModel(
        tool_call("current_datetime", '{"timezone": "UTC"}'),
        tool_call("lookup_order", '{"order_id": "8"}'),
        message("Done."),
    )
    await run(model, metrics)
    assert calls(metrics, "current_datetime", "ok") == 1
    assert calls(metrics, "lookup_order", "error") == 1
