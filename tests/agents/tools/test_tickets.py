"""Ticket tools: roles decide who creates and changes tickets; tenants never see each other's."""

from __future__ import annotations

from typing import Any

import pytest

from service.agents.tools.tickets import (
    create_support_ticket,
    list_my_tickets,
    update_ticket_status,
)
from service.chatkit.store.sqlite import SQLiteStore
from tests.agents.tools.helpers import Shown, call, caller


async def create(store: SQLiteStore, shown: Shown, **who: Any) -> dict[str, Any]:
    answer = await call(
        create_support_ticket,
        caller(store, shown, **who),
        subject="VPN is down",
        body="Since 9am nobody can connect.",
        priority="high",
    )
    assert isinstance(answer, dict), answer
    ticket: dict[str, Any] = answer["ticket"]
    return ticket


async def test_an_employee_creates_a_ticket_and_it_is_shown(store: SQLiteStore) -> None:
    shown = Shown()
    ticket = await create(store, shown, role="employee")
    assert ticket["status"] == "open" and ticket["priority"] == "high"
    assert ticket["requester_id"] == "alice"
    saved = await store.load_ticket("acme", ticket["id"])
    assert saved is not None and saved.subject == "VPN is down"
    assert shown.progress == ["Creating your support ticket…"]
    assert shown.tickets == [saved]


@pytest.mark.parametrize("role", ["user", "guest", ""])
async def test_a_role_outside_ticket_create_roles_cannot_create(
    store: SQLiteStore, role: str
) -> None:
    shown = Shown()
    answer = await call(
        create_support_ticket,
        caller(store, shown, role=role),
        subject="Please",
        body="Let me in",
    )
    assert answer == f"The tool did not complete: the role '{role}' may not create support tickets"
    assert await store.list_tickets("acme", "alice", 10) == []
    assert shown.tickets == []


async def test_listing_shows_only_the_callers_tickets(store: SQLiteStore) -> None:
    mine = await create(store, Shown(), role="employee")
    await create(store, Shown(), user="bob", role="employee")
    await create(store, Shown(), tenant="globex", role="employee")
    answer = await call(list_my_tickets, caller(store, Shown(), role="employee"))
    assert [ticket["id"] for ticket in answer["tickets"]] == [mine["id"]]


async def test_a_requester_updates_their_own_ticket(store: SQLiteStore) -> None:
    ticket = await create(store, Shown(), role="employee")
    who = caller(store, Shown(), role="employee")
    answer = await call(update_ticket_status, who, ticket_id=ticket["id"], status="resolved")
    assert answer["ticket"]["status"] == "resolved"


async def test_an_employee_cannot_update_a_colleagues_ticket(store: SQLiteStore) -> None:
    ticket = await create(store, Shown(), user="bob", role="employee")
    who = caller(store, Shown(), role="employee")
    answer = await call(update_ticket_status, who, ticket_id=ticket["id"], status="resolved")
    assert answer == "The tool did not complete: the role 'employee' may not change this ticket"
    saved = await store.load_ticket("acme", ticket["id"])
    assert saved is not None and saved.status == "open"


async def test_a_manager_updates_anyones_ticket_in_the_tenant(store: SQLiteStore) -> None:
    ticket = await create(store, Shown(), user="bob", role="employee")
    who = caller(store, Shown(), user="carol", role="manager")
    answer = await call(update_ticket_status, who, ticket_id=ticket["id"], status="escalated")
    assert answer["ticket"]["status"] == "escalated"


async def test_another_tenants_ticket_is_unknown_even_to_an_admin(store: SQLiteStore) -> None:
    ticket = await create(store, Shown(), tenant="globex", role="employee")
    who = caller(store, Shown(), user="alice", tenant="acme", role="admin")
    answer = await call(update_ticket_status, who, ticket_id=ticket["id"], status="resolved")
    assert answer == "The tool did not complete: no such ticket in your organisation"
    saved = await store.load_ticket("globex", ticket["id"])
    assert saved is not None and saved.status == "open"


async def test_a_subject_must_be_given(store: SQLiteStore) -> None:
    who = caller(store, Shown(), role="employee")
    answer = await call(create_support_ticket, who, subject="  ", body="x")
    assert "subject must be 1 to 200 characters" in answer
    assert await store.list_tickets("acme", "alice", 10) == []


async def test_a_refusal_is_logged_by_tool_without_its_arguments(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="service.agents.tools.access")
    who = caller(store, Shown(), role="guest")
    await call(create_support_ticket, who, subject="Salary of Bob", body="private details")
    assert "tool create_support_ticket did not complete: the role 'guest'" in caplog.text
    assert "Salary of Bob" not in caplog.text and "private details" not in caplog.text
