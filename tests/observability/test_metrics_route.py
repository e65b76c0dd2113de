"""The /metrics route in the app: on by default, off with METRICS_ENABLED=false."""

from __future__ import annotations

from pathlib import Path

from service.app import create_app
from service.settings import Settings


def settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{tmp_path}/chat.db",
        llm_provider="openai",
        openai_default_model="gpt-test",
        **overrides,  # type: ignore[arg-type]
    )


async def test_metrics_are_served_by_default_with_the_build_info(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path))
    response = await app.test_client().get("/metrics")
    assert response.status_code == 200
    text = (await response.get_data()).decode()
    assert 'chatkit_build_info{model="gpt-test",provider="openai",version="0.1.0"} 1.0' in text


async def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, metrics_enabled=False))
    assert (await app.test_client().get("/metrics")).status_code == 404
