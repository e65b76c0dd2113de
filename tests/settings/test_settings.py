from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.settings import ConfigurationError, load_settings
from tests.support.server import ROOT


def test_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(_env_file=None)
    assert settings.llm_provider == "openai"
    assert settings.openai_default_model == "gpt-4.1-mini"
    assert settings.gemini_default_model == "gemini-2.5-flash"
    assert settings.database_url == "sqlite:///./data/chatkit.db"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.playground_on


def test_playground_is_off_in_production() -> None:
    assert not load_settings(_env_file=None, environment="production").playground_on
    assert load_settings(
        _env_file=None, environment="production", playground_enabled=True
    ).playground_on


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LLM_PROVIDER": "anthropic"},
            "LLM_PROVIDER: Input should be 'openai', 'gemini' or 'openai-compatible'",
        ),
        ({"PORT": "eighty"}, "PORT: Input should be a valid integer"),
        (
            {"LLM_PROVIDER": "openai-compatible"},
            "OPENAI_BASE_URL: required when LLM_PROVIDER=openai-compatible",
        ),
        (
            {"OPENAI_BASE_URL": "localhost:11434"},
            "OPENAI_BASE_URL: must be an http:// or https:// URL",
        ),
        (
            {"DATABASE_URL": "mysql://db/chat"},
            "DATABASE_URL: must start with sqlite:/// or postgresql://",
        ),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: Input should be"),
    ],
)
def test_invalid_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_provider_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDER", " Gemini ")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(_env_file=None)
    assert (settings.llm_provider, settings.log_level) == ("gemini", "DEBUG")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/tmp",
    )


def test_check_config_masks_secrets() -> None:
    result = run_cli(
        "check-config",
        env={
            "OPENAI_API_KEY": "sk-live-supersecret",
            "DATABASE_URL": "postgresql://chat:dbpassword@db:5432/chat",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "supersecret" not in result.stdout + result.stderr
    assert "dbpassword" not in result.stdout + result.stderr
    config = json.loads(result.stdout)
    assert config["OPENAI_API_KEY"] == "****"
    assert config["DATABASE_URL"] == "postgresql://chat:****@db:5432/chat"
    assert config["LLM_PROVIDER"] == "openai"


def test_check_config_warns_when_the_key_is_missing() -> None:
    result = run_cli("check-config", env={"LLM_PROVIDER": "gemini"})
    assert result.returncode == 0
    assert "set GEMINI_API_KEY" in result.stderr


def test_serve_refuses_an_invalid_setting_with_one_line() -> None:
    result = run_cli("serve", env={"LLM_PROVIDER": "anthropic"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "chatkit-backend: invalid configuration: LLM_PROVIDER: "
        "Input should be 'openai', 'gemini' or 'openai-compatible'"
    ]
