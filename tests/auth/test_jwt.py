"""AUTH_MODE=jwt, for each key source: a shared HS256 secret, a JWKS URL (RS256) and an OpenID
issuer's discovery document (ES256), the keys served by a loopback identity provider."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest

from service.agents.factory import create_model
from service.auth import Authenticator, IdentityProviderUnavailable
from service.chatkit.failures import FailureTable
from service.observability.metrics import Metrics
from service.settings import Settings
from tests.auth.helpers import authenticator, bearer, identify, refusal
from tests.auth.identity_provider import (
    AUDIENCE,
    HS_SECRET,
    IdentityProvider,
    claims,
    ec_key,
    forge,
    rsa_key,
    sign,
    sign_hs256,
)

FAILURES = FailureTable(create_model(Settings(_env_file=None)))


@dataclass
class Source:
    name: str
    authenticate: Authenticator
    token: Callable[..., str]
    """A valid token; keyword arguments replace claims (None removes one)."""
    forged_with_other_key: Callable[..., str]
    """A token with the right header but signed by a key the service does not trust."""
    kid: str | None


@pytest.fixture(params=["hs256", "jwks", "oidc"])
def source(request: pytest.FixtureRequest, idp: IdentityProvider) -> Source:
    if request.param == "hs256":
        return Source(
            "hs256",
            authenticator(
                auth_mode="jwt",
                auth_jwt_secret=HS_SECRET,
                auth_issuer=idp.issuer,
                auth_audience=AUDIENCE,
            ),
            lambda **o: sign_hs256(claims(idp.issuer, **o)),
            lambda **o: sign_hs256(claims(idp.issuer, **o), secret="another-secret-" + "x" * 32),
            None,
        )
    if request.param == "jwks":
        impostor = rsa_key(kid=idp.rsa.kid)
        return Source(
            "jwks",
            authenticator(
                auth_mode="jwt",
                auth_jwks_url=idp.jwks_url,
                auth_issuer=idp.issuer,
                auth_audience=AUDIENCE,
            ),
            lambda **o: idp.token(idp.rsa, **o),
            lambda **o: sign(impostor, claims(idp.issuer, **o)),
            idp.rsa.kid,
        )
    impostor = ec_key(kid=idp.ec.kid)
    return Source(
        "oidc",
        authenticator(auth_mode="jwt", auth_oidc_issuer=idp.issuer, auth_audience=AUDIENCE),
        lambda **o: idp.token(idp.ec, **o),
        lambda **o: sign(impostor, claims(idp.issuer, **o)),
        idp.ec.kid,
    )


async def test_a_valid_token_gives_user_tenant_role_and_locale(source: Source) -> None:
    context = await identify(
        source.authenticate, {**bearer(source.token()), "Accept-Language": "de-CH, en;q=0.5"}
    )
    assert (context.user_id, context.tenant_id, context.role) == ("alice", "acme", "manager")
    assert context.locale == "de-CH"


async def test_a_little_clock_skew_is_allowed(source: Source) -> None:
    now = int(time.time())
    context = await identify(source.authenticate, bearer(source.token(exp=now - 10)))
    assert context.user_id == "alice"
    context = await identify(source.authenticate, bearer(source.token(nbf=now + 10)))
    assert context.user_id == "alice"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -120}, "expired"),
        ({"nbf": 300}, "not_yet_valid"),
        ({"iat": 600, "nbf": None}, "not_yet_valid"),
        ({"aud": "another-service"}, "wrong_audience"),
        ({"aud": None}, "wrong_audience"),
        ({"iss": "https://issuer.example.org"}, "wrong_issuer"),
        ({"iss": None}, "wrong_issuer"),
        ({"exp": None}, "missing_claim"),
        ({"sub": None}, "missing_claim"),
        ({"tenant": None}, "missing_claim"),
        ({"sub": {"id": 1}}, "invalid_claim"),
        ({"tenant": "x" * 300}, "invalid_claim"),
        ({"role": [{}]}, "invalid_claim"),
    ],
)
async def test_tokens_that_fail_a_claim_check_are_refused(
    source: Source, overrides: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    timed = {"exp", "nbf", "iat"}
    values = {k: (now + v if k in timed and v is not None else v) for k, v in overrides.items()}
    token = source.token(**values)
    assert (await refusal(source.authenticate, bearer(token), secret=token)).reason == reason


async def test_a_token_signed_by_another_key_is_refused(source: Source) -> None:
    token = source.forged_with_other_key()
    refused = await refusal(source.authenticate, bearer(token), secret=token)
    assert refused.reason == "bad_signature"


async def test_an_unsigned_token_is_refused(source: Source) -> None:
    header: dict[str, Any] = {"alg": "none", "typ": "JWT"}
    if source.kid:
        header["kid"] = source.kid
    for alg in ("none", "None", "NONE"):
        token = forge({**header, "alg": alg}, claims_of(source))
        refused = await refusal(source.authenticate, bearer(token), secret=token)
        assert refused.reason == "bad_algorithm"


def claims_of(source: Source) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(source.token(), options={"verify_signature": False})
    return payload


@pytest.mark.parametrize(
    "header",
    [
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30"},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer two tokens"},
        {"Authorization": "Bearer " + "a" * 20000},
    ],
)
async def test_malformed_credentials_are_refused(source: Source, header: dict[str, str]) -> None:
    refused = await refusal(source.authenticate, header)
    assert refused.reason == "malformed"


async def test_missing_credentials_are_refused_naming_the_header(source: Source) -> None:
    refused = await refusal(source.authenticate, {"X-User-Id": "alice"})
    assert refused.reason == "missing"
    assert "Authorization: Bearer" in str(refused)


async def test_role_defaults_to_employee_and_a_list_gives_the_highest_known(
    source: Source,
) -> None:
    assert (await identify(source.authenticate, bearer(source.token(role=None)))).role == (
        "employee"
    )
    token = source.token(role=["reader", "employee", "admin", "manager"])
    assert (await identify(source.authenticate, bearer(token))).role == "admin"
    token = source.token(role=["auditor"])
    assert (await identify(source.authenticate, bearer(token))).role == "auditor"


# --- algorithm confusion ------------------------------------------------------------------


async def test_hs256_signed_with_the_rsa_public_key_is_refused(idp: IdentityProvider) -> None:
    """The classic confusion: the attacker uses the published RSA key as an HMAC secret."""
    authenticate = authenticator(
        auth_mode="jwt", auth_jwks_url=idp.jwks_url, auth_issuer=idp.issuer, auth_audience=AUDIENCE
    )
    payload = claims(idp.issuer)
    for key in (idp.rsa.public_pem, idp.rsa.public_pem.strip()):
        token = forge({"alg": "HS256", "typ": "JWT", "kid": idp.rsa.kid}, payload, key)
        refused = await refusal(authenticate, bearer(token), secret=token)
        assert refused.reason == "bad_algorithm"
    # and the honest RS256 token with that key passes
    assert (await identify(authenticate, bearer(idp.token()))).user_id == "alice"


async def test_an_rs256_token_is_refused_where_hs256_is_configured(idp: IdentityProvider) -> None:
    authenticate = authenticator(auth_mode="jwt", auth_jwt_secret=HS_SECRET)
    token = idp.token()
    assert (await refusal(authenticate, bearer(token), secret=token)).reason == "bad_algorithm"


async def test_a_token_cannot_pick_another_algorithm_for_the_same_key(
    idp: IdentityProvider,
) -> None:
    authenticate = authenticator(
        auth_mode="jwt", auth_jwks_url=idp.jwks_url, auth_issuer=idp.issuer, auth_audience=AUDIENCE
    )
    token = jwt.encode(
        claims(idp.issuer), idp.rsa.private, algorithm="PS256", headers={"kid": idp.rsa.kid}
    )
    assert (await refusal(authenticate, bearer(token), secret=token)).reason == "bad_algorithm"


async def test_hs256_checks_issuer_and_audience_only_when_set() -> None:
    authenticate = authenticator(auth_mode="jwt", auth_jwt_secret=HS_SECRET)
    token = sign_hs256(claims("https://anyone.example", aud=None))
    assert (await identify(authenticate, bearer(token))).tenant_id == "acme"


# --- keys: unknown kid, rotation, outages --------------------------------------------------


async def test_an_unknown_kid_is_refused(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt", auth_jwks_url=idp.jwks_url, auth_issuer=idp.issuer, auth_audience=AUDIENCE
    )
    token = sign(rsa_key(kid="nobody-knows-me"), claims(idp.issuer))
    assert (await refusal(authenticate, bearer(token), secret=token)).reason == "unknown_key"


async def test_a_rotated_key_is_fetched_when_a_token_names_it(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt",
        auth_jwks_url=idp.jwks_url,
        auth_issuer=idp.issuer,
        auth_audience=AUDIENCE,
        auth_jwks_min_refresh_seconds=0,
    )
    assert (await identify(authenticate, bearer(idp.token()))).user_id == "alice"
    assert idp.jwks_fetches == 1
    new = idp.rotate()
    context = await identify(authenticate, bearer(idp.token(new, sub="bob")))
    assert context.user_id == "bob"
    assert idp.jwks_fetches == 2
    # cached from now on
    await identify(authenticate, bearer(idp.token(new)))
    assert idp.jwks_fetches == 2


async def test_a_flood_of_unknown_kids_fetches_the_keys_once(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt",
        auth_jwks_url=idp.jwks_url,
        auth_issuer=idp.issuer,
        auth_audience=AUDIENCE,
        auth_jwks_min_refresh_seconds=3600,
    )
    impostor = rsa_key()
    for number in range(60):
        token = sign(impostor, claims(idp.issuer), kid=f"made-up-{number}")
        assert (await refusal(authenticate, bearer(token))).reason == "unknown_key"
    assert idp.jwks_fetches == 1
    assert (await identify(authenticate, bearer(idp.token()))).user_id == "alice"
    assert idp.jwks_fetches == 1


async def test_an_unreachable_issuer_is_a_503_and_is_not_hammered(
    idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    idp.failing = True
    metrics = Metrics()
    authenticate = authenticator(
        metrics=metrics,
        auth_mode="jwt",
        auth_oidc_issuer=idp.issuer,
        auth_audience=AUDIENCE,
        auth_jwks_min_refresh_seconds=3600,
    )
    for _ in range(20):
        with pytest.raises(IdentityProviderUnavailable) as unavailable:
            await identify(authenticate, bearer(idp.token(idp.ec)))
        assert FAILURES.classify(unavailable.value).status == 503  # answered as our outage
    assert idp.discovery_fetches + idp.jwks_fetches == 0  # the failing server counts no hits
    warnings = [r for r in caplog.records if "could not fetch the JWT signing keys" in r.message]
    assert len(warnings) == 1
    assert (
        metrics.registry.get_sample_value(
            "chatkit_auth_failures_total", {"reason": "keys_unavailable"}
        )
        == 20
    )


async def test_a_discovery_document_for_another_issuer_is_not_trusted(
    idp: IdentityProvider, caplog: pytest.LogCaptureFixture
) -> None:
    idp.discovery_issuer = "https://evil.example"
    authenticate = authenticator(
        auth_mode="jwt", auth_oidc_issuer=idp.issuer, auth_audience=AUDIENCE
    )
    with pytest.raises(IdentityProviderUnavailable):
        await identify(authenticate, bearer(idp.token(idp.ec)))
    assert idp.jwks_fetches == 0
    assert any("another issuer" in r.message for r in caplog.records)


# --- where the token comes from, and which claims carry the identity -----------------------


async def test_a_bare_token_from_the_iap_header(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt",
        auth_jwks_url=idp.jwks_url,
        auth_issuer=idp.issuer,
        auth_audience=AUDIENCE,
        auth_token_header="x-goog-iap-jwt-assertion",
        auth_user_claim="email",
        auth_default_tenant="example",
    )
    token = idp.token(idp.ec, email="alice@example.com", tenant=None)
    context = await identify(authenticate, {"X-Goog-IAP-JWT-Assertion": token})
    assert (context.user_id, context.tenant_id) == ("alice@example.com", "example")
    # Authorization is not where this mode looks
    refused = await refusal(authenticate, bearer(token), secret=token)
    assert refused.reason == "missing"
    assert "x-goog-iap-jwt-assertion" in str(refused)


async def test_claim_names_are_configurable(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt",
        auth_jwks_url=idp.jwks_url,
        auth_issuer=idp.issuer,
        auth_audience=AUDIENCE,
        auth_user_claim="oid",
        auth_tenant_claim="https://chat.example.com/tenant",
        auth_role_claim="groups",
    )
    namespaced: dict[str, Any] = {"https://chat.example.com/tenant": "north"}
    token = sign(
        idp.rsa,
        claims(
            idp.issuer,
            oid="0f7c-11",
            sub="ignored",
            tenant="ignored",
            role="ignored",
            groups=["employee", "manager"],
            **namespaced,
        ),
    )
    context = await identify(authenticate, bearer(token))
    assert (context.user_id, context.tenant_id, context.role) == ("0f7c-11", "north", "manager")
    refused = await refusal(authenticate, bearer(idp.token()))
    assert refused.reason == "missing_claim"
    assert "'oid'" in str(refused)


async def test_the_default_tenant_applies_only_to_tokens_without_one(idp: IdentityProvider) -> None:
    authenticate = authenticator(
        auth_mode="jwt",
        auth_jwt_secret=HS_SECRET,
        auth_default_tenant="solo",
    )
    no_tenant = sign_hs256(claims(idp.issuer, tenant=None))
    assert (await identify(authenticate, bearer(no_tenant))).tenant_id == "solo"
    assert (await identify(authenticate, bearer(sign_hs256(claims(idp.issuer))))).tenant_id == (
        "acme"
    )


# --- what a refusal leaves behind: a metric by reason and a log line without the token ---


async def test_refusals_are_counted_by_reason_and_logged_without_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    authenticate = authenticator(metrics=metrics, auth_mode="jwt", auth_jwt_secret=HS_SECRET)
    expired = sign_hs256(claims("https://issuer", exp=int(time.time()) - 3600))
    with caplog.at_level(logging.INFO, logger="service.auth"):
        await refusal(authenticate, {})
        await refusal(authenticate, bearer(expired), secret=expired)
        await refusal(authenticate, bearer(expired), secret=expired)
        await refusal(authenticate, bearer("garbage-token-value"))

    def count(reason: str) -> float | None:
        return metrics.registry.get_sample_value("chatkit_auth_failures_total", {"reason": reason})

    assert (count("missing"), count("expired"), count("malformed")) == (1, 2, 1)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "authentication refused (expired)" in logged
    assert expired not in logged
    assert expired.split(".")[2] not in logged
    assert "garbage-token-value" not in logged
