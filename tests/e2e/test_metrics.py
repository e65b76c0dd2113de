"""/metrics after known traffic through the real server: the exact series, one and two workers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import httpx

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM
from tests.support.scrape import Samples, scrape, series
from tests.support.traffic import (
    app_http_requests,
    assert_known_traffic,
    drive_known_traffic,
    expected_http_requests,
)
from tests.support.waiting import wait_for

HISTOGRAM_LLM_BUCKETS = [
    "0.01", "0.02", "0.04", "0.08", "0.16", "0.32", "0.64", "1.28", "2.56", "5.12", "10.24",
    "20.48", "40.96", "81.92", "163.84", "327.68", "+Inf",
]  # fmt: skip


async def scrape_settled(url: str, extra_lists: int = 0) -> Samples:
    """A scrape taken once the last request's HTTP series is in (it is recorded as the response
    ends, so it can trail the client by a moment)."""
    expected = expected_http_requests(extra_lists)
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        samples = scrape(url)
        if app_http_requests(samples) == expected:
            return samples
        if asyncio.get_running_loop().time() > deadline:
            return samples  # the exact assertions will show what differs
        await asyncio.sleep(0.1)


async def test_one_worker_exports_exactly_the_series_of_the_traffic(
    server_factory: ServerFactory, mock_llm: MockLLM
) -> None:
    server = server_factory({**provider_env("openai", mock_llm), "TITLE_GENERATION": "false"})
    await drive_known_traffic(server.url, mock_llm)
    samples = await scrape_settled(server.url)
    assert_known_traffic(samples, provider="openai", model="gpt-test")

    readyz = series(samples, "chatkit_http_requests_total", route="/readyz")
    assert sum(readyz.values()) >= 1  # the start-up probe
    buckets = series(
        samples,
        "gen_ai_client_operation_duration_seconds_bucket",
        error_type="provider_unavailable",
    )
    assert sorted((dict(key)["le"] for key in buckets), key=lambda le: float(le)) == [
        str(float(b)) if b != "+Inf" else b for b in HISTOGRAM_LLM_BUCKETS
    ]
    assert not any(name.endswith("_created") for name, _ in samples)


def worker_pids(directory: Path, kind: str) -> set[int]:
    return {
        int(m.group(1))
        for f in directory.iterdir()
        if (m := re.fullmatch(rf"{kind}_(\d+)\.db", f.name))
    }


async def spread_over_workers(url: str, directory: Path, workers: int) -> int:
    """Send threads.list on fresh connections until every worker has answered some; how many."""
    sent = 0
    while len(worker_pids(directory, "counter")) < workers:
        assert sent < 200, "the kernel never handed a connection to every worker"
        async with ChatKitClient(url, user="spreader") as client:
            await client.list_threads()
        sent += 1
    return sent


async def test_two_workers_add_up_in_every_scrape_even_after_a_worker_dies(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"left by an earlier container")
    server = server_factory(
        {
            **provider_env("gemini", mock_llm),
            "TITLE_GENERATION": "false",
            "WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        }
    )
    assert not (directory / "counter_1.db").exists()  # wiped at start
    extra = await spread_over_workers(server.url, directory, workers=2)
    await drive_known_traffic(server.url, mock_llm)

    first = await scrape_settled(server.url, extra_lists=extra)
    assert_known_traffic(first, provider="gcp.gemini", model="gemini-test", extra_lists=extra)
    for _ in range(6):  # whichever worker answers the scrape, the totals are the same
        again = scrape(server.url)
        assert series(again, "chatkit_requests_total") == series(first, "chatkit_requests_total")

    live = worker_pids(directory, "gauge_livesum")
    assert len(live) == 2
    victim = min(live)
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool | None:
        live = worker_pids(directory, "gauge_livesum")
        return (victim not in live and len(live) >= 2) or None

    await wait_for(replaced, what="the worker to be replaced")
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/readyz")).status_code == 200

    after = scrape(server.url)
    # The dead worker's counts stay (its files remain); its live gauges are gone.
    assert series(after, "chatkit_requests_total") == series(first, "chatkit_requests_total")
    assert series(after, "chatkit_streams_in_flight") == {(): 0.0}
    assert len(series(after, "chatkit_build_info")) == 1
    assert server.stop() == 0
