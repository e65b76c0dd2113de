"""AUTH_MODE=api-token (alone and with jwt): SHA-256 hashes in a file, compared in constant
time; a bad file stops start-up with one line naming the line."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from service.auth import AuthenticationError, Authenticator
from service.settings import ConfigurationError
from tests.auth.helpers import authenticator, bearer, identify, refusal
from tests.auth.identity_provider import AUDIENCE, HS_SECRET, IdentityProvider, claims, sign_hs256

BUILD_BOT = "ckt_build_bot_3f9a1c0e5b7d2f4a6c8e0b1d3f5a7c9e"
REPORTER = "ckt_reporter_8e6c4a2f0d1b3c5e7a9f1b3d5c7e9a0b"


def line(secret: str, **fields: Any) -> str:
    return json.dumps({"sha256": hashlib.sha256(secret.encode()).hexdigest(), **fields})


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.jsonl"
    path.write_text(
        "# service accounts\n"
        + line(BUILD_BOT, user="build-bot", tenant="acme", role="admin")
        + "\n\n"
        + line(REPORTER, user="reporter", tenant="globex")
        + "\n"
    )
    return path


@pytest.fixture
def api_tokens(tokens_file: Path) -> Authenticator:
    return authenticator(auth_mode="api-token", auth_api_tokens_file=tokens_file)


async def test_a_listed_token_gives_its_identity(api_tokens: Authenticator) -> None:
    context = await identify(api_tokens, bearer(BUILD_BOT))
    assert (context.user_id, context.tenant_id, context.role) == ("build-bot", "acme", "admin")
    context = await identify(api_tokens, bearer(REPORTER))
    assert (context.user_id, context.tenant_id, context.role) == ("reporter", "globex", "employee")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        (bearer("ckt_not_in_the_file_000000000000000000000"), "unknown_token"),
        (bearer(BUILD_BOT[:-1]), "unknown_token"),
        (bearer(hashlib.sha256(BUILD_BOT.encode()).hexdigest()), "unknown_token"),
        ({"Authorization": BUILD_BOT}, "malformed"),
        ({"Authorization": f"Token {BUILD_BOT}"}, "malformed"),
    ],
)
async def test_other_credentials_are_refused(
    api_tokens: Authenticator, headers: dict[str, str], reason: str
) -> None:
    assert (await refusal(api_tokens, headers, secret=BUILD_BOT)).reason == reason


async def test_every_entry_is_compared_in_constant_time(
    api_tokens: Authenticator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No early exit: a match on the first entry, on the last, or on none compares every
    entry with `hmac.compare_digest`, so timing tells nothing about which matched."""
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(len(a))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for token in (BUILD_BOT, REPORTER, "ckt_unknown_token_value_000000000000000"):
        compared.clear()
        with contextlib.suppress(AuthenticationError):
            await identify(api_tokens, bearer(token))
        assert compared == [32, 32]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "line 1: not a JSON object"),
        ('["a list"]\n', "line 1: not a JSON object"),
        (
            line(BUILD_BOT, user="a", tenant="t")
            + "\n"
            + '{"sha256": "abc", "user": "b", "tenant": "t"}',
            "line 2: sha256 must be",
        ),
        ("\n\n" + line(BUILD_BOT, tenant="t"), "line 3: user must be"),
        (line(BUILD_BOT, user="a"), "line 1: tenant is missing"),
        (line(BUILD_BOT, user="a", tenant="t", token=BUILD_BOT), "line 1: unknown field 'token'"),
        (line(BUILD_BOT, user="a", tenant="t", role=""), "line 1: role must be"),
        (
            line(BUILD_BOT, user="a", tenant="t") + "\n" + line(BUILD_BOT, user="b", tenant="t"),
            "line 2: the same sha256",
        ),
        ("# only a comment\n", "no tokens in the file"),
    ],
)
def test_a_bad_token_file_stops_start_up_with_one_line_naming_the_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "tokens.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as refused:
        authenticator(auth_mode="api-token", auth_api_tokens_file=path)
    text = str(refused.value)
    assert text.startswith("AUTH_API_TOKENS_FILE")
    assert message in text
    assert "\n" not in text
    assert BUILD_BOT not in text
    assert hashlib.sha256(BUILD_BOT.encode()).hexdigest() not in text


def test_a_missing_or_unset_token_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^AUTH_API_TOKENS_FILE: cannot read .*missing"):
        authenticator(auth_mode="api-token", auth_api_tokens_file=tmp_path / "missing.jsonl")
    with pytest.raises(ConfigurationError, match=r"^AUTH_API_TOKENS_FILE: required"):
        authenticator(auth_mode="api-token")


async def test_the_default_tenant_fills_in_for_lines_without_one(tmp_path: Path) -> None:
    path = tmp_path / "tokens.jsonl"
    path.write_text(line(BUILD_BOT, user="bot"))
    authenticate = authenticator(
        auth_mode="api-token", auth_api_tokens_file=path, auth_default_tenant="solo"
    )
    assert (await identify(authenticate, bearer(BUILD_BOT))).tenant_id == "solo"


async def test_jwt_and_api_tokens_together(tokens_file: Path, idp: IdentityProvider) -> None:
    both = authenticator(
        auth_mode="jwt,api-token",
        auth_api_tokens_file=tokens_file,
        auth_jwt_secret=HS_SECRET,
        auth_audience=AUDIENCE,
    )
    assert (await identify(both, bearer(BUILD_BOT))).user_id == "build-bot"
    assert (await identify(both, bearer(sign_hs256(claims(idp.issuer))))).user_id == "alice"
    refused = await refusal(both, bearer("ckt_unknown_token_value_0000000000000"))
    assert refused.reason == "unknown_token"
    expired = sign_hs256(claims(idp.issuer, exp=1))
    assert (await refusal(both, bearer(expired), secret=expired)).reason == "expired"
    assert (await refusal(both, {})).reason == "missing"
