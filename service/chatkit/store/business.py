"""Business-data rows (employee directory, tickets) as the tools' records, in any dialect."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from service.agents.tools.records import EMPLOYEE_FIELDS, EmployeeRecord, Ticket
from service.chatkit.store.feedback import Row, from_row

EMPLOYEE_COLUMNS = ", ".join(EMPLOYEE_FIELDS)
TICKET_FIELDS = ("id", "tenant_id", "requester_id", "subject", "body", "priority", "status")
"""A ticket row's columns as they are in every dialect (the timestamps are not)."""
TICKET_COLUMNS = ", ".join(TICKET_FIELDS)


def employee_values(employee: EmployeeRecord) -> tuple[Any, ...]:
    return tuple(getattr(employee, name) for name in EMPLOYEE_FIELDS)


def employee_record(row: Row) -> EmployeeRecord:
    return from_row(EmployeeRecord, row, EMPLOYEE_FIELDS)


def ticket_record(row: Row, created_at: datetime, updated_at: datetime) -> Ticket:
    return from_row(Ticket, row, TICKET_FIELDS, created_at=created_at, updated_at=updated_at)


def new_ticket_id() -> str:
    return "tkt_" + secrets.token_hex(10)
