"""Reference ChatKit backend ("what a user would pick instead").

Built the way the openai-chatkit docs show (docs/quickstart.md "Run your ChatKit server" +
"Generate model responses"): FastAPI + uvicorn, one POST /chatkit endpoint forwarding to a
ChatKitServer subclass whose respond() runs an Agents SDK Agent via Runner.run_streamed +
chatkit.agents.stream_agent_response, with the quickstart's in-memory store. No auth, metrics or
logs. The quickstart's code is the body of create_app(); the only benchmark additions are its
parameters (the mock model's loopback URL, the API flavour, an optional bearer token) and that
Agents SDK tracing is off, so nothing leaves the machine.

Run (from the project root, in bench/.venv):
  python -m bench.peer_fastapi --port 8900 --base-url http://127.0.0.1:8901/v1
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlparse

from agents import (
    Agent,
    Runner,
    set_default_openai_api,
    set_default_openai_client,
    set_tracing_disabled,
)
from chatkit.agents import AgentContext, simple_to_agent_input, stream_agent_response
from chatkit.server import ChatKitServer, StreamingResult
from chatkit.types import ThreadMetadata, ThreadStreamEvent, UserMessageItem
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from openai import AsyncOpenAI

from .store import MemoryStore


def loopback_url(url: str) -> str:
    host = urlparse(url).hostname or ""
    ok = host == "localhost"
    if not ok:
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
    if not ok:
        raise SystemExit(f"peer_fastapi: LLM base URL must be loopback, got {url!r}")
    return url


def create_app(
    base_url: str,
    *,
    api: Literal["responses", "chat_completions"] = "responses",
    model: str = "gpt-4.1-mini",
    api_key: str = "sk-mock",
    auth_token: str | None = None,
) -> FastAPI:
    set_tracing_disabled(True)
    set_default_openai_client(
        AsyncOpenAI(base_url=loopback_url(base_url), api_key=api_key), use_for_tracing=False
    )
    set_default_openai_api(api)

    assistant = Agent(name="assistant", instructions="You are a helpful assistant.", model=model)

    class MyChatKitServer(ChatKitServer[dict[str, Any]]):
        async def respond(
            self,
            thread: ThreadMetadata,
            input_user_message: UserMessageItem | None,
            context: dict[str, Any],
        ) -> AsyncIterator[ThreadStreamEvent]:
            # Convert recent thread items (which include the user message) to model input
            items_page = await self.store.load_thread_items(
                thread.id, after=None, limit=20, order="asc", context=context
            )
            input_items = await simple_to_agent_input(items_page.data)

            # Stream the run through ChatKit events
            agent_context = AgentContext(thread=thread, store=self.store, request_context=context)
            result = Runner.run_streamed(assistant, input_items, context=agent_context)
            async for event in stream_agent_response(agent_context, result):
                yield event

    app = FastAPI()
    server = MyChatKitServer(store=MemoryStore())

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/chatkit")
    async def chatkit(request: Request) -> Response:
        if auth_token and request.headers.get("authorization") != f"Bearer {auth_token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        result = await server.process(await request.body(), context={})
        if isinstance(result, StreamingResult):
            return StreamingResponse(result, media_type="text/event-stream")
        return Response(content=result.json, media_type="application/json")

    return app
