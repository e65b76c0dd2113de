"""How a refused request's connection ends."""

from __future__ import annotations

from quart import Quart, Response, request


def close_connections_after_refusals(app: Quart) -> None:
    """Answer a 401 with `Connection: close` (HTTP/1.x).

    Credentials are checked before the request body is read. When the answer goes out before
    the body has fully arrived, Hypercorn cannot reuse the connection and closes it; a client
    that has already sent its next request on it then sees the connection drop without an
    answer. Saying `close` up front makes it open a new connection instead.
    """

    @app.after_request
    async def close_after_refusal(response: Response) -> Response:
        if response.status_code == 401 and request.http_version in ("1.0", "1.1"):
            response.headers["Connection"] = "close"
        return response
