"""The ticket card's buttons through `/chatkit/api`: a click changes the ticket and redraws
the card in place (streamed and sync actions); clicks from other users or tenants are 404s,
from a role without ticket rights 403s."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from service.chatkit.store.sqlite import SQLiteStore
from tests.conftest import ServerFactory, provider_env
from tests.e2e.tools_support import client_as
from tests.support.client import ChatKitClient, parse_sse
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess

TENANT = "tenant-a"


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(provider_env("openai", mock_llm), start=False).start(120)


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def ticket_status(server: ServerProcess, ticket_id: str) -> str:
    store = SQLiteStore(f"{server.workdir}/chatkit.db")
    await store.open()
    try:
        ticket = await store.load_ticket(TENANT, ticket_id)
    finally:
        await store.close()
    assert ticket is not None
    return ticket.status


async def card_in_new_thread(client: ChatKitClient, mock_llm: MockLLM) -> tuple[str, str, str]:
    """(thread id, card item id, ticket id) of a ticket the model opened."""
    mock_llm.enqueue(
        Reply(tool_call=("create_support_ticket", {"subject": "Printer jam", "body": "Again"})),
        Reply(text="Ticket opened."),
    )
    stream = await client.create_thread("The printer is jammed.")
    [card] = stream.done_items("widget")
    return stream.thread_id, card["id"], card["widget"]["key"]


def click(
    thread_id: str, item_id: str, action: str, ticket_id: str, *, sync: bool = False
) -> dict[str, Any]:
    return {
        "type": "threads.sync_custom_action" if sync else "threads.custom_action",
        "params": {
            "thread_id": thread_id,
            "item_id": item_id,
            "action": {"type": action, "payload": {"ticket_id": ticket_id}},
        },
    }


async def test_mark_resolved_changes_the_ticket_and_redraws_the_card(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    async with client_as(server, someone(), TENANT, "employee") as client:
        thread_id, card_id, ticket_id = await card_in_new_thread(client, mock_llm)
        response = await client.post(click(thread_id, card_id, "ticket.resolve", ticket_id))
        assert response.status_code == 200
        events, _ = parse_sse(response.content)
        [replaced] = [e for e in events if e["type"] == "thread.item.replaced"]
        assert replaced["item"]["id"] == card_id
        card = json.dumps(replaced["item"]["widget"])
        assert "Status: resolved" in card and '"disabled": true' in card
        assert await ticket_status(server, ticket_id) == "resolved"

        items = (await client.list_items(thread_id))["data"]
        [saved] = [item for item in items if item["id"] == card_id]
        assert "Status: resolved" in json.dumps(saved["widget"])


async def test_escalate_as_a_sync_action_answers_with_the_redrawn_card(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    async with client_as(server, someone(), TENANT, "employee") as client:
        thread_id, card_id, ticket_id = await card_in_new_thread(client, mock_llm)
        response = await client.post(
            click(thread_id, card_id, "ticket.escalate", ticket_id, sync=True)
        )
        assert response.status_code == 200, response.text
        assert "Status: escalated" in json.dumps(response.json()["updated_item"]["widget"])
        assert await ticket_status(server, ticket_id) == "escalated"
        items = (await client.list_items(thread_id))["data"]
        [saved] = [item for item in items if item["id"] == card_id]
        assert "Status: escalated" in json.dumps(saved["widget"])


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.parametrize("intruder", ["other user", "same user id, other tenant"])
async def test_a_click_from_another_user_or_tenant_is_not_found(
    server: ServerProcess, mock_llm: MockLLM, sync: bool, intruder: str
) -> None:
    owner = someone()
    async with client_as(server, owner, TENANT, "employee") as client:
        thread_id, card_id, ticket_id = await card_in_new_thread(client, mock_llm)
    who = (someone(), TENANT) if intruder == "other user" else (owner, "tenant-b")
    async with client_as(server, *who, "admin") as other:
        response = await other.post(
            click(thread_id, card_id, "ticket.resolve", ticket_id, sync=sync)
        )
    assert response.status_code == 404
    assert await ticket_status(server, ticket_id) == "open"


async def test_a_card_cannot_be_pointed_at_another_ticket(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    async with client_as(server, someone(), TENANT, "manager") as victim:
        _, _, their_ticket = await card_in_new_thread(victim, mock_llm)
    async with client_as(server, someone(), TENANT, "manager") as client:
        thread_id, card_id, _ = await card_in_new_thread(client, mock_llm)
        response = await client.post(click(thread_id, card_id, "ticket.resolve", their_ticket))
    assert response.status_code == 404
    assert await ticket_status(server, their_ticket) == "open"


async def test_a_role_without_ticket_rights_is_refused(
    server: ServerProcess, mock_llm: MockLLM
) -> None:
    user = someone()
    async with client_as(server, user, TENANT, "employee") as client:
        thread_id, card_id, ticket_id = await card_in_new_thread(client, mock_llm)
    async with client_as(server, user, TENANT, "guest") as demoted:
        response = await demoted.post(click(thread_id, card_id, "ticket.resolve", ticket_id))
    assert response.status_code == 403
    assert "may not change this ticket" in response.json()["error"]["message"]
    assert await ticket_status(server, ticket_id) == "open"
