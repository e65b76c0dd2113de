"""Read-only client tool: the user's app opens a ticket (the ChatKit front end runs it).

The agent stops once this tool has asked the app (support_agent.py); the app answers with
`threads.add_client_tool_output`, and the assistant continues with that result.
"""

from __future__ import annotations

from agents import RunContextWrapper, function_tool

from service.agents.context import ToolContext
from service.agents.tools.access import ToolRefused, explain_tool_failure
from service.agents.tools.tickets import NO_SUCH_TICKET, desk_of

CLIENT_TOOL_NAME = "open_ticket"
"""The name the front end's `onClientTool` handler receives."""


@function_tool(failure_error_function=explain_tool_failure)
async def open_ticket_in_app(ctx: RunContextWrapper[ToolContext], ticket_id: str) -> str:
    """Open one of the user's support tickets in their app, when they ask to see it there.

    Args:
        ticket_id: The ticket's id.
    """
    who = ctx.context
    ticket = await desk_of(who).load_ticket(who.tenant_id, ticket_id.strip())
    if ticket is None:
        raise ToolRefused(NO_SUCH_TICKET)
    who.call_client_tool(CLIENT_TOOL_NAME, {"ticket_id": ticket.id})
    return f"Asked the app to open ticket {ticket.id}."
