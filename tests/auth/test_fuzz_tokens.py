"""Property-based: whatever arrives as credentials, the authenticator answers with a refusal
(401) or an identity, never another exception."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.auth import AuthenticationError
from tests.auth.helpers import authenticator, identify
from tests.auth.identity_provider import AUDIENCE, HS_SECRET, _b64, ec_key, forge

ISSUER = "https://issuer.example"
KEY = ec_key(kid="fuzz-key")


async def published_keys(url: str) -> object:
    return {"keys": [KEY.public_jwk]}


HS256 = authenticator(auth_mode="jwt", auth_jwt_secret=HS_SECRET)
JWKS = authenticator(
    auth_mode="jwt",
    auth_jwks_url="https://issuer.example/jwks",
    auth_issuer=ISSUER,
    auth_audience=AUDIENCE,
    fetch=published_keys,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
header_fields = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["HS256", "RS256", "ES256", "none", "", "PS256"]) | json_values,
        "kid": st.sampled_from(["fuzz-key", "other"]) | json_values,
        "typ": json_values,
        "crit": json_values,
    },
)
CLAIMS = ("sub", "tenant", "role", "exp", "nbf", "iat", "iss", "aud", "jti")
claim_fields = st.fixed_dictionaries({}, optional=dict.fromkeys(CLAIMS, json_values))
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=300)


async def assert_only_refusals(headers: dict[str, str]) -> None:
    for authenticate in (HS256, JWKS):
        refusal: AuthenticationError | None = None
        try:
            context = await identify(authenticate, headers)
        except AuthenticationError as refused:
            refusal = refused
        if refusal is not None:
            assert "\n" not in str(refusal)
        else:
            assert context.user_id and context.tenant_id and context.role


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_fields, claim_fields, st.binary(max_size=64))
async def test_forged_tokens_are_refused_cleanly(
    header: dict[str, Any], payload: dict[str, Any], key: bytes
) -> None:
    try:
        token = forge(header, payload, key)
    except (ValueError, TypeError):
        return  # not JSON-serialisable (NaN is fine, but keys must be strings)
    await assert_only_refusals({"Authorization": f"Bearer {token}"})


@settings(max_examples=150, deadline=None)
@given(header_text)
async def test_arbitrary_authorization_headers_are_refused_cleanly(value: str) -> None:
    await assert_only_refusals({"Authorization": value})
    await assert_only_refusals({"Authorization": f"Bearer {value}"})


@settings(max_examples=100, deadline=None)
@given(st.lists(header_text, min_size=3, max_size=3), json_values)
async def test_raw_segments_are_refused_cleanly(segments: list[str], extra: Any) -> None:
    token = ".".join([_b64(json.dumps(extra).encode()), *segments[1:]])
    await assert_only_refusals({"Authorization": f"Bearer {token}"})
    await assert_only_refusals({"Authorization": f"Bearer {'.'.join(segments)}"})
