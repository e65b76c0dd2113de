"""Tenant and user isolation, proven on every request type that names a thread, item or
attachment: another user's or another tenant's id is answered exactly like an unknown id (same
status, same body once the ids are masked), and the owner's data stays byte-for-byte the same.

The owner is alice of tenant acme. The strangers: another user of the same tenant, the same
user id in another tenant, another user of another tenant.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from chatkit.types import FileAttachment

from service.chatkit.store.sqlite import SQLiteStore
from service.request_context import RequestContext
from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient, parse_sse, user_input
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

OWNER = RequestContext(user_id="alice", tenant_id="acme")
STRANGERS = {
    "other user, same tenant": RequestContext(user_id="bob", tenant_id="acme"),
    "same user id, other tenant": RequestContext(user_id="alice", tenant_id="globex"),
    "other user, other tenant": RequestContext(user_id="bob", tenant_id="globex"),
}


@dataclass(frozen=True)
class Owned:
    thread: str
    user_item: str
    assistant_item: str
    attachment: str

    def ids(self) -> dict[str, str]:
        return {
            "thread": self.thread,
            "user_item": self.user_item,
            "assistant_item": self.assistant_item,
            "attachment": self.attachment,
        }


def unknown_like(ids: Owned) -> Owned:
    """Ids of the same prefix and length that name nothing."""

    def like(value: str) -> str:
        prefix = value.split("_", 1)[0] + "_"
        return prefix + secrets.token_hex(len(value))[: len(value) - len(prefix)]

    return Owned(**{role: like(value) for role, value in ids.ids().items()})


Request = Callable[[Owned, str], dict[str, Any]]
"""Builds a request body from the ids it names and the caller's own thread id."""

ACTION = {"type": "approve", "payload": {"ticket": 1}}
REQUESTS: dict[str, Request] = {
    "threads.get_by_id": lambda o, _: {
        "type": "threads.get_by_id",
        "params": {"thread_id": o.thread},
    },
    "items.list": lambda o, _: {"type": "items.list", "params": {"thread_id": o.thread}},
    "threads.list after a cursor": lambda o, _: {
        "type": "threads.list",
        "params": {"after": o.thread},
    },
    "threads.update": lambda o, _: {
        "type": "threads.update",
        "params": {"thread_id": o.thread, "title": "taken over"},
    },
    "threads.delete": lambda o, _: {"type": "threads.delete", "params": {"thread_id": o.thread}},
    "threads.add_user_message": lambda o, _: {
        "type": "threads.add_user_message",
        "params": {"thread_id": o.thread, "input": user_input("let me in")},
    },
    "threads.retry_after_item": lambda o, _: {
        "type": "threads.retry_after_item",
        "params": {"thread_id": o.thread, "item_id": o.user_item},
    },
    "threads.custom_action": lambda o, _: {
        "type": "threads.custom_action",
        "params": {"thread_id": o.thread, "item_id": o.assistant_item, "action": ACTION},
    },
    "threads.custom_action without an item": lambda o, _: {
        "type": "threads.custom_action",
        "params": {"thread_id": o.thread, "action": ACTION},
    },
    "threads.sync_custom_action": lambda o, _: {
        "type": "threads.sync_custom_action",
        "params": {"thread_id": o.thread, "item_id": o.assistant_item, "action": ACTION},
    },
    "threads.add_client_tool_output": lambda o, _: {
        "type": "threads.add_client_tool_output",
        "params": {"thread_id": o.thread, "result": {"ok": True}},
    },
    "threads.add_structured_input": lambda o, _: {
        "type": "threads.add_structured_input",
        "params": {
            "thread_id": o.thread,
            "item_id": o.assistant_item,
            "input": {"status": "answered", "answers": {}},
        },
    },
    "items.feedback": lambda o, _: {
        "type": "items.feedback",
        "params": {"thread_id": o.thread, "item_ids": [o.assistant_item], "kind": "negative"},
    },
    "attachments.delete": lambda o, _: {
        "type": "attachments.delete",
        "params": {"attachment_id": o.attachment},
    },
    "threads.create attaching it": lambda o, _: {
        "type": "threads.create",
        "params": {"input": user_input("see attached", attachments=[o.attachment])},
    },
    "threads.add_user_message attaching it": lambda o, own_thread: {
        "type": "threads.add_user_message",
        "params": {"thread_id": own_thread, "input": user_input("see", attachments=[o.attachment])},
    },
}


@dataclass
class World:
    server: ServerProcess
    owned: Owned
    stranger_threads: dict[str, str]


@pytest.fixture(scope="module")
def world(server_factory: ServerFactory, mock_llm: MockLLM) -> World:
    server = server_factory({**provider_env("openai", mock_llm), "RATE_LIMIT_PER_MINUTE": "0"})
    return asyncio.run(_seed(server))


