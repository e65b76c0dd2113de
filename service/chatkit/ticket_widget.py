"""The ticket card that `create_support_ticket` shows in the conversation, with its "Mark
resolved" and "Escalate" buttons.

A click comes back to the server as a custom action (`TICKET_ACTIONS`) naming the ticket; the
server changes the ticket with the same checks as `update_ticket_status` and redraws the card.
"""

from __future__ import annotations

from typing import Any

from chatkit.widgets import DynamicWidgetRoot, WidgetRoot

from service.agents.tools.records import Ticket, TicketStatus

RESOLVE_ACTION = "ticket.resolve"
ESCALATE_ACTION = "ticket.escalate"
TICKET_ACTIONS: dict[str, TicketStatus] = {RESOLVE_ACTION: "resolved", ESCALATE_ACTION: "escalated"}
"""Each widget action and the status it sets."""

_STATUS_COLORS = {"open": "info", "in_progress": "warning", "resolved": "success"}
_PRIORITY_COLORS = {"high": "warning", "urgent": "danger"}


def ticket_widget(ticket: Ticket) -> WidgetRoot:
    closed = ticket.status in ("resolved", "escalated")

    def button(label: str, action: str, color: str) -> dict[str, Any]:
        return {
            "type": "Button",
            "label": label,
            "color": color,
            "disabled": closed,
            "onClickAction": {"type": action, "payload": {"ticket_id": ticket.id}},
        }

    return DynamicWidgetRoot.model_validate(
        {
            "type": "Card",
            "key": ticket.id,
            "children": [
                {"type": "Title", "value": ticket.subject},
                {
                    "type": "Row",
                    "gap": 2,
                    "children": [
                        {
                            "type": "Badge",
                            "label": f"Status: {ticket.status.replace('_', ' ')}",
                            "color": _STATUS_COLORS.get(ticket.status, "danger"),
                        },
                        {
                            "type": "Badge",
                            "label": f"Priority: {ticket.priority}",
                            "color": _PRIORITY_COLORS.get(ticket.priority, "secondary"),
                        },
                    ],
                },
                {"type": "Caption", "value": f"Ticket {ticket.id}"},
                {
                    "type": "Row",
                    "gap": 2,
                    "children": [
                        button("Mark resolved", RESOLVE_ACTION, "success"),
                        button("Escalate", ESCALATE_ACTION, "danger"),
                    ],
                },
            ],
        }
    )


def ticket_copy_text(ticket: Ticket) -> str:
    return f"Ticket {ticket.id}: {ticket.subject} ({ticket.status}, {ticket.priority} priority)"
