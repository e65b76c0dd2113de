"""Small waits and checks shared by the end-to-end tests against real server processes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.waiting import wait_for

WORDS = " ".join(f"word{n}" for n in range(20))


async def wait_until_streaming(mock: MockLLM, streams_before: int = 0, within: float = 15) -> None:
    """Until the model has begun answering a conversation request (its first token is out)."""

    async def streaming() -> bool | None:
        return any(log.chunks_sent > 0 for log in mock.streams[streams_before:]) or None

    await wait_for(streaming, what="the model to be asked", within=within, every=0.02)


async def readiness(base_url: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        response = await http.get("/readyz")
        body: dict[str, Any] = response.json()
        return response.status_code, body


async def items(client: ChatKitClient, thread_id: str) -> list[dict[str, Any]]:
    page = await client.list_items(thread_id, order="asc", limit=100)
    data: list[dict[str, Any]] = page["data"]
    assert not page["has_more"]
    return data


def text_of(item: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in item["content"])
