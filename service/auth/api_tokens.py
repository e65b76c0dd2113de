"""Static bearer tokens for service-to-service callers, kept as SHA-256 hashes in a file.

`AUTH_API_TOKENS_FILE` holds JSON lines, one per token:
`{"sha256": "<hex digest of the token>", "user": "...", "tenant": "...", "role": "..."}`
(`tenant` may be left out when `AUTH_DEFAULT_TENANT` is set, `role` defaults to `employee`;
blank lines and lines starting with `#` are skipped). The tokens themselves are never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from pathlib import Path

from service.auth.identity import DEFAULT_ROLE, Identity, valid_identity
from service.settings import ConfigurationError

_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_FIELDS = frozenset({"sha256", "user", "tenant", "role"})


@dataclass(frozen=True, slots=True)
class ApiToken:
    digest: bytes
    identity: Identity


class ApiTokens:
    def __init__(self, tokens: tuple[ApiToken, ...]) -> None:
        self._tokens = tokens

    def __len__(self) -> int:
        return len(self._tokens)

    def match(self, token: str) -> Identity | None:
        """The identity of `token`, compared with every entry in constant time (no early exit,
        so the answer's timing does not tell how much of a hash matched or where)."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        found: Identity | None = None
        for entry in self._tokens:
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry.identity
        return found


def load_api_tokens(path: Path, *, default_tenant: str | None = None) -> ApiTokens:
    """Read the token file; anything wrong is one `ConfigurationError` line naming the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigurationError(f"AUTH_API_TOKENS_FILE: cannot read {path}: {cause}") from None
    tokens: list[ApiToken] = []
    seen: set[bytes] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        token = _parse_line(line, default_tenant)
        if isinstance(token, str):
            raise ConfigurationError(f"AUTH_API_TOKENS_FILE {path} line {number}: {token}")
        if token.digest in seen:
            raise ConfigurationError(
                f"AUTH_API_TOKENS_FILE {path} line {number}: the same sha256 appears twice"
            )
        seen.add(token.digest)
        tokens.append(token)
    if not tokens:
        raise ConfigurationError(f"AUTH_API_TOKENS_FILE {path}: no tokens in the file")
    return ApiTokens(tuple(tokens))


def _parse_line(line: str, default_tenant: str | None) -> ApiToken | str:
    """The entry of one line, or what is wrong with it (never quoting the line)."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        return "not a JSON object"
    if not isinstance(entry, dict):
        return "not a JSON object"
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r} (expected sha256, user, tenant, role)"
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
        return "sha256 must be the 64-character hex SHA-256 digest of the token"
    user = valid_identity(entry.get("user"))
    if user is None:
        return "user must be a string of 1-256 characters"
    tenant = valid_identity(entry["tenant"]) if "tenant" in entry else default_tenant
    if tenant is None:
        return "tenant is missing (or set AUTH_DEFAULT_TENANT)"
    role = valid_identity(entry.get("role", DEFAULT_ROLE))
    if role is None:
        return "role must be a string of 1-256 characters"
    return ApiToken(bytes.fromhex(digest), Identity(user, tenant, role))
