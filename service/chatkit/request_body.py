"""Reading out a small request body before refusing the request.

A refusal decided from the headers alone (a 401, a 429) goes out with `Connection: close`
(auth/refusals.py), before the body has arrived. When the server then closes the connection
with the body still unread or on its way, the client's side gets a reset, and the reset can
take the answer with it: measured with httpx against the upload route, about half of such 429s
reached the client as a connection error. Waiting for a small body first lets the answer be
read. A large or slow body is not waited for: that client was refused anyway.
"""

from __future__ import annotations

import asyncio

from quart import request

DISCARD_MAX_BYTES = 1 << 20
DISCARD_MAX_SECONDS = 2.0


async def discard_small_body() -> None:
    length = request.content_length
    if length is None or length > DISCARD_MAX_BYTES:
        return
    try:
        async with asyncio.timeout(DISCARD_MAX_SECONDS):
            async for _chunk in request.body:
                pass
    except Exception:  # a body that cannot be read is the refused client's problem
        return