async def _seed(server: ServerProcess) -> World:
    async with client_for(server, OWNER) as owner:
        created = await owner.create_thread("my private question")
        assert created.status == 200 and created.errors == [], created.body
        items = (await owner.list_items(created.thread_id, order="asc"))["data"]
        user_item = next(i["id"] for i in items if i["type"] == "user_message")
        assistant_item = next(i["id"] for i in items if i["type"] == "assistant_message")
        liked = await owner.call(
            "items.feedback",
            thread_id=created.thread_id,
            item_ids=[assistant_item],
            kind="positive",
        )
        assert liked.status_code == 200
    attachment = await _seed_attachment(server)
    stranger_threads = {}
    for name, who in STRANGERS.items():
        async with client_for(server, who) as stranger:
            own = await stranger.create_thread("my own thread")
            assert own.status == 200 and own.errors == []
            stranger_threads[name] = own.thread_id
    return World(
        server, Owned(created.thread_id, user_item, assistant_item, attachment), stranger_threads
    )


async def _seed_attachment(server: ServerProcess) -> str:
    """An upload of the owner's, written through the store the server uses (uploads may not
    be enabled on this server)."""
    store = SQLiteStore(str(server.workdir / "chatkit.db"))
    await store.open(migrate=False)
    try:
        attachment = FileAttachment(
            id=f"atc_{secrets.token_hex(16)}", name="salaries.pdf", mime_type="application/pdf"
        )
        await store.save_attachment(attachment, OWNER)
    finally:
        await store.close()
    return attachment.id


def client_for(server: ServerProcess, who: RequestContext) -> ChatKitClient:
    return ChatKitClient(server.url, user=who.user_id, tenant=who.tenant_id)


async def owner_view(world: World) -> dict[str, bytes]:
    """The owner's data as the API shows it, byte for byte, plus the attachment record."""
    async with client_for(world.server, OWNER) as owner:
        thread = world.owned.thread
        views = {
            "thread": await owner.call("threads.get_by_id", thread_id=thread),
            "items": await owner.call("items.list", thread_id=thread, order="asc", limit=100),
            "threads": await owner.call("threads.list", limit=100),
        }
    for name, response in views.items():
        assert response.status_code == 200, (name, response.text)
    view = {name: response.content for name, response in views.items()}
    store = SQLiteStore(str(world.server.workdir / "chatkit.db"))
    await store.open(migrate=False)
    try:
        attachment = await store.load_attachment(world.owned.attachment, OWNER)
        feedback = await store.load_feedback(thread_id=thread)
    finally:
        await store.close()
    view["attachment"] = attachment.model_dump_json().encode()
    view["feedback"] = repr(
        [(r.item_id, r.kind, r.user_id, r.tenant_id) for r in feedback]
    ).encode()
    return view


def answer_shape(response: httpx.Response, ids: Owned) -> tuple[int, str, Any]:
    """Status, content type and body, with the ids the request named masked by their role."""
    text = response.text
    for role, value in ids.ids().items():
        text = text.replace(value, f"<{role}>")
    content_type = response.headers.get("content-type", "").split(";")[0]
    if content_type == "text/event-stream":
        events, _ = parse_sse(text.encode())
        return (
            response.status_code,
            content_type,
            [(e["type"], e.get("code"), e.get("message")) for e in events],
        )
    return response.status_code, content_type, json.loads(text) if text else None


@pytest.mark.parametrize("stranger", sorted(STRANGERS))
@pytest.mark.parametrize("request_type", list(REQUESTS))
async def test_a_strangers_id_is_answered_like_an_unknown_id_and_changes_nothing(
    world: World, request_type: str, stranger: str
) -> None:
    before = await owner_view(world)
    unknown = unknown_like(world.owned)
    build = REQUESTS[request_type]
    own_thread = world.stranger_threads[stranger]

    async with client_for(world.server, STRANGERS[stranger]) as client:
        foreign = await client.post(build(world.owned, own_thread))
        missing = await client.post(build(unknown, own_thread))

    assert answer_shape(foreign, world.owned) == answer_shape(missing, unknown)
    assert foreign.status_code < 500
    assert await owner_view(world) == before


@pytest.mark.parametrize("stranger", sorted(STRANGERS))
async def test_threads_list_never_shows_a_foreign_thread(world: World, stranger: str) -> None:
    async with client_for(world.server, STRANGERS[stranger]) as client:
        for order in ("asc", "desc"):
            listed = await client.list_threads(order=order, limit=100)
            assert [t["id"] for t in listed["data"]] == [world.stranger_threads[stranger]]
    async with client_for(world.server, OWNER) as owner:
        listed = await owner.list_threads(limit=100)
        assert [t["id"] for t in listed["data"]] == [world.owned.thread]


async def test_the_server_logged_no_failure(world: World) -> None:
    assert "Traceback" not in world.server.log
    assert '"status": 500' not in world.server.log
