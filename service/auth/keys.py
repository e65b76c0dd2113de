"""Where a JWT's verification key comes from: a shared secret, a JWKS URL, or an OpenID Connect
issuer's discovery document.

Each source pins the algorithms it accepts: the secret HS256 only; a JWKS key the one
asymmetric algorithm it is bound to (its `alg`, or what its type implies). So a token can never
choose HS256 and have an RSA public key used as its HMAC secret, and `none` is never allowed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from jwt import PyJWK
from jwt.exceptions import PyJWKError

from service.auth.errors import AuthenticationError, IdentityProviderUnavailable
from service.auth.fetch import DocumentFetchError, JsonFetcher
from service.settings import mask_url_password

logger = logging.getLogger(__name__)

HMAC_ALGORITHMS = ("HS256",)
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DISCOVERY_PATH = "/.well-known/openid-configuration"

VerificationKey = PyJWK | bytes


class KeySource(Protocol):
    async def key_for(self, header: Mapping[str, Any]) -> tuple[VerificationKey, list[str]]:
        """The key to verify a token with this (unverified) header, and its algorithms."""
        ...

    def issuer(self) -> str | None:
        """The `iss` the source vouches for (OIDC discovery), once known."""
        ...


class SharedSecret:
    """HS256 with `AUTH_JWT_SECRET`."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    async def key_for(self, header: Mapping[str, Any]) -> tuple[VerificationKey, list[str]]:
        return self._secret, list(HMAC_ALGORITHMS)

    def issuer(self) -> str | None:
        return None


def signing_keys(document: object) -> dict[str | None, PyJWK]:
    """The usable signature keys of a JWKS document, by `kid`."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DocumentFetchError("not a JWKS document (no `keys` list)")
    keys: dict[str | None, PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") == "oct":
            continue  # a symmetric key has no business in a published key set
        try:
            key = PyJWK(entry)
        except PyJWKError:
            continue  # a key type this service cannot use; others may follow
        kid = entry.get("kid")
        if key.algorithm_name in ASYMMETRIC_ALGORITHMS and (kid is None or isinstance(kid, str)):
            keys[kid] = key
    if not keys:
        raise DocumentFetchError("no usable signing key in the JWKS")
    return keys


@dataclass(eq=False)
class JwksKeys:
    """Keys fetched from a JWKS URL, kept for `cache_seconds`, and refetched early when a token
    names a key (`kid`) the cache does not hold, for key rotation.

    Every fetch, whatever prompted it, waits at least `min_refresh_seconds` after the previous
    attempt, and concurrent requests share one fetch: a flood of tokens with made-up `kid`s, or
    an issuer that is down, costs the issuer at most one request per interval per process.
    """

    locate: Callable[[], Awaitable[str]]
    """The JWKS URL: the configured one, or the one an OIDC discovery document names."""
    fetch: JsonFetcher
    _: KW_ONLY
    cache_seconds: float
    min_refresh_seconds: float
    clock: Callable[[], float] = time.monotonic
    vouches_for: Callable[[], str | None] = lambda: None
    """The issuer these keys are known to belong to (OIDC discovery), once known."""
    _keys: dict[str | None, PyJWK] | None = field(default=None, init=False, repr=False)
    _fetched_at: float = field(default=0.0, init=False, repr=False)
    _attempted_at: float | None = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def issuer(self) -> str | None:
        return self.vouches_for()

    async def key_for(self, header: Mapping[str, Any]) -> tuple[VerificationKey, list[str]]:
        kid = header.get("kid")
        if self._keys is None or self.clock() - self._fetched_at >= self.cache_seconds:
            await self._refresh()
        key = self._find(kid)
        if key is None:
            await self._refresh()  # perhaps rotated; bounded by min_refresh_seconds
            key = self._find(kid)
        if key is None:
            raise AuthenticationError(
                "the token is signed with a key the issuer does not publish",
                reason="unknown_key",
            )
        return key, [key.algorithm_name]

    def _find(self, kid: object) -> PyJWK | None:
        if self._keys is None:
            raise IdentityProviderUnavailable(
                "The sign-in provider's keys could not be fetched; try again in a moment."
            )
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # a single key needs no name
        return self._keys.get(kid) if isinstance(kid, str) else None

    async def _refresh(self) -> None:
        async with self._lock:
            now = self.clock()
            if (
                self._attempted_at is not None
                and now - self._attempted_at < self.min_refresh_seconds
            ):
                return  # fetched (or tried) moments ago, perhaps by a request we waited for
            self._attempted_at = now
            url = ""
            try:
                url = await self.locate()
                keys = signing_keys(await self.fetch(url))
            except DocumentFetchError as exc:
                where = f" from {mask_url_password(url)}" if url else ""
                stale = "; keeping the keys fetched before" if self._keys else ""
                logger.warning("could not fetch the JWT signing keys%s: %s%s", where, exc, stale)
                return
            self._keys = keys
            self._fetched_at = self.clock()
            logger.info("fetched %d JWT signing key(s) from %s", len(keys), mask_url_password(url))


class OidcDiscovery:
    """The JWKS URL and issuer of an OpenID Connect issuer, from its discovery document (read
    once, on the first need, then kept)."""

    def __init__(self, issuer: str, fetch: JsonFetcher) -> None:
        self._configured = issuer
        self._fetch = fetch
        self._jwks_uri: str | None = None
        self._issuer: str | None = None

    def issuer(self) -> str | None:
        return self._issuer

    async def jwks_uri(self) -> str:
        if self._jwks_uri is None:
            url = self._configured.rstrip("/") + DISCOVERY_PATH
            document = await self._fetch(url)
            if not isinstance(document, dict):
                raise DocumentFetchError(f"{url} is not a discovery document")
            issuer, jwks_uri = document.get("issuer"), document.get("jwks_uri")
            if not isinstance(issuer, str) or issuer.rstrip("/") != self._configured.rstrip("/"):
                raise DocumentFetchError(
                    f"the discovery document names another issuer than {self._configured}"
                )
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise DocumentFetchError(f"{url} has no jwks_uri")
            self._issuer, self._jwks_uri = issuer, jwks_uri
        return self._jwks_uri
