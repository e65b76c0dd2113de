"""Function tools the default agent may call. Each states whether it only reads or changes
something, so reviewers can see at a glance what the assistant is able to do.

Adding a tool: write one module here with its `@function_tool`, then add one line below.
"""

from typing import NamedTuple

from agents import FunctionTool

from service.agents.tools.client_app import open_ticket_in_app
from service.agents.tools.clock import current_datetime
from service.agents.tools.employees import get_employee_record
from service.agents.tools.invoices import InvoiceClient, invoice_status_tool
from service.agents.tools.tickets import (
    create_support_ticket,
    list_my_tickets,
    update_ticket_status,
)


class Registered(NamedTuple):
    tool: FunctionTool
    read_only: bool
    """False: the tool changes something (and checks the caller's role first)."""


REGISTERED: tuple[Registered, ...] = (
    Registered(current_datetime, read_only=True),
    Registered(get_employee_record, read_only=True),
    Registered(list_my_tickets, read_only=True),
    Registered(create_support_ticket, read_only=False),
    Registered(update_ticket_status, read_only=False),
    Registered(open_ticket_in_app, read_only=True),
)
"""Every built-in tool; `fetch_invoice_status` joins them when an ERP is configured."""

DEFAULT_TOOLS: list[FunctionTool] = [entry.tool for entry in REGISTERED]


def available_tools(invoices: InvoiceClient | None) -> list[FunctionTool]:
    """The built-in tools, with the read-only `fetch_invoice_status` when an ERP is configured
    (so the model is never offered a tool that can only fail)."""
    return [*DEFAULT_TOOLS, *([invoice_status_tool(invoices)] if invoices is not None else [])]


__all__ = ["DEFAULT_TOOLS", "REGISTERED", "Registered", "available_tools"]
