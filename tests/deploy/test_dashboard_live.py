"""The dashboard and alerts against the real service: drive real traffic through the server,
scrape its /metrics, and let a real Prometheus (Debian's `prometheus`) scrape it while every
dashboard query is evaluated through Prometheus's HTTP API.

Traffic: a normal turn, a turn the provider refuses with 429, a turn that calls the
`current_datetime` tool and then answers, and JSON requests, twice (Prometheus only sees a
counter increase between two scrapes); then SIGTERM with a slow stream open, so the pod drains
(chatkit_draining 1) and refuses two new streams with 503.
"""

from __future__ import annotations

import asyncio
import math
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerFactory, provider_env
from tests.deploy import dashboard as board
from tests.deploy.conftest import render_chart, tool
from tests.support.client import ChatKitClient
from tests.support.mock_llm import MockLLM, Reply
from tests.support.server import ServerProcess, free_port

NAMESPACE = "chatkit-test"  # the label a ServiceMonitor would add; set by the scrape config
JOB = "chatkit-backend"
SCRAPE_INTERVAL = "1s"
WINDOW = "5m"  # longer than the whole scenario: rates cover all of its traffic

# Series the alerts read that come from kube-state-metrics, not from the service.
FROM_KUBE_STATE_METRICS = frozenset(
    {"kube_deployment_status_replicas_available", "kube_deployment_spec_replicas"}
)


@dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = self.http.get(f"{self.url}/api/v1/query", params=params)
        body = response.json()
        assert body.get("status") == "success", f"{promql}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, promql: str) -> float:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else 0.0

    def wait_until(self, promql: str, ok: Callable[[float], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok(self.value(promql)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{promql} never reached the expected value:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_prometheus(workdir: Path, target: str) -> Prometheus:
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL},
        "scrape_configs": [
            {
                "job_name": JOB,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [target], "labels": {"namespace": NAMESPACE}}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = workdir / "prometheus.log"
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if prometheus.http.get(f"{prometheus.url}/-/ready").status_code == 200:
                return prometheus
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    prometheus.stop()
    raise AssertionError(f"prometheus did not start:\n{log.read_text()}")


async def conversation_traffic(client: ChatKitClient, mock: MockLLM) -> None:
    """One of each kind of turn; every assertion is on what the user would see."""
    mock.enqueue(Reply(text="Hello from the test."))
    first = await client.create_thread("Hello?")
    assert first.status == 200
    assert first.assistant_text() == "Hello from the test."
    thread = first.thread_id
    mock.enqueue(Reply(status=429, error_message="slow down"))
    limited = await client.add_message(thread, "Again?")
    assert limited.status == 200
    assert limited.errors, limited.events
    mock.enqueue(
        Reply(tool_call=("current_datetime", {"timezone": "UTC"})),
        Reply(text="It is today."),
    )
    tooled = await client.add_message(thread, "What time is it?")
    assert tooled.assistant_text() == "It is today.", tooled.events
    await client.list_items(thread)
    await client.list_threads()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@dataclass
class Live:
    prometheus: Prometheus
    server: ServerProcess
    metrics_text: str
    evaluated_at: float


@pytest.fixture(scope="module")
def live(
    server_factory: ServerFactory, mock_llm: MockLLM, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    mock_llm.reset()
    metrics_port = free_port()
    server = server_factory(
        {
            **provider_env("openai", mock_llm),
            "METRICS_PORT": str(metrics_port),
            "SHUTDOWN_DRAIN_SECONDS": "30",
        }
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    prometheus = start_prometheus(
        tmp_path_factory.mktemp("prometheus"), f"127.0.0.1:{metrics_port}"
    )
    slow: threading.Thread | None = None
    try:
        prometheus.wait_until(f'up{{job="{JOB}"}}', lambda v: v == 1)
        requests = f'sum(chatkit_requests_total{{job="{JOB}"}})'
        for _ in range(2):
            before = prometheus.value(requests)
            run(_traffic(server.url, mock_llm))
            # Five ChatKit requests each round; wait for Prometheus to have seen them.
            prometheus.wait_until(requests, lambda v, b=before: v >= b + 5)

        # A stream that waits on the model keeps the server draining after SIGTERM.
        mock_llm.enqueue(Reply(text="Finally.", first_token_delay=12.0))
        slow = threading.Thread(target=run, args=(_slow_turn(server.url),), daemon=True)
        slow.start()
        prometheus.wait_until(f'sum(chatkit_streams_in_flight{{job="{JOB}"}})', lambda v: v >= 1)
        server.signal(signal.SIGTERM)
        prometheus.wait_until(f'sum(chatkit_draining{{job="{JOB}"}})', lambda v: v == 1)
        refused = f'sum(chatkit_http_requests_total{{job="{JOB}",status=~"5.."}})'
        for count in (1, 2):
            response = httpx.post(
                f"{server.url}/chatkit/api",
                json={
                    "type": "threads.create",
                    "params": {
                        "input": {
                            "content": [{"type": "input_text", "text": "Late"}],
                            "attachments": [],
                            "inference_options": {},
                        }
                    },
                },
                headers={"X-User-Id": "late-user"},
                timeout=10,
            )
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "draining"
            prometheus.wait_until(refused, lambda v, c=count: v >= c)
        metrics_text = httpx.get(metrics_url, timeout=5).text
        evaluated_at = time.time()
        yield Live(prometheus, server, metrics_text, evaluated_at)
    finally:
        if slow is not None:
            slow.join(timeout=30)
        server.stop()
        prometheus.stop()


async def _traffic(url: str, mock: MockLLM) -> None:
    async with ChatKitClient(url, user="dashboard-user") as client:
        await conversation_traffic(client, mock)
        # The upload panels: one stored image (a PNG signature is enough to be one).
        png = b"\x89PNG\r\n\x1a\n" + bytes(2048)
        uploaded = await client.http.post(
            "/chatkit/api/upload", files={"file": ("chart.png", png, "image/png")}
        )
        assert uploaded.status_code == 200, uploaded.text


async def _slow_turn(url: str) -> None:
    async with ChatKitClient(url, user="slow-user") as client:
        await client.create_thread("Take your time.")


def exported_samples(text: str) -> set[str]:
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def alert_rules() -> list[dict[str, Any]]:
    rule = render_chart(
        {"metrics": {"prometheusRule": {"enabled": True}}}, namespace=NAMESPACE
    ).one("PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_every_metric_the_dashboard_and_alerts_name_is_exported(live: Live) -> None:
    exported = exported_samples(live.metrics_text)
    rules = alert_rules()
    recorded = {r["record"] for r in rules if "record" in r}
    named = {n for q in board.queries(board.load()) for n in board.metric_names(q.expr)}
    named |= {n for r in rules for n in board.metric_names(r["expr"])}
    expected_elsewhere = {
        n
        for n in named
        if n in board.FROM_PROMETHEUS or n in FROM_KUBE_STATE_METRICS or n in recorded
    }
    missing = sorted(named - expected_elsewhere - exported)
    assert missing == [], f"named by the dashboard or alerts, not exported: {missing}"
    # The allow-lists stay honest: each names something the dashboard or alerts really use.
    assert named >= FROM_KUBE_STATE_METRICS | board.FROM_PROMETHEUS


def positive_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(sample["value"][1]) for sample in result]
    return [v for v in values if math.isfinite(v) and v > 0]


def dashboard_variables(live: Live) -> dict[str, str]:
    """Each template variable's query, run in order; its values feed the next ones."""
    values: dict[str, str] = {}
    for name, variable in board.variables(board.load()).items():
        if variable["type"] != "query":
            continue
        promql, label = board.label_values_as_promql(board.variable_query(variable))
        result = live.prometheus.query(board.substitute(promql, values), at=live.evaluated_at)
        found = sorted({sample["metric"].get(label, "") for sample in result})
        assert found, f"variable {name} has no values ({promql})"
        assert all(found), f"variable {name} has an empty value ({promql})"
        values[name] = "|".join(found)
    return values


def test_dashboard_variables_resolve_to_the_running_service(live: Live) -> None:
    assert dashboard_variables(live) == {
        "namespace": NAMESPACE,
        "job": JOB,
        "provider": "openai",
        "model": "gpt-test",
    }


def test_every_dashboard_query_returns_data(live: Live) -> None:
    values = dashboard_variables(live)
    empty = []
    checked = 0
    for query in board.queries(board.load()):
        promql = board.substitute(query.expr, values, rate_interval=WINDOW)
        result = live.prometheus.query(promql, at=live.evaluated_at)
        checked += 1
        if not positive_values(result):
            empty.append(f"{query.panel} [{query.ref}]: {promql} -> {result}")
    assert empty == [], "dashboard queries without data:\n" + "\n".join(empty)
    assert checked >= 30


def test_recording_rules_evaluate_on_real_series(live: Live) -> None:
    # One ChatKit request in five failed (the 429 turn): the recorded ratio is a fifth.
    for rule in alert_rules():
        if "record" not in rule or not rule["record"].endswith("rate5m"):
            continue
        result = live.prometheus.query(rule["expr"], at=live.evaluated_at)
        (ratio,) = positive_values(result)
        # rate() extrapolates each series from its own first sample: a series born a scrape
        # later than the others skews the ratio slightly, never by 5%.
        assert ratio == pytest.approx(0.2, rel=0.05), rule["record"]
