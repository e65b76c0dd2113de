"""What proxies and scrapers see on the wire: heartbeats while the model thinks, and /metrics
on a port of its own."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess, free_port


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory(
        {
            **provider_env("openai", mock_llm),
            "HEARTBEAT_INTERVAL_SECONDS": "0.2",
            "METRICS_PORT": str(free_port()),
            "TITLE_GENERATION": "false",
        }
    )


async def test_a_slow_model_gets_heartbeats_on_the_wire(
    server: ServerProcess, mock_llm: MockLLM, user: str
) -> None:
    mock_llm.enqueue(Reply(text="Finally here.", first_token_delay=1.5))
    async with ChatKitClient(server.url, user=user) as client:
        stream = await client.create_thread("Think hard")
    assert stream.assistant_text() == "Finally here."
    assert stream.comments
    assert set(stream.comments) == {"heartbeat"}
    # They come while waiting, between the events, never as data.
    body = stream.body.decode()
    assert body.index(": heartbeat") > body.index("thread.created")
    assert body.index(": heartbeat") < body.index("Finally")


def test_metrics_live_only_on_the_metrics_port(server: ServerProcess) -> None:
    metrics_port = int(server.env["METRICS_PORT"])
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    scraped = httpx.get(f"{metrics_url}/metrics")
    assert scraped.status_code == 200
    assert "chatkit_build_info" in scraped.text
    assert httpx.get(f"{server.url}/metrics").status_code == 404
    assert httpx.get(f"{metrics_url}/healthz").status_code == 404
    assert httpx.get(f"{metrics_url}/chatkit/api").status_code == 404
    assert httpx.get(f"{server.url}/healthz").status_code == 200
