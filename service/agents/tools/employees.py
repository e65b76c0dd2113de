"""Read-only: a colleague's record from the caller's tenant's employee directory."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from agents import RunContextWrapper, function_tool

from service.agents.context import ToolContext
from service.agents.tools.access import (
    PRIVILEGED_ROLES,
    ToolError,
    ToolRefused,
    explain_tool_failure,
)
from service.agents.tools.records import EmployeeDirectory, EmployeeRecord

MAX_MATCHES = 5
PRIVATE_FIELDS = ("salary_band", "personal_phone")


def directory_of(who: ToolContext) -> EmployeeDirectory:
    if who.directory is None:
        raise ToolError("the employee directory is not available")
    return who.directory


def is_self(who: ToolContext, employee: EmployeeRecord) -> bool:
    caller = who.user_id
    return caller == employee.employee_id or caller.casefold() == employee.email.casefold()


def visible_record(who: ToolContext, employee: EmployeeRecord) -> dict[str, Any]:
    """The record as the caller may see it: private fields only for managers, admins and the
    employee themself. The tenant is the caller's own, so it is left out."""
    record = asdict(employee)
    del record["tenant_id"]
    if who.role not in PRIVILEGED_ROLES and not is_self(who, employee):
        for name in PRIVATE_FIELDS:
            record[name] = "(withheld)"
    return record


async def look_up(
    who: ToolContext, employee_id: str | None, name_or_email: str | None
) -> list[EmployeeRecord]:
    directory = directory_of(who)
    if employee_id and employee_id.strip():
        found = await directory.find_employee(who.tenant_id, employee_id.strip())
        return [] if found is None else [found]
    if name_or_email and name_or_email.strip():
        return await directory.search_employees(who.tenant_id, name_or_email.strip(), MAX_MATCHES)
    raise ToolRefused("give an employee_id or a name_or_email to look up")


@function_tool(failure_error_function=explain_tool_failure)
async def get_employee_record(
    ctx: RunContextWrapper[ToolContext],
    employee_id: str | None = None,
    name_or_email: str | None = None,
) -> dict[str, Any]:
    """Look up a colleague in the company directory by employee id, or by full name or email.

    Args:
        employee_id: The employee's id, when known.
        name_or_email: The employee's full name or email address, when the id is not known.
    """
    who = ctx.context
    found = await look_up(who, employee_id, name_or_email)
    if not found:
        # Ids of other tenants are exactly as unknown as ids that do not exist.
        raise ToolRefused("no such employee in your organisation's directory")
    return {"employees": [visible_record(who, employee) for employee in found]}
