"""The auth and CORS settings: what a mistake looks like (one line naming the variable)."""

from __future__ import annotations

import pytest

from service.settings import ConfigurationError, load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_MODE": "oauth"}, "AUTH_MODE: must be jwt, api-token, jwt,api-token or dev"),
        ({"AUTH_MODE": "dev,jwt"}, "AUTH_MODE: dev cannot be combined"),
        (
            {"AUTH_MODE": "jwt,jwt"},
            "AUTH_MODE: dev cannot be combined with another mode or repeated",
        ),
        ({"AUTH_JWKS_URL": "https://idp/jwks"}, "AUTH_ISSUER: required with AUTH_JWKS_URL"),
        (
            {"AUTH_JWKS_URL": "https://idp/jwks", "AUTH_ISSUER": "https://idp"},
            "AUTH_AUDIENCE: required with AUTH_JWKS_URL",
        ),
        ({"AUTH_OIDC_ISSUER": "https://idp"}, "AUTH_AUDIENCE: required with AUTH_OIDC_ISSUER"),
        ({"AUTH_JWKS_URL": "idp/jwks"}, "AUTH_JWKS_URL: must be an http:// or https:// URL"),
        ({"AUTH_TOKEN_HEADER": "x goog"}, "AUTH_TOKEN_HEADER: must be an HTTP header name"),
        ({"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS: '*' is not an origin"),
        (
            {"CORS_ALLOWED_ORIGINS": "https://app.example.com, app.example.org"},
            "CORS_ALLOWED_ORIGINS: 'app.example.org' is not an origin",
        ),
        ({"CORS_ALLOWED_ORIGINS": "https://*.example.com"}, "is not an origin"),
    ],
)
def test_a_wrong_auth_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert "s" * 40 not in text


def test_modes_and_origins_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", " JWT , api-token ")
    monkeypatch.setenv(
        "CORS_ALLOWED_ORIGINS", "https://App.Example.com/chat/, http://localhost:5173,"
    )
    settings = load_settings(_env_file=None)
    assert settings.auth_modes == ("jwt", "api-token")
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173")


def test_defaults_are_dev_and_no_cross_origin_access() -> None:
    settings = load_settings(_env_file=None)
    assert settings.auth_modes == ("dev",)
    assert settings.cors_origins == ()
    assert (settings.auth_user_claim, settings.auth_tenant_claim, settings.auth_role_claim) == (
        "sub",
        "tenant",
        "role",
    )
    assert settings.dev_role == "employee"


def test_the_jwt_secret_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", "a-very-long-shared-secret-value-0123456789")
    masked = load_settings(_env_file=None).masked()
    assert masked["AUTH_JWT_SECRET"] == "****"
