"""A small ChatKit protocol client over HTTP + SSE, as the ChatKit web component speaks it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx


def user_input(text: str, attachments: list[str] | None = None) -> dict[str, Any]:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": attachments or [],
        "inference_options": {},
    }


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[dict[str, Any]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: bytes = b""

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == type_]

    @property
    def thread_id(self) -> str:
        created = self.of_type("thread.created")
        if created:
            return str(created[0]["thread"]["id"])
        return str(self.events_with_item()[0]["item"]["thread_id"])

    def events_with_item(self) -> list[dict[str, Any]]:
        return [e for e in self.events if "item" in e]

    def done_items(self, type_: str | None = None) -> list[dict[str, Any]]:
        items = [e["item"] for e in self.of_type("thread.item.done")]
        return [i for i in items if type_ is None or i["type"] == type_]

    def assistant_text(self) -> str:
        return "".join(
            part["text"]
            for item in self.done_items("assistant_message")
            for part in item["content"]
        )

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")


def parse_sse(body: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    events: list[dict[str, Any]] = []
    comments: list[str] = []
    for block in body.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
            elif line.startswith(":"):
                comments.append(line[1:].strip())
    return events, comments


class ChatKitClient:
    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        tenant: str | None = None,
        token: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        """`user` / `tenant`: AUTH_MODE=dev headers; `token`: sent as `Authorization: Bearer`."""
        headers = {}
        if user:
            headers["X-User-Id"] = user
        if tenant:
            headers["X-Tenant-Id"] = tenant
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> ChatKitClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def post(self, payload: dict[str, Any] | bytes, **kwargs: Any) -> httpx.Response:
        content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return await self.http.post("/chatkit/api", content=content, headers=headers, **kwargs)

    async def call(self, type_: str, **params: Any) -> httpx.Response:
        return await self.post({"type": type_, "params": params})

    async def stream(self, type_: str, **params: Any) -> Stream:
        response = await self.call(type_, **params)
        events, comments = parse_sse(response.content)
        return Stream(response.status_code, response.headers, events, comments, response.content)

    async def create_thread(self, text: str) -> Stream:
        return await self.stream("threads.create", input=user_input(text))

    async def add_message(self, thread_id: str, text: str) -> Stream:
        return await self.stream(
            "threads.add_user_message", thread_id=thread_id, input=user_input(text)
        )

    async def get_thread(self, thread_id: str) -> dict[str, Any]:
        response = await self.call("threads.get_by_id", thread_id=thread_id)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def list_items(self, thread_id: str, **params: Any) -> dict[str, Any]:
        response = await self.call("items.list", thread_id=thread_id, **params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    async def list_threads(self, **params: Any) -> dict[str, Any]:
        response = await self.call("threads.list", **params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
