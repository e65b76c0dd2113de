"""`create_authenticator(settings)`: the one place a request's identity is decided.

Checked when the app is built (start-up): `dev` is refused with `ENVIRONMENT=production`, `jwt`
needs a key source, `api-token` a readable token file. Each failure is one
`ConfigurationError` line naming the setting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from quart import Request

from service.auth.api_tokens import ApiTokens, load_api_tokens
from service.auth.dev import HEADERS as DEV_HEADERS
from service.auth.dev import dev_identity
from service.auth.errors import AuthenticationError, IdentityProviderUnavailable
from service.auth.fetch import JsonFetcher, fetch_json
from service.auth.headers import AUTHORIZATION, bearer_token, header_token
from service.auth.identity import ClaimNames, Identity
from service.auth.jwt import JwtVerifier
from service.auth.keys import JwksKeys, KeySource, OidcDiscovery, SharedSecret
from service.auth.locale import preferred_locale
from service.request_context import RequestContext
from service.settings import ConfigurationError, Settings, mask_url_password

if TYPE_CHECKING:
    from service.observability.metrics import Metrics

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
"""HS256 wants a key at least as long as its hash (RFC 7518, 3.2)."""

Authenticator = Callable[[Request], Awaitable[RequestContext]]
"""HTTP request -> who asks; raises `AuthenticationError` (401) or `IdentityProviderUnavailable`
(503)."""
Identify = Callable[[Request], Awaitable[Identity]]


def create_authenticator(
    settings: Settings, *, metrics: Metrics | None = None, fetch: JsonFetcher = fetch_json
) -> Authenticator:
    """The authenticator `AUTH_MODE` asks for; refusals are counted in `metrics` by reason and
    logged (never with the token). `fetch` gets JWKS and discovery documents."""
    identify = _identify(settings, fetch)

    async def authenticate(request: Request) -> RequestContext:
        try:
            identity = await identify(request)
        except (AuthenticationError, IdentityProviderUnavailable) as exc:
            if metrics is not None:
                metrics.auth_failures.labels(exc.reason).inc()
            logger.info("authentication refused (%s): %s", exc.reason, exc)
            raise
        return RequestContext(
            user_id=identity.user_id,
            tenant_id=identity.tenant_id,
            role=identity.role,
            locale=preferred_locale(request.headers.get("Accept-Language")),
        )

    return authenticate


def _identify(settings: Settings, fetch: JsonFetcher) -> Identify:
    modes = settings.auth_modes
    if "dev" in modes:
        if settings.environment == "production":
            raise ConfigurationError(
                "AUTH_MODE: dev is refused when ENVIRONMENT=production "
                "(callers could name any user): use jwt or api-token"
            )
        logger.warning(
            "AUTH_MODE=dev: callers choose their identity with %s (default user %r, role %r). "
            "Do not expose this server to untrusted clients.",
            " / ".join(DEV_HEADERS),
            settings.dev_user_id,
            settings.dev_role,
        )

        async def identify_dev(request: Request) -> Identity:
            return dev_identity(request, settings)

        return identify_dev
    api_tokens = _api_tokens(settings) if "api-token" in modes else None
    verifier = _jwt_verifier(settings, fetch) if "jwt" in modes else None
    return TokenIdentifier(
        api_tokens=api_tokens,
        jwt=verifier,
        claims=ClaimNames(
            user=settings.auth_user_claim,
            tenant=settings.auth_tenant_claim,
            role=settings.auth_role_claim,
            default_tenant=settings.auth_default_tenant,
        ),
        token_header=settings.auth_token_header,
    )


def _api_tokens(settings: Settings) -> ApiTokens:
    if settings.auth_api_tokens_file is None:
        raise ConfigurationError(
            "AUTH_API_TOKENS_FILE: required with AUTH_MODE=api-token (the token hashes file)"
        )
    tokens = load_api_tokens(
        settings.auth_api_tokens_file, default_tenant=settings.auth_default_tenant
    )
    logger.info(
        "AUTH_MODE api-token: %d token(s) from %s", len(tokens), settings.auth_api_tokens_file
    )
    return tokens


def _jwt_verifier(settings: Settings, fetch: JsonFetcher) -> JwtVerifier:
    sources = [
        name
        for name, value in (
            ("AUTH_JWT_SECRET", settings.auth_jwt_secret),
            ("AUTH_JWKS_URL", settings.auth_jwks_url),
            ("AUTH_OIDC_ISSUER", settings.auth_oidc_issuer),
        )
        if value is not None
    ]
    if len(sources) > 1:
        raise ConfigurationError(
            f"{sources[1]}: set only one of {', '.join(sources)} (where the keys come from)"
        )
    keys: KeySource
    if settings.auth_jwt_secret is not None:
        secret = settings.auth_jwt_secret.get_secret_value().encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"AUTH_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes for HS256"
            )
        keys = SharedSecret(secret)
        source = "HS256 with AUTH_JWT_SECRET"
    elif settings.auth_jwks_url is not None:
        jwks_url = settings.auth_jwks_url

        async def locate() -> str:
            return jwks_url

        keys = _jwks(settings, locate, fetch)
        source = f"keys from {mask_url_password(jwks_url)}"
    elif settings.auth_oidc_issuer is not None:
        discovery = OidcDiscovery(settings.auth_oidc_issuer, fetch)
        keys = _jwks(settings, discovery.jwks_uri, fetch, issuer=discovery.issuer)
        source = f"keys of the OpenID issuer {settings.auth_oidc_issuer}"
    else:
        raise ConfigurationError(
            "AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_OIDC_ISSUER: one is required with "
            "AUTH_MODE=jwt (where the token signing keys come from)"
        )
    logger.info(
        "AUTH_MODE jwt: %s, token in %s, issuer %s, audience %s",
        source,
        settings.auth_token_header,
        settings.auth_issuer or settings.auth_oidc_issuer or "not checked",
        settings.auth_audience or "not checked",
    )
    return JwtVerifier(keys, issuer=settings.auth_issuer, audience=settings.auth_audience)


def _jwks(
    settings: Settings,
    locate: Callable[[], Awaitable[str]],
    fetch: JsonFetcher,
    *,
    issuer: Callable[[], str | None] = lambda: None,
) -> JwksKeys:
    return JwksKeys(
        locate,
        fetch,
        cache_seconds=settings.auth_jwks_cache_seconds,
        min_refresh_seconds=settings.auth_jwks_min_refresh_seconds,
        vouches_for=issuer,
    )


@dataclass(frozen=True, kw_only=True, eq=False)
class TokenIdentifier:
    """`jwt`, `api-token` or both: an API token in `Authorization: Bearer` is looked up first;
    anything else there (or in `AUTH_TOKEN_HEADER`) is verified as a JWT."""

    api_tokens: ApiTokens | None
    jwt: JwtVerifier | None
    claims: ClaimNames
    token_header: str

    @property
    def _jwt_in_authorization(self) -> bool:
        return self.jwt is not None and self.token_header.lower() == AUTHORIZATION

    async def __call__(self, request: Request) -> Identity:
        headers = request.headers
        if self.api_tokens is not None:
            bearer = bearer_token(headers)
            if bearer is not None:
                identity = self.api_tokens.match(bearer)
                if identity is not None:
                    return identity
                if not (self._jwt_in_authorization and bearer.count(".") == 2):
                    raise AuthenticationError("unknown API token", reason="unknown_token")
        if self.jwt is not None:
            token = header_token(headers, self.token_header)
            if token is not None:
                return self.claims.identity(await self.jwt.claims(token))
        raise AuthenticationError(self._missing_message(), reason="missing")

    def _missing_message(self) -> str:
        ways = []
        if self.api_tokens is not None or self._jwt_in_authorization:
            ways.append("'Authorization: Bearer <token>'")
        if self.jwt is not None and not self._jwt_in_authorization:
            ways.append(f"the {self.token_header} header")
        return f"credentials are missing: send {' or '.join(ways)}"
