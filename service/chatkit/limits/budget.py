"""Charges each model call of an agent run to the tenant's daily token budget.

An Agents SDK `RunHooks`: the run hands it the tool context (who is asking) with every model
call, so the budget learns the tenant and the usage explicitly. Before each call it checks the
budget; a turn that used it up ends with a ChatKit error event that says so.
"""

from __future__ import annotations

from agents import Agent, ModelResponse, RunContextWrapper, RunHooks, TResponseInputItem

from service.agents.context import ToolContext
from service.chatkit.limits.abuse import AbuseLimits


class TokenBudgetHooks(RunHooks[ToolContext]):
    def __init__(self, limits: AbuseLimits) -> None:
        self._limits = limits

    async def on_llm_start(
        self,
        context: RunContextWrapper[ToolContext],
        agent: Agent[ToolContext],
        system_prompt: str | None,
        input_items: list[TResponseInputItem],
    ) -> None:
        await self._limits.check_budget(context.context.tenant_id)

    async def on_llm_end(
        self,
        context: RunContextWrapper[ToolContext],
        agent: Agent[ToolContext],
        response: ModelResponse,
    ) -> None:
        await self._limits.charge_tokens(context.context.tenant_id, response.usage.total_tokens)
