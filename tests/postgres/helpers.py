"""Small waits and checks shared by the end-to-end tests against real server processes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM

WORDS = " ".join(f"word{n}" for n in range(20))


async def wait_until_streaming(mock: MockLLM, streams_before: int = 0, within: float = 15) -> None:
    """Until the model has begun answering a conversation request (its first token is out)."""
    deadline = asyncio.get_running_loop().time() + within
    while not any(log.chunks_sent > 0 for log in mock.streams[streams_before:]):
        assert asyncio.get_running_loop().time() < deadline, "the model was never asked"
        await asyncio.sleep(0.02)


async def wait_ready(base_url: str, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while True:
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "the server never became ready"
            await asyncio.sleep(0.1)


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
