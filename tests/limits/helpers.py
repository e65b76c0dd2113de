"""Shared by the limit tests: a stream held open, bounded waits, a Redis to count in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.client import ChatKitClient, user_input

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORDS = " ".join(f"word{n}" for n in range(40))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def redis_target() -> tuple[str, int]:
    """Host and port of the test Redis; a skip saying why when it does not answer PING (a
    failure under CI=true)."""
    parts = urlsplit(TEST_REDIS_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        answer = f"{type(exc).__name__}: {exc}".encode()
    if not answer.startswith(b"+PONG"):
        message = f"Redis at TEST_REDIS_URL ({host}:{port}) does not answer PING: {answer!r}"
        if in_ci():
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    return host, port


def unique_prefix() -> str:
    return f"ck_test_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def redis_keys_removed(prefix: str) -> Iterator[None]:
    """Deletes every key under `prefix` afterwards (the test's own keys only)."""
    import redis

    try:
        yield
    finally:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


class OpenStream:
    def __init__(self, lines: AsyncIterator[str]) -> None:
        self._lines = lines

    async def finish(self) -> None:
        """Reads the rest of the answer, to its end."""
        async for _ in self._lines:
            pass


@contextlib.asynccontextmanager
async def open_stream(client: ChatKitClient, text: str = "talk a lot") -> AsyncIterator[OpenStream]:
    """A `threads.create` stream, open once its first event arrived; closed on exit (which
    is the stop button when it has not ended yet)."""
    body = json.dumps({"type": "threads.create", "params": {"input": user_input(text)}})
    headers = {"Content-Type": "application/json"}
    async with client.http.stream("POST", "/chatkit/api", content=body, headers=headers) as r:
        assert r.status_code == 200, await r.aread()
        lines = r.aiter_lines()
        async for line in lines:
            if line.startswith("data: "):
                break
        yield OpenStream(lines)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Waits (bounded) until `check()` is true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


def assert_limited(response: httpx.Response, limit_text: str) -> None:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert limit_text in error["message"] and "\n" not in error["message"]
