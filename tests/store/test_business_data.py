"""Both stores keep the employee directory and the tickets per tenant (the tools' data)."""

from __future__ import annotations

from dataclasses import replace

from service.agents.tools.records import EmployeeRecord, NewTicket
from service.chatkit.store.base import ChatStore

ADA = EmployeeRecord(
    tenant_id="acme",
    employee_id="e1",
    name="Ada Lovelace",
    email="Ada@Acme.example",
    department="Engineering",
    title="Engineer",
    manager_id="e9",
    location="London",
    salary_band="L5",
    personal_phone="+44 20 0000 0000",
)
ADA_AT_GLOBEX = replace(ADA, tenant_id="globex", name="Ada Globex", salary_band="G1")


async def test_employees_are_upserted_and_found_within_their_tenant(store: ChatStore) -> None:
    assert await store.upsert_employees([ADA, ADA_AT_GLOBEX]) == 2
    assert await store.find_employee("acme", "e1") == ADA
    assert await store.find_employee("globex", "e1") == ADA_AT_GLOBEX
    assert await store.find_employee("initech", "e1") is None

    moved = replace(ADA, location="Paris", personal_phone=None)
    await store.upsert_employees([moved])
    assert await store.find_employee("acme", "e1") == moved
    assert await store.find_employee("globex", "e1") == ADA_AT_GLOBEX


async def test_employees_are_searched_by_email_or_name_ignoring_case(store: ChatStore) -> None:
    await store.upsert_employees([ADA, ADA_AT_GLOBEX])
    assert await store.search_employees("acme", "ada@acme.EXAMPLE", 5) == [ADA]
    assert await store.search_employees("acme", "ada lovelace", 5) == [ADA]
    assert await store.search_employees("acme", "Ada Globex", 5) == []
    assert await store.search_employees("globex", "ada@acme.example", 5) == [ADA_AT_GLOBEX]


async def test_tickets_are_created_listed_and_updated_within_their_tenant(
    store: ChatStore,
) -> None:
    first = await store.create_ticket(NewTicket("acme", "alice", "VPN down", "Since 9am", "high"))
    second = await store.create_ticket(NewTicket("acme", "alice", "New laptop", "Please"))
    await store.create_ticket(NewTicket("acme", "bob", "Printer", "Jammed", "low"))
    elsewhere = await store.create_ticket(NewTicket("globex", "alice", "Other", "x"))

    assert first.status == "open" and first.priority == "high"
    assert first.id != second.id
    assert await store.load_ticket("acme", first.id) == first
    assert await store.load_ticket("globex", first.id) is None
    mine = await store.list_tickets("acme", "alice", 10)
    assert [ticket.id for ticket in mine] == [second.id, first.id]
    assert [t.id for t in await store.list_tickets("globex", "alice", 10)] == [elsewhere.id]

    resolved = await store.set_ticket_status("acme", first.id, "resolved")
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.updated_at >= first.updated_at
    assert await store.set_ticket_status("globex", first.id, "escalated") is None
    reloaded = await store.load_ticket("acme", first.id)
    assert reloaded is not None and reloaded.status == "resolved"
