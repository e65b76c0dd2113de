"""`create_model()`: one provider table, and nothing secret in what users are shown."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import DefaultAioHttpClient, DefaultAsyncHttpxClient
from pydantic import SecretStr

from service.agents.factory import PROVIDERS, create_model, endpoint_host, model_http_client
from service.settings import LLMProvider, Settings


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_every_provider_has_one_row_naming_real_settings() -> None:
    assert set(PROVIDERS) == set(get_args(LLMProvider))
    fields = Settings.model_fields
    for spec in PROVIDERS.values():
        for variable in (spec.base_url_setting, spec.key_setting, spec.model_setting):
            assert variable.lower() in fields, variable
        assert fields[spec.key_setting.lower()].annotation == SecretStr | None


@pytest.mark.parametrize(
    ("values", "expected", "model_class"),
    [
        (
            {"llm_provider": "openai", "openai_api_key": "sk-x", "openai_default_model": "m1"},
            ("openai", "openai", "m1", "responses", "OPENAI_API_KEY", "api.openai.com"),
            OpenAIResponsesModel,
        ),
        (
            {"llm_provider": "gemini", "gemini_api_key": "AIza-x", "gemini_default_model": "g1"},
            (
                "gemini",
                "gcp.gemini",
                "g1",
                "chat_completions",
                "GEMINI_API_KEY",
                "generativelanguage.googleapis.com",
            ),
            OpenAIChatCompletionsModel,
        ),
        (
            {"llm_provider": "openai-compatible", "openai_base_url": "http://ollama:11434/v1"},
            (
                "openai-compatible",
                "openai-compatible",
                "gpt-4.1-mini",
                "chat_completions",
                "OPENAI_API_KEY",
                "ollama:11434",
            ),
            OpenAIChatCompletionsModel,
        ),
    ],
)
def test_each_provider_builds_its_model(
    values: dict[str, Any], expected: tuple[str, ...], model_class: type
) -> None:
    handle = create_model(settings(**values))
    assert (
        handle.provider,
        handle.system,
        handle.name,
        handle.api,
        handle.key_setting,
        handle.endpoint_host,
    ) == expected
    assert isinstance(handle.model, model_class)
    assert handle.unavailable_reason is None
    assert handle.model_settings.include_usage is (True if handle.api != "responses" else None)


@pytest.mark.parametrize(
    ("provider", "key"), [("openai", "OPENAI_API_KEY"), ("gemini", "GEMINI_API_KEY")]
)
def test_a_missing_required_key_makes_the_model_unavailable(provider: str, key: str) -> None:
    handle = create_model(settings(llm_provider=provider))
    assert handle.model is None
    assert handle.unavailable_reason is not None
    assert key in handle.unavailable_reason


def test_openai_compatible_needs_no_key() -> None:
    handle = create_model(
        settings(llm_provider="openai-compatible", openai_base_url="http://127.0.0.1:1/v1")
    )
    assert handle.model is not None
    assert handle.unavailable_reason is None


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://gwuser:SECRETPASS42@127.0.0.1:42933/v1", "127.0.0.1:42933"),
        ("https://gwuser@gateway.example.com/v1", "gateway.example.com"),
        ("https://:SECRETPASS42@gateway.example.com:8443", "gateway.example.com:8443"),
        ("http://gwuser:SECRETPASS42@[::1]:8080/v1", "[::1]:8080"),
        ("http://[2001:db8::7]/v1", "[2001:db8::7]"),
        ("http://gwuser:SECRETPASS42@models.internal:notaport/v1", "models.internal"),
        (None, "api.openai.com"),
    ],
)
def test_endpoint_host_is_host_and_port_only(base_url: str | None, expected: str) -> None:
    assert endpoint_host(base_url) == expected


@pytest.mark.parametrize("provider", ["openai", "openai-compatible"])
def test_a_password_in_the_base_url_stays_out_of_the_handle(provider: str) -> None:
    handle = create_model(
        settings(
            llm_provider=provider,
            openai_api_key="sk-x",
            openai_base_url="http://gwuser:SECRETPASS42@127.0.0.1:42933/v1",
        )
    )
    assert handle.endpoint_host == "127.0.0.1:42933"
    shown = f"{handle.endpoint_host} {handle.base_url_setting} {handle.unavailable_reason}"
    assert "SECRETPASS42" not in shown
    assert "gwuser" not in shown


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, DefaultAioHttpClient),
        ({"llm_http_client": "httpx"}, DefaultAsyncHttpxClient),
        # aiohttp refuses credentials in the URL next to the client's Authorization header
        ({"openai_base_url": "https://user:pass@gateway.example/v1"}, DefaultAsyncHttpxClient),
        ({"openai_base_url": "https://gateway.example/v1"}, DefaultAioHttpClient),
    ],
)
async def test_the_model_http_client_is_aiohttp_unless_it_cannot_be(
    values: dict[str, Any], expected: type
) -> None:
    client = model_http_client(settings(llm_provider="openai", openai_api_key="sk-x", **values))
    try:
        assert type(client) is expected
    finally:
        await client.aclose()
