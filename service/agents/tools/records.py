"""The business data the tools work on, and what a store offers to keep it.

The stores implement `EmployeeDirectory` and `TicketDesk`; tools only see these protocols
(through `ToolContext`), so this package never depends on how or where the data is kept.
Every method takes the tenant explicitly: no query ever reaches across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, get_args

TicketPriority = Literal["low", "normal", "high", "urgent"]
TicketStatus = Literal["open", "in_progress", "resolved", "escalated"]
TICKET_PRIORITIES: tuple[str, ...] = get_args(TicketPriority)
TICKET_STATUSES: tuple[str, ...] = get_args(TicketStatus)


@dataclass(frozen=True, slots=True)
class EmployeeRecord:
    tenant_id: str
    employee_id: str
    name: str
    email: str
    department: str | None = None
    title: str | None = None
    manager_id: str | None = None
    location: str | None = None
    salary_band: str | None = None
    personal_phone: str | None = None


EMPLOYEE_FIELDS: tuple[str, ...] = tuple(EmployeeRecord.__dataclass_fields__)
"""The directory's columns, in the order an import file may list them."""


@dataclass(frozen=True, slots=True)
class NewTicket:
    tenant_id: str
    requester_id: str
    subject: str
    body: str
    priority: TicketPriority = "normal"


@dataclass(frozen=True, slots=True)
class Ticket:
    id: str
    tenant_id: str
    requester_id: str
    subject: str
    body: str
    priority: TicketPriority
    status: TicketStatus
    created_at: datetime
    updated_at: datetime


class EmployeeDirectory(Protocol):
    async def upsert_employees(self, employees: Sequence[EmployeeRecord]) -> int:
        """Insert or replace each (tenant_id, employee_id) in one transaction; how many."""
        ...

    async def find_employee(self, tenant_id: str, employee_id: str) -> EmployeeRecord | None:
        """The tenant's employee with this id, if any."""
        ...

    async def search_employees(
        self, tenant_id: str, name_or_email: str, limit: int
    ) -> list[EmployeeRecord]:
        """The tenant's employees whose email or name equals `name_or_email`, ignoring case."""
        ...


class TicketDesk(Protocol):
    async def create_ticket(self, ticket: NewTicket) -> Ticket:
        """Save a new ticket, `open`, and return it with its id and timestamps."""
        ...

    async def load_ticket(self, tenant_id: str, ticket_id: str) -> Ticket | None:
        """The tenant's ticket with this id, if any."""
        ...

    async def list_tickets(self, tenant_id: str, requester_id: str, limit: int) -> list[Ticket]:
        """The requester's tickets in the tenant, newest first."""
        ...

    async def set_ticket_status(
        self, tenant_id: str, ticket_id: str, status: TicketStatus
    ) -> Ticket | None:
        """Change the tenant's ticket's status; the updated ticket, or None if there is none."""
        ...
