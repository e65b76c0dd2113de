"""The observability and lifecycle settings: defaults the chart relies on, and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.settings import ConfigurationError, load_settings

NAMES = (
    "LOG_LEVEL",
    "LOG_FORMAT",
    "LOG_PROMPTS",
    "METRICS_ENABLED",
    "METRICS_PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "SHUTDOWN_DRAIN_SECONDS",
    "HEARTBEAT_INTERVAL_SECONDS",
    "PORT",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.log_format == "json"
    assert settings.log_prompts is False
    assert settings.metrics_enabled is True
    assert settings.metrics_port is None
    assert settings.prometheus_multiproc_dir is None
    assert settings.shutdown_drain_seconds == 25
    assert settings.heartbeat_interval_seconds == 15


def test_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", " Text ")
    monkeypatch.setenv("METRICS_PORT", "9090")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/metrics")
    monkeypatch.setenv("SHUTDOWN_DRAIN_SECONDS", "55")
    monkeypatch.setenv("HEARTBEAT_INTERVAL_SECONDS", "2.5")
    settings = load_settings()
    assert settings.log_format == "text"
    assert settings.metrics_port == 9090
    assert str(settings.prometheus_multiproc_dir) == "/tmp/metrics"
    assert settings.shutdown_drain_seconds == 55
    assert settings.heartbeat_interval_seconds == 2.5


def test_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", " ")
    settings = load_settings()
    assert settings.metrics_port is None
    assert settings.prometheus_multiproc_dir is None


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("METRICS_PORT", "8000", "METRICS_PORT: must differ from PORT"),
        ("LOG_FORMAT", "yaml", "LOG_FORMAT"),
        ("HEARTBEAT_INTERVAL_SECONDS", "0", "HEARTBEAT_INTERVAL_SECONDS"),
        ("SHUTDOWN_DRAIN_SECONDS", "-1", "SHUTDOWN_DRAIN_SECONDS"),
    ],
)
def test_bad_values_stop_start_up_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, named: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=named):
        load_settings()
