"""Shared by the tool end-to-end tests: seeding the server's database, reading what the model
was told by its tools, and a client with a role."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.agents.tools.records import EmployeeRecord
from service.chatkit.store.sqlite import SQLiteStore
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

ADA = EmployeeRecord(
    tenant_id="tenant-a",
    employee_id="e1",
    name="Ada Lovelace",
    email="ada@a.example",
    department="Engineering",
    salary_band="SECRET-BAND-L5",
    personal_phone="+44-SECRET-PHONE",
)


async def seed_directory(server: ServerProcess, *employees: EmployeeRecord) -> None:
    store = SQLiteStore(str(Path(server.workdir) / "chatkit.db"))
    await store.open()
    try:
        await store.upsert_employees(list(employees))
    finally:
        await store.close()


def client_as(server: ServerProcess, user: str, tenant: str, role: str) -> ChatKitClient:
    client = ChatKitClient(server.url, user=user, tenant=tenant)
    client.http.headers["X-User-Role"] = role
    return client


def tool_outputs(mock: MockLLM) -> list[str]:
    """What tools answered, as the model received it, on either API format."""
    outputs: list[str] = []
    request = mock.conversation_requests()[-1].body
    for entry in request.get("input") or []:
        if isinstance(entry, dict) and entry.get("type") == "function_call_output":
            output = entry["output"]
            outputs.append(output if isinstance(output, str) else json.dumps(output))
    for message in request.get("messages") or []:
        if message.get("role") == "tool":
            content = message["content"]
            outputs.append(content if isinstance(content, str) else json.dumps(content))
    return outputs


def everything_sent(mock: MockLLM) -> str:
    return json.dumps([request.body for request in mock.requests])


def widget_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in items if item["type"] == "widget"]
