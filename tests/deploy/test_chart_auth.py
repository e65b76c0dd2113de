"""The chart's authentication values: where each lands, the token-file mount, and the values it
refuses (dev in production, api-token without its file)."""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from service.settings import Settings, load_settings
from tests.deploy.conftest import CHART, Rendered, render_chart

TOKENS_DIR = "/etc/chatkit-backend/api-tokens"


def service_settings(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> Settings:
    env = {**rendered.config, **(rendered.secret if rendered.has("Secret") else {})}
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(_env_file=None)


def test_the_chart_defaults_to_jwt_because_dev_is_refused_in_production() -> None:
    config = render_chart().config
    assert (config["ENVIRONMENT"], config["AUTH_MODE"]) == ("production", "jwt")


@pytest.mark.parametrize("mode", ["dev", " dev ", "dev,jwt"])
def test_dev_with_production_fails_the_render(mode: str) -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render_chart({"config": {"authMode": mode}})
    assert "config.authMode dev is refused with config.environment production" in str(failure.value)


def test_dev_renders_in_development() -> None:
    rendered = render_chart({"config": {"authMode": "dev", "environment": "development"}})
    assert rendered.config["AUTH_MODE"] == "dev"
    assert "AUTH_MODE=dev trusts" in rendered.notes


def test_jwt_settings_go_to_the_configmap_and_the_secret_to_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "hs256-shared-secret-0123456789abcdefXYZ"
    rendered = render_chart(
        {
            "config": {
                "authMode": "jwt",
                "authIssuer": "https://issuer.example.com",
                "authAudience": "chatkit",
                "authTenantClaim": "org",
                "corsAllowedOrigins": "https://app.example.com",
                "authTokenHeader": "x-goog-iap-jwt-assertion",
            },
            "secrets": {"authJwtSecret": secret},
        }
    )
    config = rendered.config
    assert config["AUTH_ISSUER"] == "https://issuer.example.com"
    assert config["AUTH_AUDIENCE"] == "chatkit"
    assert config["AUTH_TENANT_CLAIM"] == "org"
    assert config["CORS_ALLOWED_ORIGINS"] == "https://app.example.com"
    assert config["AUTH_TOKEN_HEADER"] == "x-goog-iap-jwt-assertion"
    assert "AUTH_JWT_SECRET" not in config
    assert secret not in str(config)
    assert rendered.secret["AUTH_JWT_SECRET"] == secret
    assert "no signing keys" not in rendered.notes
    settings = service_settings(rendered, monkeypatch)
    assert settings.auth_modes == ("jwt",)
    assert settings.auth_jwt_secret is not None
    assert settings.cors_origins == ("https://app.example.com",)


def test_jwt_without_keys_is_warned_about() -> None:
    assert "AUTH_MODE=jwt has no signing keys" in render_chart().notes


def test_the_api_token_file_is_mounted_from_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = render_chart(
        {
            "config": {
                "authMode": "jwt,api-token",
                "authOidcIssuer": "https://login.example.com",
                "authAudience": "chatkit",
            },
            "auth": {"apiTokensSecret": "chatkit-api-tokens", "apiTokensKey": "hashes.jsonl"},
        }
    )
    assert rendered.config["AUTH_API_TOKENS_FILE"] == f"{TOKENS_DIR}/hashes.jsonl"
    (volume,) = [v for v in rendered.pod_spec["volumes"] if v["name"] == "api-tokens"]
    assert volume["secret"]["secretName"] == "chatkit-api-tokens"
    assert volume["secret"]["items"] == [{"key": "hashes.jsonl", "path": "hashes.jsonl"}]
    (mount,) = [m for m in rendered.server["volumeMounts"] if m["name"] == "api-tokens"]
    assert mount == {"name": "api-tokens", "mountPath": TOKENS_DIR, "readOnly": True}
    assert "checksum/api-tokens" in rendered.pod_annotations
    settings = service_settings(rendered, monkeypatch)
    assert settings.auth_modes == ("jwt", "api-token")
    assert str(settings.auth_api_tokens_file) == f"{TOKENS_DIR}/hashes.jsonl"


def test_without_a_token_secret_nothing_is_mounted() -> None:
    rendered = render_chart()
    assert "AUTH_API_TOKENS_FILE" not in rendered.config
    assert not [v for v in rendered.pod_spec["volumes"] if v["name"] == "api-tokens"]


def test_api_token_mode_needs_its_secret() -> None:
    with pytest.raises(helm_python.HelmError) as failure:
        render_chart({"config": {"authMode": "api-token"}})
    assert "config.authMode api-token needs auth.apiTokensSecret" in str(failure.value)
    # a file mounted by other means (extraVolumes) is named directly
    rendered = render_chart(
        {"config": {"authMode": "api-token", "authApiTokensFile": "/mnt/tokens/list.jsonl"}}
    )
    assert rendered.config["AUTH_API_TOKENS_FILE"] == "/mnt/tokens/list.jsonl"


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ({"config": {"authMode": "oauth"}}, "/config/authMode"),
        ({"config": {"authJwksUrl": "ftp://keys"}}, "/config/authJwksUrl"),
        ({"config": {"authTokenHeader": "bad header"}}, "/config/authTokenHeader"),
        ({"auth": {"apiTokensSecret": "Not_A_Name"}}, "/auth/apiTokensSecret"),
        ({"auth": {"tokens": "x"}}, "tokens"),
    ],
)
def test_auth_values_outside_the_schema_are_rejected(values: dict[str, Any], path: str) -> None:
    with (
        helm_python.Chart.load(CHART) as chart,
        pytest.raises(helm_python.HelmValuesError) as failure,
    ):
        chart.validate_schema(values)
    assert path in str(failure.value)


def test_the_production_example_uses_jwt_with_an_issuer_and_audience(
    rendered_sets: dict[str, Rendered], monkeypatch: pytest.MonkeyPatch
) -> None:
    production = rendered_sets["production"]
    assert production.config["AUTH_MODE"] == "jwt"
    settings = service_settings(production, monkeypatch)
    assert settings.auth_oidc_issuer and settings.auth_audience
    assert settings.cors_origins
    assert "no signing keys" not in production.notes
    assert rendered_sets["skaffold-dev"].config["AUTH_MODE"] == "dev"
