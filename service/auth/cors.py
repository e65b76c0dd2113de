"""Browser access from other origins (`CORS_ALLOWED_ORIGINS`), with quart-cors.

ChatKit's custom `fetch` sends `Authorization`, which a browser only lets through when the
preflight answer names it (`Access-Control-Allow-Headers: *` does not cover it), so the
allowed headers are listed one by one. Origins not on the list get no CORS headers at all, and
every answer says `Vary: Origin` so caches keep them apart.
"""

from __future__ import annotations

from quart import Quart
from quart_cors import cors

from service.auth.dev import HEADERS as DEV_HEADERS

ALLOWED_HEADERS = ("authorization", "content-type", "x-request-id", "accept-language")
EXPOSED_HEADERS = ("x-request-id", "retry-after", "www-authenticate")
ALLOWED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")
PREFLIGHT_MAX_AGE_SECONDS = 600


def allow_cross_origin(app: Quart, origins: tuple[str, ...], *, dev_headers: bool) -> None:
    """Answer preflights and mark answers for `origins` (nothing when there are none).
    `dev_headers`: also allow `X-User-Id` / `X-Tenant-Id` / `X-User-Role` (AUTH_MODE=dev)."""
    if not origins:
        return
    headers = [*ALLOWED_HEADERS, *(h.lower() for h in DEV_HEADERS if dev_headers)]
    cors(
        app,
        allow_origin=list(origins),
        allow_headers=headers,
        allow_methods=list(ALLOWED_METHODS),
        expose_headers=list(EXPOSED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        allow_credentials=False,
        send_origin_wildcard=False,
    )
