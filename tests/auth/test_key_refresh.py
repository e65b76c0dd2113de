"""The JWKS cache under a controlled clock: how often the issuer is asked, whatever arrives."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from service.auth import AuthenticationError, IdentityProviderUnavailable
from service.auth.fetch import fetch_json
from service.auth.jwt import JwtVerifier
from service.auth.keys import JwksKeys
from tests.auth.identity_provider import AUDIENCE, IdentityProvider, claims, rsa_key, sign


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def verifier(idp: IdentityProvider, clock: Clock, *, min_refresh: float = 30) -> JwtVerifier:
    async def locate() -> str:
        return idp.jwks_url

    keys = JwksKeys(
        locate, fetch_json, cache_seconds=600, min_refresh_seconds=min_refresh, clock=clock
    )
    return JwtVerifier(keys, issuer=idp.issuer, audience=AUDIENCE)


async def refused_reason(jwt: JwtVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as refused:
        await jwt.claims(token)
    return refused.value.reason


def made_up_kid_token(idp: IdentityProvider) -> str:
    return sign(rsa_key(), claims(idp.issuer), kid=f"made-up-{uuid.uuid4().hex}")


async def test_unknown_kids_refetch_at_most_once_per_interval(idp: IdentityProvider) -> None:
    clock = Clock()
    jwt = verifier(idp, clock)
    for _ in range(50):
        assert await refused_reason(jwt, made_up_kid_token(idp)) == "unknown_key"
    assert idp.jwks_fetches == 1
    clock.advance(29)
    for _ in range(50):
        await refused_reason(jwt, made_up_kid_token(idp))
    assert idp.jwks_fetches == 1
    clock.advance(2)
    for _ in range(50):
        await refused_reason(jwt, made_up_kid_token(idp))
    assert idp.jwks_fetches == 2


async def test_concurrent_unknown_kids_share_one_fetch(idp: IdentityProvider) -> None:
    clock = Clock()
    jwt = verifier(idp, clock)
    await jwt.claims(idp.token())
    clock.advance(31)
    results = await asyncio.gather(
        *(jwt.claims(made_up_kid_token(idp)) for _ in range(40)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert idp.jwks_fetches == 2


async def test_a_rotated_key_is_accepted_once_the_interval_allows_a_refetch(
    idp: IdentityProvider,
) -> None:
    clock = Clock()
    jwt = verifier(idp, clock)
    assert (await jwt.claims(idp.token()))["sub"] == "alice"
    new = idp.rotate()
    token = idp.token(new)
    assert await refused_reason(jwt, token) == "unknown_key"  # fetched moments ago
    clock.advance(30)
    assert (await jwt.claims(token))["sub"] == "alice"
    assert idp.jwks_fetches == 2


async def test_keys_are_refetched_after_the_cache_time_and_kept_when_that_fails(
    idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    jwt = verifier(idp, clock)
    await jwt.claims(idp.token())
    clock.advance(599)
    await jwt.claims(idp.token())
    assert idp.jwks_fetches == 1
    clock.advance(2)
    await jwt.claims(idp.token())
    assert idp.jwks_fetches == 2
    idp.failing = True
    clock.advance(601)
    assert (await jwt.claims(idp.token()))["sub"] == "alice"  # the issuer is down: old keys
    assert "keeping the keys fetched before" in caplog.text


async def test_no_keys_yet_and_the_issuer_down_is_unavailable_then_recovers(
    idp: IdentityProvider,
) -> None:
    clock = Clock()
    jwt = verifier(idp, clock)
    idp.failing = True
    for _ in range(5):
        with pytest.raises(IdentityProviderUnavailable):
            await jwt.claims(idp.token())
    idp.failing = False
    with pytest.raises(IdentityProviderUnavailable):
        await jwt.claims(idp.token())  # the last attempt was moments ago: not yet retried
    assert idp.jwks_fetches == 0
    clock.advance(30)
    assert (await jwt.claims(idp.token()))["sub"] == "alice"
    assert idp.jwks_fetches == 1
