"""The ticket card's buttons: a click (`threads.custom_action` or `threads.sync_custom_action`)
changes the ticket with the same tenant and role checks as the `update_ticket_status` tool, and
the card is redrawn in place.

A click must come from the ticket's own card in one of the caller's threads; a ticket of
another tenant, or a card that does not show it, is not found (404); a role that may not
change the ticket is refused (403).
"""

from __future__ import annotations

from typing import Any

from chatkit.actions import Action
from chatkit.store import NotFoundError
from chatkit.types import WidgetItem

from service.agents.context import ToolContext
from service.agents.tools.access import ToolRefused
from service.agents.tools.records import Ticket
from service.agents.tools.tickets import change_ticket_status, check_may_change, desk_of
from service.chatkit.errors import Forbidden, InvalidRequest
from service.chatkit.ticket_widget import TICKET_ACTIONS, ticket_copy_text, ticket_widget


def is_ticket_action(action: Action[str, Any]) -> bool:
    return action.type in TICKET_ACTIONS


def _ticket_id(action: Action[str, Any], sender: WidgetItem | None) -> str:
    payload = action.payload
    ticket_id = payload.get("ticket_id") if isinstance(payload, dict) else None
    if not isinstance(ticket_id, str) or not ticket_id:
        raise InvalidRequest(f"the action {action.type!r} needs a payload with a ticket_id")
    if sender is None or sender.widget.key != ticket_id:
        raise NotFoundError("Ticket not found")
    return ticket_id


async def check_ticket_action(
    action: Action[str, Any], sender: WidgetItem | None, who: ToolContext
) -> Ticket:
    """The ticket the click is about, if the caller may change it."""
    ticket_id = _ticket_id(action, sender)
    ticket = await desk_of(who).load_ticket(who.tenant_id, ticket_id)
    if ticket is None:
        raise NotFoundError("Ticket not found")
    try:
        check_may_change(who, ticket)
    except ToolRefused as exc:
        raise Forbidden(str(exc)) from None
    return ticket


async def perform_ticket_action(
    action: Action[str, Any], sender: WidgetItem | None, who: ToolContext
) -> WidgetItem:
    """Change the ticket; the sender card redrawn with its new status."""
    ticket = await check_ticket_action(action, sender, who)
    assert sender is not None  # checked above
    try:
        updated = await change_ticket_status(who, ticket.id, TICKET_ACTIONS[action.type])
    except ToolRefused as exc:  # changed hands or vanished since the check
        raise Forbidden(str(exc)) from None
    return sender.model_copy(
        update={"widget": ticket_widget(updated), "copy_text": ticket_copy_text(updated)}
    )
