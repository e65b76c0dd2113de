"""Fetching a small JSON document (a JWKS, an OpenID discovery document) without blocking."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import httpx

MAX_DOCUMENT_BYTES = 1024 * 1024
FETCH_TIMEOUT_SECONDS = 5.0

JsonFetcher = Callable[[str], Awaitable[object]]


class DocumentFetchError(Exception):
    """The document could not be fetched or is not what was expected (one line)."""


async def fetch_json(url: str) -> object:
    """GET `url` and parse its JSON body (at most 1 MB, within 5 s)."""
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise DocumentFetchError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise DocumentFetchError(f"larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise DocumentFetchError(type(exc).__name__) from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise DocumentFetchError("not JSON") from None
