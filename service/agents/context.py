"""The small context tools receive: who is asking, the data they may reach, and ways to show
progress and results."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from service.request_context import Caller

if TYPE_CHECKING:  # the tools package imports this module
    from service.agents.tools.records import EmployeeDirectory, Ticket, TicketDesk


async def _ignore_progress(_text: str) -> None:
    return None


async def _ignore_ticket(_ticket: Ticket) -> None:
    return None


def _no_client(_name: str, _arguments: dict[str, Any]) -> None:
    raise RuntimeError("no client is attached to run client tools")


def _nothing_requested() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class TicketRoles:
    create: frozenset[str] = frozenset({"employee", "manager", "admin"})
    """May create tickets and change their own."""
    manage: frozenset[str] = frozenset({"manager", "admin"})
    """May change any ticket of their tenant."""


@dataclass(frozen=True, slots=True)
class ToolContext(Caller):
    report_progress: Callable[[str], Awaitable[None]] = _ignore_progress
    """Shows a short progress line in the chat UI while a tool works."""
    show_ticket: Callable[[Ticket], Awaitable[None]] = _ignore_ticket
    """Shows a ticket to the user (the chat server draws it as a card with buttons)."""
    directory: EmployeeDirectory | None = None
    """The employee directory; None where no store is at hand."""
    tickets: TicketDesk | None = None
    """The support tickets; None where no store is at hand."""
    ticket_roles: TicketRoles = field(default_factory=TicketRoles)
    """Which roles may create and manage tickets."""
    call_client_tool: Callable[[str, dict[str, Any]], None] = _no_client
    """Asks the user's app to run a client tool (name, arguments) once the answer ends; its
    result comes back with `threads.add_client_tool_output` and the answer continues."""
    client_tool_requested: Callable[[], bool] = _nothing_requested
    """Whether a tool of this run has asked the app to run a client tool."""
