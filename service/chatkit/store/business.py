"""Business-data rows (employee directory, tickets) as the tools' records, in any dialect."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, cast

from service.agents.tools.records import (
    EMPLOYEE_FIELDS,
    EmployeeRecord,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from service.chatkit.store.feedback import Row

EMPLOYEE_COLUMNS = ", ".join(EMPLOYEE_FIELDS)
TICKET_COLUMNS = "id, tenant_id, requester_id, subject, body, priority, status"


def employee_values(employee: EmployeeRecord) -> tuple[Any, ...]:
    return tuple(getattr(employee, name) for name in EMPLOYEE_FIELDS)


def employee_record(row: Row) -> EmployeeRecord:
    return EmployeeRecord(**{name: row[name] for name in EMPLOYEE_FIELDS})


def ticket_record(row: Row, created_at: datetime, updated_at: datetime) -> Ticket:
    return Ticket(
        id=row["id"],
        tenant_id=row["tenant_id"],
        requester_id=row["requester_id"],
        subject=row["subject"],
        body=row["body"],
        priority=cast(TicketPriority, row["priority"]),
        status=cast(TicketStatus, row["status"]),
        created_at=created_at,
        updated_at=updated_at,
    )


def new_ticket_id() -> str:
    return "tkt_" + secrets.token_hex(10)
