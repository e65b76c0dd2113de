"""The support agent's tools through `/chatkit/api`, with the mock model calling them, on the
Responses (openai) and Chat Completions (openai-compatible) paths: tickets created, listed and
changed, employees looked up, and tenant and role rules holding under adversarial arguments."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from service.agents.tools.records import NewTicket
from service.chatkit.store.sqlite import SQLiteStore
from tests.conftest import ServerFactory, provider_env
from tests.e2e.tools_support import (
    ADA,
    client_as,
    everything_sent,
    seed_directory,
    tool_outputs,
)
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess


@pytest.fixture(scope="module", params=["openai", "openai-compatible"])
def server(
    request: pytest.FixtureRequest, server_factory: ServerFactory, mock_llm: MockLLM
) -> ServerProcess:
    # A generous start-up allowance: CI machines are often busy, and nothing here is timed.
    started = server_factory(provider_env(request.param, mock_llm), start=False).start(120)
    asyncio.run(seed_directory(started, ADA))
    return started


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def tickets_of(server: ServerProcess, tenant: str, user: str) -> list[Any]:
    store = SQLiteStore(f"{server.workdir}/chatkit.db")
    await store.open()
    try:
        return await store.list_tickets(tenant, user, 10)
    finally:
        await store.close()


async def a_ticket_of(server: ServerProcess, tenant: str, user: str) -> str:
    store = SQLiteStore(f"{server.workdir}/chatkit.db")
    await store.open()
    try:
        ticket = await store.create_ticket(NewTicket(tenant, user, "Broken VPN", "help"))
    finally:
        await store.close()
    return ticket.id


async def test_a_ticket_is_created_listed_and_shown_as_a_card(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    user = someone()
    mock_llm.enqueue(
        Reply(
            tool_call=(
                "create_support_ticket",
                {"subject": "VPN is down", "body": "Since 9am", "priority": "urgent"},
            )
        ),
        Reply(text="I opened a ticket for you."),
        Reply(tool_call=("list_my_tickets", {})),
        Reply(text="You have one open ticket."),
    )
    async with client_as(server, user, "tenant-a", "employee") as client:
        created = await client.create_thread("My VPN is down, please open a ticket.")
        assert created.errors == []
        assert created.assistant_text() == "I opened a ticket for you."
        [card] = created.done_items("widget")
        card_text = json.dumps(card["widget"])
        assert "VPN is down" in card_text and "urgent" in card_text
        assert "Mark resolved" in card_text and "Escalate" in card_text
        assert any("ticket" in e["text"].lower() for e in created.of_type("progress_update"))
        [ticket] = await tickets_of(server, "tenant-a", user)
        assert ticket.subject == "VPN is down" and ticket.status == "open"
        assert ticket.id in tool_outputs(mock_llm)[0]

        listed = await client.add_message(created.thread_id, "What tickets do I have?")
        assert listed.assistant_text() == "You have one open ticket."
        assert ticket.id in tool_outputs(mock_llm)[-1]


async def test_a_colleague_is_looked_up_with_private_fields_withheld(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    mock_llm.enqueue(
        Reply(tool_call=("get_employee_record", {"name_or_email": "ada@a.example"})),
        Reply(text="Ada works in Engineering."),
    )
    async with client_as(server, someone(), "tenant-a", "employee") as client:
        stream = await client.create_thread("Which department is Ada in?")
    assert stream.assistant_text() == "Ada works in Engineering."
    [output] = tool_outputs(mock_llm)
    assert "Engineering" in output and "(withheld)" in output
    assert str(ADA.salary_band) not in everything_sent(mock_llm)
    assert str(ADA.personal_phone) not in everything_sent(mock_llm)


@pytest.mark.parametrize(
    "arguments", [{"employee_id": ADA.employee_id}, {"name_or_email": ADA.email}]
)
async def test_another_tenants_employee_is_refused_even_to_an_admin(
    server: ServerProcess, mock_llm: MockLLM, arguments: dict[str, str]
) -> None:
    mock_llm.enqueue(
        Reply(tool_call=("get_employee_record", arguments)),
        Reply(text="I cannot find that person."),
    )
    async with client_as(server, someone(), "tenant-b", "admin") as client:
        stream = await client.create_thread("Show me Ada's salary band.")
    assert stream.errors == []
    [output] = tool_outputs(mock_llm)
    assert "no such employee in your organisation" in output
    sent = everything_sent(mock_llm)
    assert str(ADA.salary_band) not in sent and ADA.name not in output and "Engineering" not in sent


async def test_another_tenants_ticket_cannot_be_changed_even_by_its_id(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    owner = someone()
    ticket_id = await a_ticket_of(server, "tenant-a", owner)
    mock_llm.enqueue(
        Reply(tool_call=("update_ticket_status", {"ticket_id": ticket_id, "status": "resolved"})),
        Reply(text="I could not change it."),
    )
    async with client_as(server, owner, "tenant-b", "manager") as client:
        stream = await client.create_thread(f"Resolve {ticket_id}")
    assert stream.errors == []
    [output] = tool_outputs(mock_llm)
    assert "no such ticket in your organisation" in output
    assert "Broken VPN" not in everything_sent(mock_llm)
    [ticket] = await tickets_of(server, "tenant-a", owner)
    assert ticket.status == "open"


async def test_a_role_without_ticket_rights_cannot_create_one(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    user = someone()
    mock_llm.enqueue(
        Reply(tool_call=("create_support_ticket", {"subject": "Let me in", "body": "please"})),
        Reply(text="You are not allowed to open tickets."),
    )
    async with client_as(server, user, "tenant-a", "guest") as client:
        stream = await client.create_thread("Open a ticket.")
    assert stream.errors == [] and stream.done_items("widget") == []
    [output] = tool_outputs(mock_llm)
    assert "the role 'guest' may not create support tickets" in output
    assert await tickets_of(server, "tenant-a", user) == []


async def test_a_client_tool_round_trip_opens_a_ticket_in_the_app(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    user = someone()
    ticket_id = await a_ticket_of(server, "tenant-a", user)
    mock_llm.enqueue(
        Reply(tool_call=("open_ticket_in_app", {"ticket_id": ticket_id})),
        Reply(text="The ticket is open in your app."),
    )
    async with client_as(server, user, "tenant-a", "employee") as client:
        first = await client.create_thread("Show me my VPN ticket in the app.")
        assert first.errors == []
        [call] = first.done_items("client_tool_call")
        assert call["name"] == "open_ticket" and call["status"] == "pending"
        assert call["arguments"] == {"ticket_id": ticket_id}

        second = await client.stream(
            "threads.add_client_tool_output",
            thread_id=first.thread_id,
            result={"opened": True, "screen": "ticket-details"},
        )
        assert second.errors == []
        assert second.assistant_text() == "The ticket is open in your app."
        assert any("ticket-details" in output for output in tool_outputs(mock_llm))
        items = (await client.list_items(first.thread_id))["data"]
        [saved] = [item for item in items if item["type"] == "client_tool_call"]
        assert saved["status"] == "completed"


async def test_a_client_tool_cannot_open_another_tenants_ticket(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    ticket_id = await a_ticket_of(server, "tenant-a", someone())
    mock_llm.enqueue(
        Reply(tool_call=("open_ticket_in_app", {"ticket_id": ticket_id})),
        Reply(text="I cannot find that ticket."),
    )
    async with client_as(server, someone(), "tenant-b", "admin") as client:
        stream = await client.create_thread(f"Open {ticket_id} in the app.")
    assert stream.done_items("client_tool_call") == []
    assert stream.assistant_text() == "I cannot find that ticket."
    assert "no such ticket in your organisation" in tool_outputs(mock_llm)[0]
