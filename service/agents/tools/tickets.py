"""Support tickets: create (side-effecting), list the caller's (read-only), change a status
(side-effecting). The caller's tenant and role decide what is allowed, whatever the arguments."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from agents import RunContextWrapper, function_tool

from service.agents.context import ToolContext
from service.agents.tools.access import ToolError, ToolRefused, explain_tool_failure
from service.agents.tools.records import (
    NewTicket,
    Ticket,
    TicketDesk,
    TicketPriority,
    TicketStatus,
)

NO_SUCH_TICKET = "no such ticket in your organisation"
MAX_SUBJECT = 200
MAX_BODY = 5000
MAX_LISTED = 20


def desk_of(who: ToolContext) -> TicketDesk:
    if who.tickets is None:
        raise ToolError("the ticket system is not available")
    return who.tickets


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    summary = asdict(ticket)
    del summary["tenant_id"]
    summary["created_at"] = ticket.created_at.isoformat()
    summary["updated_at"] = ticket.updated_at.isoformat()
    return summary


async def change_ticket_status(who: ToolContext, ticket_id: str, status: TicketStatus) -> Ticket:
    """Set a ticket's status if the caller may: their own ticket with a creating role, any
    ticket of their tenant with a managing role. Another tenant's ticket is unknown."""
    desk = desk_of(who)
    ticket = await desk.load_ticket(who.tenant_id, ticket_id.strip())
    if ticket is None:
        raise ToolRefused(NO_SUCH_TICKET)
    check_may_change(who, ticket)
    updated = await desk.set_ticket_status(who.tenant_id, ticket.id, status)
    if updated is None:  # deleted in between
        raise ToolRefused(NO_SUCH_TICKET)
    return updated


def check_may_change(who: ToolContext, ticket: Ticket) -> None:
    own = ticket.requester_id == who.user_id
    roles = who.ticket_roles
    if not (who.role in roles.manage or (own and who.role in roles.create)):
        raise ToolRefused(f"the role '{who.role}' may not change this ticket")


@function_tool(failure_error_function=explain_tool_failure)
async def create_support_ticket(
    ctx: RunContextWrapper[ToolContext],
    subject: str,
    body: str,
    priority: TicketPriority = "normal",
) -> dict[str, Any]:
    """Open a support ticket for the user and show it to them as a card; returns its id.

    Args:
        subject: A short summary of the problem (at most 200 characters).
        body: What happened, in the user's words (at most 5000 characters).
        priority: How urgent it is.
    """
    who = ctx.context
    if who.role not in who.ticket_roles.create:
        raise ToolRefused(f"the role '{who.role}' may not create support tickets")
    subject, body = subject.strip(), body.strip()
    if not subject or len(subject) > MAX_SUBJECT:
        raise ToolError(f"the subject must be 1 to {MAX_SUBJECT} characters")
    if len(body) > MAX_BODY:
        raise ToolError(f"the description must be at most {MAX_BODY} characters")
    await who.report_progress("Creating your support ticket…")
    ticket = await desk_of(who).create_ticket(
        NewTicket(who.tenant_id, who.user_id, subject, body, priority)
    )
    await who.show_ticket(ticket)
    return {"ticket": ticket_summary(ticket), "shown_to_user": "a card with the ticket"}


@function_tool(failure_error_function=explain_tool_failure)
async def list_my_tickets(ctx: RunContextWrapper[ToolContext]) -> dict[str, Any]:
    """List the support tickets the user has opened, newest first."""
    who = ctx.context
    tickets = await desk_of(who).list_tickets(who.tenant_id, who.user_id, MAX_LISTED)
    return {"tickets": [ticket_summary(ticket) for ticket in tickets]}


@function_tool(failure_error_function=explain_tool_failure)
async def update_ticket_status(
    ctx: RunContextWrapper[ToolContext], ticket_id: str, status: TicketStatus
) -> dict[str, Any]:
    """Change the status of a support ticket (the user's own; managers: any in their workspace).

    Args:
        ticket_id: The ticket's id, as returned when it was created or listed.
        status: The new status.
    """
    ticket = await change_ticket_status(ctx.context, ticket_id, status)
    return {"ticket": ticket_summary(ticket)}
