"""How a refused request's connection ends."""

from __future__ import annotations

from quart import Quart, Response, request


def close_connections_after_refusals(app: Quart) -> None:
    """Answer with `Connection: close` (HTTP/1.x) when the request's body may not have been read:
    every refusal (credentials are checked before the body is read; a too-large or malformed
    upload is refused mid-body) and any body sent where none is expected.

    When the answer goes out before the body has fully arrived, Hypercorn cannot reuse the
    connection and closes it; a client that has already sent its next request on it then sees
    the connection drop without an answer. Saying `close` up front makes it open a new one.
    """

    @app.after_request
    async def close_after_refusal(response: Response) -> Response:
        if request.http_version not in ("1.0", "1.1"):
            return response
        has_body = bool(request.content_length) or "chunked" in request.headers.get(
            "Transfer-Encoding", ""
        )
        bodiless_method = request.method in ("GET", "HEAD", "OPTIONS", "DELETE")
        if response.status_code == 401 or (
            has_body and (response.status_code >= 400 or bodiless_method)
        ):
            response.headers["Connection"] = "close"
        return response
