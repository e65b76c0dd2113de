"""Reading a token from the request's headers."""

from __future__ import annotations

from werkzeug.datastructures import Headers

from service.auth.errors import AuthenticationError

AUTHORIZATION = "authorization"
MAX_TOKEN_CHARS = 16 * 1024
"""Longer tokens are refused before any parsing (real JWTs are a few kilobytes at most)."""


def bearer_token(headers: Headers) -> str | None:
    """The token of `Authorization: Bearer <token>`; None when the header is absent or empty."""
    value = headers.get(AUTHORIZATION, "").strip()
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError(
            "the Authorization header must be 'Bearer <token>'", reason="malformed"
        )
    return _bounded(token)


def header_token(headers: Headers, name: str) -> str | None:
    """The token in header `name`: `Authorization` holds `Bearer <token>`, any other header
    (Google IAP's `x-goog-iap-jwt-assertion`, say) the bare token."""
    if name.lower() == AUTHORIZATION:
        return bearer_token(headers)
    value = headers.get(name, "").strip()
    return _bounded(value) if value else None


def _bounded(token: str) -> str:
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthenticationError(
            f"the token is longer than {MAX_TOKEN_CHARS} characters", reason="malformed"
        )
    return token
