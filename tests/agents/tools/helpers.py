"""Calling a function tool the way the Agents SDK does, on a real SQLite store."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from agents import FunctionTool
from agents.tool_context import ToolContext as SDKToolContext

from service.agents.context import ToolContext
from service.agents.tools.records import EmployeeRecord, Ticket
from service.chatkit.store.sqlite import SQLiteStore


@dataclass
class Shown:
    progress: list[str] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)


async def call(tool: FunctionTool, who: ToolContext, **arguments: Any) -> Any:
    """The tool's answer: its result parsed from JSON where it is JSON, else its text."""
    text = json.dumps(arguments)
    context = SDKToolContext(who, tool_name=tool.name, tool_call_id="call_1", tool_arguments=text)
    result = await tool.on_invoke_tool(context, text)
    try:
        return json.loads(result) if isinstance(result, str) else result
    except ValueError:
        return result


def caller(
    store: SQLiteStore, shown: Shown, *, user: str = "alice", tenant: str = "acme", role: str
) -> ToolContext:
    async def progress(text: str) -> None:
        shown.progress.append(text)

    async def show_ticket(ticket: Ticket) -> None:
        shown.tickets.append(ticket)

    return ToolContext(
        user_id=user,
        tenant_id=tenant,
        role=role,
        report_progress=progress,
        show_ticket=show_ticket,
        directory=store,
        tickets=store,
    )


def as_someone_else(who: ToolContext, **changes: Any) -> ToolContext:
    return replace(who, **changes)


ADA = EmployeeRecord(
    tenant_id="acme",
    employee_id="e1",
    name="Ada Lovelace",
    email="ada@acme.example",
    department="Engineering",
    title="Engineer",
    manager_id="e9",
    location="London",
    salary_band="L5",
    personal_phone="+44 20 0000 0000",
)
GRACE_AT_GLOBEX = EmployeeRecord(
    tenant_id="globex",
    employee_id="g7",
    name="Grace Hopper",
    email="grace@globex.example",
    salary_band="G9",
    personal_phone="+1 555 0100",
)
