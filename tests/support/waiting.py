"""The one way tests wait for something: poll a check until it holds or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


async def wait_for(
    check: Callable[[], Awaitable[T | None]], *, what: str, within: float = 30, every: float = 0.1
) -> T:
    """The first non-None result of `check()`; fails naming `what` after `within` seconds.
    `check` may raise `httpx.HTTPError` while the thing it asks is not up yet."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
        except httpx.HTTPError:
            result = None
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"waited {within:g} s: {what}"
        await asyncio.sleep(every)


def wait_for_sync(
    check: Callable[[], T | None], *, what: str, within: float = 30, every: float = 0.1
) -> T:
    """`wait_for` for code without an event loop (process start-up, say)."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result is not None:
            return result
        assert time.monotonic() < deadline, f"waited {within:g} s: {what}"
        time.sleep(every)


async def status_of(base_url: str, path: str, status: int, within: float = 30) -> httpx.Response:
    """Wait until `GET path` answers `status`; returns that answer."""
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:

        async def answered() -> httpx.Response | None:
            response = await http.get(path)
            return response if response.status_code == status else None

        return await wait_for(answered, what=f"{path} to answer {status}", within=within)
