"""Turns an HTTP request into the `RequestContext`: the one place identity is decided.

Only the development mode exists so far: the caller names itself with `X-User-Id` /
`X-Tenant-Id`. Real authentication replaces `authenticate()` without touching its callers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from quart import Request

from service.request_context import RequestContext
from service.settings import Settings

logger = logging.getLogger(__name__)

Authenticator = Callable[[Request], Awaitable[RequestContext]]

_IDENTITY = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


class AuthenticationError(Exception):
    """The request carries no acceptable identity; answered with 401."""


def preferred_locale(accept_language: str | None) -> str | None:
    """The highest-weighted language tag of an `Accept-Language` header, if any."""
    candidates: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _LANGUAGE_TAG.match(tag):
            continue
        weight = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                continue
        if weight > 0:
            # Earlier entries win ties: the header's order expresses preference too.
            candidates.append((weight, -position, tag))
    return max(candidates)[2] if candidates else None


def dev_authenticator(settings: Settings) -> Authenticator:
    """Identity from `X-User-Id` / `X-Tenant-Id`, falling back to a fixed development user."""

    async def authenticate(request: Request) -> RequestContext:
        user_id = request.headers.get("X-User-Id", "").strip() or settings.dev_user_id
        tenant_id = request.headers.get("X-Tenant-Id", "").strip() or settings.dev_tenant_id
        for header, value in (("X-User-Id", user_id), ("X-Tenant-Id", tenant_id)):
            if not _IDENTITY.match(value):
                raise AuthenticationError(
                    f"{header} must be 1-128 characters of letters, digits and ._:@+-"
                )
        return RequestContext(
            user_id=user_id,
            tenant_id=tenant_id,
            role="user",
            locale=preferred_locale(request.headers.get("Accept-Language")),
        )

    return authenticate


def create_authenticator(settings: Settings) -> Authenticator:
    if settings.auth_mode == "dev":
        logger.warning(
            "AUTH_MODE=dev: callers choose their identity with X-User-Id / X-Tenant-Id "
            "(default user %r). Do not expose this server to untrusted clients.",
            settings.dev_user_id,
        )
        return dev_authenticator(settings)
    raise AssertionError(f"unhandled auth mode {settings.auth_mode}")
