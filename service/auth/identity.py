"""Identity values (user, tenant, role) taken from a token or a token file, checked once."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.auth.errors import AuthenticationError

KNOWN_ROLES = ("employee", "manager", "admin")
"""The roles the service gives meaning to, least privileged first."""
DEFAULT_ROLE = "employee"
"""The role of a token that names none."""
MAX_IDENTITY_CHARS = 256


def valid_identity(value: object) -> str | None:
    """`value` as an id, or None when it is not one: a non-empty string (or whole number) of at
    most 256 characters without control characters (ids reach logs and SQL parameters)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > MAX_IDENTITY_CHARS:
        return None
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    tenant_id: str
    role: str


@dataclass(frozen=True, slots=True)
class ClaimNames:
    """Where a token keeps the identity (`AUTH_*_CLAIM`), and the tenant of tokens without one."""

    user: str = "sub"
    tenant: str = "tenant"
    role: str = "role"
    default_tenant: str | None = None

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        user = valid_identity(claims.get(self.user))
        if user is None:
            raise self._bad_claim(self.user, claims)
        tenant_claim = claims.get(self.tenant)
        if tenant_claim is None and self.default_tenant is not None:
            tenant: str | None = self.default_tenant
        else:
            tenant = valid_identity(tenant_claim)
        if tenant is None:
            raise self._bad_claim(self.tenant, claims)
        return Identity(user, tenant, self.role_of(claims.get(self.role)))

    def role_of(self, value: object) -> str:
        if value is None or value == []:
            return DEFAULT_ROLE
        candidates = value if isinstance(value, list) else [value]
        roles = [role for item in candidates if (role := valid_identity(item)) is not None]
        if not roles:
            raise AuthenticationError(
                f"the token's '{self.role}' claim must be a role name or a list of them",
                reason="invalid_claim",
            )
        known = [role for role in KNOWN_ROLES if role in roles]
        return known[-1] if known else roles[0]  # several: the most privileged one we know

    @staticmethod
    def _bad_claim(name: str, claims: Mapping[str, Any]) -> AuthenticationError:
        if claims.get(name) is None:
            return AuthenticationError(f"the token has no '{name}' claim", reason="missing_claim")
        return AuthenticationError(
            f"the token's '{name}' claim must be a string of 1-{MAX_IDENTITY_CHARS} characters",
            reason="invalid_claim",
        )
