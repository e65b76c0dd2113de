"""AUTH_MODE=dev: identity from headers (X-User-Role included), logged loudly, and refused
when ENVIRONMENT=production."""

from __future__ import annotations

import logging

import pytest

from service.settings import ConfigurationError
from tests.auth.helpers import authenticator, identify, refusal


async def test_headers_name_the_caller_and_the_role_defaults_to_employee() -> None:
    authenticate = authenticator(auth_mode="dev")
    context = await identify(
        authenticate, {"X-User-Id": "ann", "X-Tenant-Id": "north", "X-User-Role": "admin"}
    )
    assert (context.user_id, context.tenant_id, context.role) == ("ann", "north", "admin")
    context = await identify(authenticate, {})
    assert (context.user_id, context.tenant_id, context.role) == ("dev-user", "default", "employee")
    manager = authenticator(auth_mode="dev", dev_role="manager")
    assert (await identify(manager, {"X-User-Id": "ann"})).role == "manager"


async def test_bad_header_values_are_refused() -> None:
    refused = await refusal(authenticator(auth_mode="dev"), {"X-User-Role": "admin; drop"})
    assert refused.reason == "malformed"
    assert "X-User-Role" in str(refused)


def test_dev_is_logged_loudly_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        authenticator(auth_mode="dev")
    assert any("AUTH_MODE=dev" in r.message and "X-User-Role" in r.message for r in caplog.records)


def test_dev_is_refused_in_production() -> None:
    with pytest.raises(ConfigurationError) as refused:
        authenticator(auth_mode="dev", environment="production")
    assert str(refused.value).startswith("AUTH_MODE: dev is refused when ENVIRONMENT=production")
    assert "\n" not in str(refused.value)


def test_jwt_without_a_key_source_stops_start_up() -> None:
    with pytest.raises(ConfigurationError) as refused:
        authenticator(auth_mode="jwt")
    assert str(refused.value).startswith("AUTH_JWT_SECRET, AUTH_JWKS_URL or AUTH_OIDC_ISSUER")


def test_jwt_key_sources_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigurationError) as refused:
        authenticator(
            auth_mode="jwt",
            auth_jwt_secret="s" * 40,
            auth_oidc_issuer="https://login.example.com",
            auth_audience="chatkit",
        )
    assert str(refused.value).startswith("AUTH_OIDC_ISSUER: set only one of AUTH_JWT_SECRET")
    assert "s" * 40 not in str(refused.value)
    with pytest.raises(ConfigurationError, match=r"^AUTH_JWT_SECRET: must be at least 32 bytes"):
        authenticator(auth_mode="jwt", auth_jwt_secret="short")
