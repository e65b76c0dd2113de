"""MCP tools through `/chatkit/api`: a loopback Streamable HTTP MCP server (the `mcp` package)
is listed in MCP_SERVERS next to one that cannot be reached; its allow-listed tools answer the
model, its side-effecting tool is refused to roles outside its list, and the unreachable one
neither stops the server nor fails a turn."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer

from tests.conftest import ServerFactory, provider_env
from tests.e2e.tools_support import client_as, tool_outputs
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess, free_port
from tests.support.waiting import wait_for_sync

SECRET = "Bearer mcp-secret-do-not-log"


class LoopbackMCP:
    def __init__(self) -> None:
        self.closed: list[str] = []
        self.auth_headers: list[str | None] = []
        server = MCPServer("crm")

        @server.tool()
        def lookup_account(name: str) -> str:
            """Find a customer account by name."""
            return f"Account {name}: gold tier, renewal in March"

        @server.tool()
        def close_account(name: str) -> str:
            """Close a customer account."""
            self.closed.append(name)
            return f"Account {name} closed"

        @server.tool()
        def drop_database() -> str:
            """Not on any allow-list."""
            return "dropped"

        app = server.streamable_http_app()
        outer = self

        async def recording(scope, receive, send):  # type: ignore[no-untyped-def]
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                auth = headers.get(b"authorization")
                outer.auth_headers.append(auth.decode() if auth else None)
            await app(scope, receive, send)

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(recording, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> LoopbackMCP:
        self.thread.start()
        wait_for_sync(lambda: self.server.started or None, what="the MCP server to start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def loopback_mcp() -> Iterator[LoopbackMCP]:
    mcp = LoopbackMCP().start()
    yield mcp
    mcp.stop()


@pytest.fixture(scope="module", params=["openai", "openai-compatible"])
def server(
    request: pytest.FixtureRequest,
    server_factory: ServerFactory,
    mock_llm: MockLLM,
    loopback_mcp: LoopbackMCP,
) -> ServerProcess:
    servers = [
        {"name": "crm", "url": loopback_mcp.url, "tools": ["lookup_account"]},
        {
            "name": "crm-admin",
            "url": loopback_mcp.url,
            "tools": ["close_account"],
            "read_only": False,
            "roles": ["admin"],
        },
        {"name": "gone", "url": f"http://127.0.0.1:{free_port()}/mcp", "tools": ["anything"]},
    ]
    env = {
        **provider_env(request.param, mock_llm),
        "MCP_SERVERS": json.dumps(servers),
        "MCP_SERVER_SECRETS": json.dumps({"crm": SECRET, "crm-admin": SECRET}),
    }
    return server_factory(env, start=False).start(120)


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_an_mcp_tool_answers_and_its_result_reaches_the_answer(
    server: ServerProcess, mock_llm: MockLLM, loopback_mcp: LoopbackMCP
) -> None:
    mock_llm.enqueue(
        Reply(tool_call=("lookup_account", {"name": "Acme"})),
        Reply(text="Acme is a gold-tier customer."),
    )
    async with client_as(server, someone(), "tenant-a", "employee") as client:
        stream = await client.create_thread("What tier is Acme?")
    assert stream.errors == []
    assert stream.assistant_text() == "Acme is a gold-tier customer."
    assert "gold tier, renewal in March" in " ".join(tool_outputs(mock_llm))
    offered = json.dumps(mock_llm.conversation_requests()[0].body.get("tools"))
    assert "lookup_account" in offered and "close_account" in offered
    assert "drop_database" not in offered and "anything" not in offered
    assert SECRET in loopback_mcp.auth_headers
    assert SECRET not in server.log
    assert "'gone' is unavailable" in server.log


async def test_a_side_effecting_mcp_tool_is_refused_outside_its_roles(
    server: ServerProcess, mock_llm: MockLLM, loopback_mcp: LoopbackMCP
) -> None:
    account = f"Initech-{uuid.uuid4().hex[:6]}"
    mock_llm.enqueue(
        Reply(tool_call=("close_account", {"name": account})),
        Reply(text="You may not close accounts."),
    )
    async with client_as(server, someone(), "tenant-a", "employee") as client:
        stream = await client.create_thread(f"Close {account}.")
    assert stream.assistant_text() == "You may not close accounts."
    assert "the role 'employee' may not use close_account" in tool_outputs(mock_llm)[0]
    assert account not in loopback_mcp.closed

    mock_llm.enqueue(
        Reply(tool_call=("close_account", {"name": account})),
        Reply(text="Closed."),
    )
    async with client_as(server, someone(), "tenant-a", "admin") as client:
        stream = await client.create_thread(f"Close {account}.")
    assert stream.assistant_text() == "Closed."
    assert f"Account {account} closed" in tool_outputs(mock_llm)[0]
    assert loopback_mcp.closed.count(account) == 1


@pytest.fixture(scope="module")
def vanishing_mcp() -> Iterator[LoopbackMCP]:
    mcp = LoopbackMCP().start()
    yield mcp
    mcp.stop()


@pytest.fixture(scope="module")
def server_of_vanishing_mcp(
    server_factory: ServerFactory, mock_llm: MockLLM, vanishing_mcp: LoopbackMCP
) -> ServerProcess:
    servers = [
        {
            "name": "crm",
            "url": vanishing_mcp.url,
            "tools": ["lookup_account"],
            "timeout_seconds": 3,
        }
    ]
    env = {**provider_env("openai", mock_llm), "MCP_SERVERS": json.dumps(servers)}
    return server_factory(env, start=False).start(120)


async def test_an_mcp_server_that_went_away_fails_the_call_not_the_turn(
    server_of_vanishing_mcp: ServerProcess, mock_llm: MockLLM, vanishing_mcp: LoopbackMCP
) -> None:
    vanishing_mcp.stop()
    mock_llm.enqueue(
        Reply(tool_call=("lookup_account", {"name": "Acme"})),
        Reply(text="The CRM is unavailable right now."),
    )
    async with client_as(server_of_vanishing_mcp, someone(), "tenant-a", "employee") as client:
        stream = await client.create_thread("What tier is Acme?")
    assert stream.errors == []
    assert stream.assistant_text() == "The CRM is unavailable right now."
    assert "This tool is unavailable right now" in tool_outputs(mock_llm)[0]
    failures = [line for line in server_of_vanishing_mcp.output if "MCP tool call failed" in line]
    assert failures and "Acme" not in "\n".join(failures)
