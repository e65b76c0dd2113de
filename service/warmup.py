"""Warm-up before the server reports ready: pay the first turn's one-off costs at start-up.

The first turn after start used to take seconds longer than the next ones (profiled): the
openai client builds the pydantic validators of its streaming event types and imports its
`responses` resources on first use, its HTTP stack imports anyio's asyncio backend on its first
connection, the Agents SDK builds its own validators on its first run, and chatkit's event and
item models are completed on first use. Here a streamed run of a throwaway agent does all of
that against a canned answer from a loopback server of its own (the model provider is never
called, nothing is stored), and chatkit's public models are completed.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx2
from agents import (
    Agent,
    FunctionTool,
    Model,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    RunConfig,
    Runner,
)
from pydantic import BaseModel

from service.agents.streamed_events import StreamParsingOpenAI

logger = logging.getLogger(__name__)

ModelAPI = Literal["responses", "chat_completions"]

_MODEL = "warm-up"
_TEXT = "ready"


async def warm_up(
    api: ModelAPI,
    tools: Sequence[FunctionTool] = (),
    http_client: httpx2.AsyncClient | None = None,
) -> None:
    """Run one streamed turn through the same model class, HTTP stack (`http_client`, a fresh
    one, closed here) and tools the app uses, complete chatkit's models, then freeze the heap
    (`freeze_startup_heap`). A failure is logged and ignored: the first real turn is merely
    slower."""
    started = time.perf_counter()
    try:
        complete_chatkit_models()
        await _run_canned_turn(api, tools, http_client)
    except Exception as exc:
        logger.warning("warm-up failed; the first turn will be slower: %s", exc)
    else:
        logger.info("warmed up in %.2f s", time.perf_counter() - started)
    freeze_startup_heap()


async def _run_canned_turn(
    api: ModelAPI, tools: Sequence[FunctionTool], http_client: httpx2.AsyncClient | None
) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = StreamParsingOpenAI(
        api_key="warm-up",
        base_url=f"http://127.0.0.1:{port}/v1",
        max_retries=0,
        timeout=30.0,
        http_client=http_client,
    )
    model: Model = (
        OpenAIResponsesModel(model=_MODEL, openai_client=client)
        if api == "responses"
        else OpenAIChatCompletionsModel(model=_MODEL, openai_client=client)
    )
    agent = Agent[None](name="warm-up", instructions="Answer.", model=model, tools=list(tools))
    try:
        result = Runner.run_streamed(agent, "warm-up", run_config=RunConfig(tracing_disabled=True))
        async for _event in result.stream_events():
            pass
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


def freeze_startup_heap() -> None:
    """Take what start-up built (the SDKs' modules and validators, the app) out of the garbage
    collector's sight. A full collection walked those ~230,000 objects in ~150 ms, a stall of
    every stream now and then under load (the p99 of time to first token); they live as long
    as the process, so the collector has nothing to find among them."""
    gc.collect()
    gc.freeze()


def complete_chatkit_models() -> None:
    """Build the validators of chatkit's public models now rather than in the first turn."""
    import chatkit.types

    for name, value in vars(chatkit.types).items():
        if (
            not name.startswith("_")
            and isinstance(value, type)
            and issubclass(value, BaseModel)
            and value.__module__ == chatkit.types.__name__
        ):
            value.model_rebuild()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One canned streamed answer per connection, in the format of the path asked for."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in head.split("\r\n")
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        path = head.split(" ", 2)[1]
        writer.write(_canned_answer(responses_api=path.endswith("/responses")))
        await writer.drain()
    finally:
        writer.close()


def _canned_answer(*, responses_api: bool) -> bytes:
    events = _responses_events() if responses_api else _chat_chunks()
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events)
    if not responses_api:
        body += "data: [DONE]\n\n"
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
        f"content-length: {len(body.encode())}\r\n\r\n"
    )
    return head.encode() + body.encode()


def _responses_events() -> list[dict[str, Any]]:
    item_id = "warm-up-message"
    part = {"type": "output_text", "text": _TEXT, "annotations": []}
    message = {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": "completed",
        "content": [part],
    }
    position = {"item_id": item_id, "output_index": 0, "content_index": 0}

    def response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        usage = {
            "input_tokens": 1,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2,
        }
        return {
            "id": "resp_warm_up",
            "object": "response",
            "created_at": 0,
            "model": _MODEL,
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage if status == "completed" else None,
        }

    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **position, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **position, "delta": _TEXT, "logprobs": []},
        {"type": "response.output_text.done", **position, "text": _TEXT, "logprobs": []},
        {"type": "response.content_part.done", **position, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": response("completed", [message])},
    ]
    return [{**event, "sequence_number": n} for n, event in enumerate(events, start=1)]


def _chat_chunks() -> list[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-warm-up",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": _MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return [
        chunk({"role": "assistant", "content": _TEXT}, None),
        chunk({}, "stop"),
        {**chunk({}, None), "choices": [], "usage": usage},
    ]
