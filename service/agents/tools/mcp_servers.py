"""Operator-added tools from Streamable HTTP MCP servers (`MCP_SERVERS`), through the Agents
SDK's MCP support.

At start the servers are connected (an unreachable one is logged and left out: its tools are
simply unavailable), their allow-listed tools listed once and turned into function tools like
ours: metered, errors reported as "tool unavailable" without their arguments, and, for servers
that are not read-only, refused to callers outside the server's roles. A server that goes away
later fails only the calls to its tools, never the turn.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper
from agents.mcp import (
    MCPServer,
    MCPServerManager,
    MCPServerStreamableHttp,
    MCPUtil,
    create_static_tool_filter,
)
from agents.tool_context import ToolContext as SDKToolContext

from service.agents.context import ToolContext
from service.observability.tool_calls import report_tool_failure
from service.settings import MCPServerSpec, Settings, parse_mcp_secrets

logger = logging.getLogger(__name__)

UNAVAILABLE = "This tool is unavailable right now; tell the user and carry on without it."


def mcp_secrets(settings: Settings) -> dict[str, str]:
    """`MCP_SERVER_SECRETS`, or none when it cannot be read (logged without its value)."""
    value = settings.mcp_server_secrets
    if value is None:
        return {}
    try:
        return parse_mcp_secrets(value.get_secret_value())
    except ValueError:
        logger.error(
            "MCP_SERVER_SECRETS is not a JSON object of server name -> header value; "
            "MCP servers are called without secrets"
        )
        return {}


def mcp_failure(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """Counts the call as failed; tells the model the tool is unavailable (never why: the text
    of an MCP error may carry the arguments or the server's internals)."""
    report_tool_failure(ctx, error)
    logger.warning("MCP tool call failed: %s", type(error).__name__)
    return UNAVAILABLE


def role_gated(tool: FunctionTool, roles: frozenset[str]) -> FunctionTool:
    """`tool`, refusing callers whose role is not in `roles` (checked at every call)."""
    invoke = tool.on_invoke_tool

    async def gated(ctx: SDKToolContext[Any], arguments: str) -> Any:
        who = ctx.context
        if not isinstance(who, ToolContext) or who.role not in roles:
            role = who.role if isinstance(who, ToolContext) else "unknown"
            return f"The tool did not complete: the role '{role}' may not use {tool.name}."
        return await invoke(ctx, arguments)

    return dataclasses.replace(tool, on_invoke_tool=gated)


class MCPToolbox:
    """The MCP servers' tools, available once `start` has connected the servers."""

    def __init__(self, specs: Sequence[MCPServerSpec], secrets: dict[str, str]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.servers: list[MCPServer] = [
            self._server(spec, secrets.get(spec.name)) for spec in specs
        ]
        self.manager = MCPServerManager(
            self.servers, connect_timeout_seconds=15.0, connect_in_parallel=True
        )
        self.tools: list[FunctionTool] = []

    @staticmethod
    def _server(spec: MCPServerSpec, secret: str | None) -> MCPServerStreamableHttp:
        headers = {spec.auth_header: secret} if secret else {}
        return MCPServerStreamableHttp(
            {"url": spec.url, "headers": headers, "timeout": spec.timeout_seconds},
            name=spec.name,
            cache_tools_list=True,
            client_session_timeout_seconds=spec.timeout_seconds,
            tool_filter=create_static_tool_filter(allowed_tool_names=list(spec.tools)),
            failure_error_function=mcp_failure,
        )

    async def start(self) -> list[FunctionTool]:
        """Connect and list; what cannot be reached is logged and left out."""
        if not self.servers:
            return []
        await self.manager.__aenter__()
        for server, error in self.manager.errors.items():
            logger.warning(
                "MCP server %r is unavailable, its tools are not offered: %s",
                server.name,
                type(error).__name__,
            )
        listing_agent = Agent[ToolContext](name="mcp-listing")
        context = RunContextWrapper[Any](context=None)
        for server in self.manager.active_servers:
            spec = self.specs[server.name]
            try:
                listed = await MCPUtil.get_function_tools(
                    server, False, context, listing_agent, failure_error_function=mcp_failure
                )
            except Exception as exc:
                logger.warning(
                    "MCP server %r did not list its tools, they are not offered: %s",
                    server.name,
                    type(exc).__name__,
                )
                continue
            for tool in listed:
                if not isinstance(tool, FunctionTool):
                    continue
                gated = tool if spec.read_only else role_gated(tool, frozenset(spec.roles))
                self.tools.append(gated)
            logger.info(
                "MCP server %r offers %s", server.name, ", ".join(t.name for t in listed) or "none"
            )
        return self.tools

    async def stop(self) -> None:
        if self.servers:
            await self.manager.__aexit__(None, None, None)
