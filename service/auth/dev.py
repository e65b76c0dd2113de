"""`AUTH_MODE=dev`: the caller names itself. For local use only; refused in production."""

from __future__ import annotations

import re

from quart import Request

from service.auth.errors import AuthenticationError
from service.auth.identity import Identity
from service.settings import Settings

HEADERS = ("X-User-Id", "X-Tenant-Id", "X-User-Role")
_IDENTITY = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")


def dev_identity(request: Request, settings: Settings) -> Identity:
    """Identity from `X-User-Id` / `X-Tenant-Id` / `X-User-Role`, each falling back to its
    `DEV_*` setting."""
    values = []
    for header, default in zip(
        HEADERS, (settings.dev_user_id, settings.dev_tenant_id, settings.dev_role), strict=True
    ):
        value = request.headers.get(header, "").strip() or default
        if not _IDENTITY.match(value):
            raise AuthenticationError(
                f"{header} must be 1-128 characters of letters, digits and ._:@+-",
                reason="malformed",
            )
        values.append(value)
    user_id, tenant_id, role = values
    return Identity(user_id, tenant_id, role)
