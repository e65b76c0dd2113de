"""bench/resilience.py on a tiny setting: each scenario once, real processes on 127.0.0.1 (the
mock model and the service, from this .venv), asserting behaviour, never timing: no 5xx, every
failed turn ends with a readable error event, nothing hangs, the open-streams gauge returns to 0,
turn locks are released, the service recovers after the database comes back. Figures are printed.

Plus the mock's fault plan itself (bench/mock_llm.py, POST /faults), driven directly.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bench import compare, resilience
from tests.support.postgres import TEST_DATABASE_URL, admin_connection, unusable
from tests.support.waiting import wait_for_sync

ROOT = Path(__file__).resolve().parents[2]
SERVICE_BIN = Path(sys.executable).parent / "chatkit-backend"
TINY = ["--tools-python", sys.executable, "--service-bin", str(SERVICE_BIN)]
TINY += ["--concurrency", "2", "--tokens", "5", "--ttft-ms", "20", "--token-delay-ms", "2"]
TINY += ["--settle-s", "0.5"]


def scenario(tmp: Path, name: str, *extra: str) -> dict[str, Any]:
    a = resilience.parse_args([*TINY, "--scenarios", name, "--out-dir", str(tmp), *extra])
    report = resilience.run(a)
    saved = json.loads((tmp / "resilience.json").read_text())
    assert set(saved["scenarios"]) == {name}
    result: dict[str, Any] = report["scenarios"][name]
    print(result["line"])
    print(json.dumps(result["checks"], indent=1))
    assert result["service_exit_code"] == 0  # stopped by SIGTERM, drained cleanly
    return result


def held(result: dict[str, Any], prefix: str) -> bool:
    [value] = [v for k, v in result["checks"].items() if k.startswith(prefix)]
    return bool(value)


# ----------------------------------------------------------------------------------------------
# the mock's faults


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    port = compare.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.mock_llm", "--port", str(port), "--tokens", "4"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_sync(
            lambda: httpx.get(url + "/health").status_code == 200 or None, what="the mock"
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_mock_fails_the_first_tries_then_answers(mock_url: str) -> None:
    plan = {"kind": "status", "status": 429, "attempts_below": 1, "retry_after_ms": 250}
    assert httpx.post(mock_url + "/faults", json=plan).json()["kind"] == "status"
    httpx.post(mock_url + "/stats/reset", json={})
    body = {"model": "m", "input": "hi"}
    first = httpx.post(mock_url + "/v1/responses", json=body)
    assert first.status_code == 429
    assert first.headers["retry-after-ms"] == "250"
    assert first.headers["retry-after"] == "1"
    assert first.json()["error"]["type"] == "rate_limit_error"
    retry = httpx.post(
        mock_url + "/v1/responses", json=body, headers={"x-stainless-retry-count": "1"}
    )
    assert retry.status_code == 200
    stats = httpx.get(mock_url + "/stats").json()
    assert (stats["retries"], stats["faults"]) == (1, {"status": 1})
    faults = httpx.get(mock_url + "/faults").json()
    assert (faults["matched"], faults["injected"]) == (1, 1)


def test_the_mock_fails_only_the_first_n(mock_url: str) -> None:
    httpx.post(mock_url + "/faults", json={"kind": "status", "status": 500, "first": 2})
    codes = [httpx.post(mock_url + "/v1/chat/completions", json={}).status_code for _ in range(4)]
    assert codes == [500, 500, 200, 200]
    httpx.post(mock_url + "/faults", json={})
    assert httpx.get(mock_url + "/faults").json()["kind"] is None


def _read_stream(url: str, seen: list[bytes]) -> None:
    with httpx.stream("POST", url, json={"stream": True, "input": "hi"}) as r:
        seen.extend(r.iter_bytes())


def test_the_mock_drops_a_stream_mid_answer(mock_url: str) -> None:
    httpx.post(mock_url + "/faults", json={"kind": "drop", "drop_after": 1})
    seen: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):  # an incomplete chunked body
        _read_stream(mock_url + "/v1/responses", seen)
    assert b"response.output_text.delta" in b"".join(seen)
    assert b"response.completed" not in b"".join(seen)
    httpx.post(mock_url + "/faults", json={})


def test_the_mock_hangs_until_the_client_leaves(mock_url: str) -> None:
    httpx.post(mock_url + "/faults", json={"kind": "hang"})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(mock_url + "/v1/responses", json={"input": "hi"}, timeout=0.5)
    httpx.post(mock_url + "/faults", json={"kind": "hang", "hang_s": 0.2})
    assert httpx.post(mock_url + "/v1/responses", json={"input": "hi"}).status_code == 200
    httpx.post(mock_url + "/faults", json={})


@pytest.mark.parametrize(
    "plan", [{"kind": "nope"}, {"kind": "status", "status": 200}, {"rate": 2}, [1]]
)
def test_the_mock_refuses_a_bad_plan_and_keeps_the_old_one(mock_url: str, plan: object) -> None:
    httpx.post(mock_url + "/faults", json={"kind": "status", "first": 0})
    assert httpx.post(mock_url + "/faults", json=plan).status_code == 400
    assert httpx.get(mock_url + "/faults").json()["kind"] == "status"
    httpx.post(mock_url + "/faults", json={})


# ----------------------------------------------------------------------------------------------
# the scenarios


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scenario(tmp_path_factory.mktemp("provider"), "provider", "--provider-turns", "4")


def test_provider_bursts_succeed_through_bounded_retries(provider: dict[str, Any]) -> None:
    phases = provider["phases"]
    for name in ("baseline", "burst_429", "burst_503"):
        assert phases[name]["success_rate"] == 1.0, (name, phases[name]["outcomes"])
    # every first try failed (429) / the first two (503): the client retried each
    assert phases["burst_429"]["retries_seen_by_mock"] == phases["burst_429"]["turns"]
    assert phases["burst_503"]["retries_seen_by_mock"] == 2 * phases["burst_503"]["turns"]
    assert held(provider, "bursts: every turn succeeds")


def test_a_failing_provider_ends_every_turn_with_a_readable_error(
    provider: dict[str, Any],
) -> None:
    phases = provider["phases"]
    for name, words in (
        ("down_503", "HTTP 503"),
        ("down_429", "HTTP 429"),
        ("drop_midstream", "dropped the connection"),
    ):
        ph = phases[name]
        assert ph["outcomes"] == {"error_event": ph["turns"]}, (name, ph["outcomes"])
        assert ph["all_readable"]
        assert any(words in m for m in ph["error_messages"]), ph["error_messages"]
    # bounded: 1 + LLM_MAX_RETRIES (2) requests per turn, never more
    assert phases["down_503"]["model_requests"] == 3 * phases["down_503"]["turns"]
    assert phases["drop_midstream"]["model_requests"] == phases["drop_midstream"]["turns"]
    kinds = " ".join(provider["model_errors"])
    for kind in ("provider_unavailable", "rate_limited", "connection"):
        assert f'error_type="{kind}"' in kinds
    for check in ("no turn hung", "no 5xx from the service", "open streams back to 0"):
        assert held(provider, check), check


def test_failed_turns_leave_no_task_behind(provider: dict[str, Any]) -> None:
    # 12 failed turns; after a collection the idle count is back (within 5: keep-alive sockets)
    assert held(provider, "failed turns leave no asyncio task behind")


def test_a_silent_provider_times_out_into_an_error_event(tmp_path: Path) -> None:
    result = scenario(
        tmp_path,
        "timeout",
        *("--timeout-s", "0.5", "--retries", "1", "--timeout-turns", "2"),
    )
    assert result["outcomes"] == {"error_event": 2}
    assert result["all_readable"]
    assert result["model_timeouts_counted"] >= 2
    assert result["model_requests"] == 4  # 1 + LLM_MAX_RETRIES per turn
    assert result["after"] == "ok"
    assert all(result["checks"].values()), result["checks"]


@pytest.fixture(scope="module")
def storm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return scenario(
        tmp_path_factory.mktemp("storm"),
        "storm",
        *("--storm", "6", "--storm-rounds", "1", "--storm-tokens", "60"),
    )


def test_a_storm_of_disconnects_releases_streams_and_locks(storm: dict[str, Any]) -> None:
    [rnd] = storm["rounds"]
    assert rnd["cut"] == 6 and rnd["not_cut"] == []
    assert rnd["seconds_to_zero_streams"] is not None  # the gauge came back to 0
    assert storm["next_turns"]["success_rate"] == 1.0  # no thread left locked
    for check in (
        "set-up turns succeeded",
        "every stream was cut mid-answer",
        "open streams gauge back to 0",
        "threads back to baseline",
        "next turn on every thread works",
        "no 5xx from the service",
    ):
        assert held(storm, check), check
    assert storm["final"]["tasks"] is not None  # the probe reports from inside the service


def test_a_storm_of_disconnects_leaves_no_task_behind(storm: dict[str, Any]) -> None:
    # one task per cut stream would be 6 more; the slack (5) covers keep-alive sockets
    assert held(storm, "asyncio tasks back to baseline")
    assert held(storm, "RSS back near baseline")


def _loopback_database() -> str:
    host = urlsplit(TEST_DATABASE_URL).hostname or "127.0.0.1"
    if host not in ("127.0.0.1", "localhost", "::1"):
        unusable(f"bench/resilience.py drives loopback databases only; TEST_DATABASE_URL: {host}")

    async def reachable() -> None:
        conn = await admin_connection()
        await conn.close()

    asyncio.run(reachable())
    return TEST_DATABASE_URL


def test_the_service_recovers_when_the_database_drops_its_connections(tmp_path: Path) -> None:
    url = _loopback_database()
    result = scenario(
        tmp_path,
        "database",
        *("--pg-url", url, "--db-before-s", "1", "--db-cut-s", "1.5", "--db-after-s", "1.5"),
    )
    assert result["dropped_connections"] >= 1
    assert result["before"]["success_rate"] == 1.0
    during = result["during"]
    assert during["all_readable"]
    assert set(during["outcomes"]) <= {"ok", "error_event", "http_503"}, during["outcomes"]
    assert result["seconds_to_first_success_after_restore"] is not None
    assert result["afterwards"]["success_rate"] == 1.0
    assert all(result["checks"].values()), result["checks"]


def test_a_short_soak_stays_within_its_bounds(tmp_path: Path) -> None:
    t0 = time.monotonic()
    result = scenario(
        tmp_path,
        "soak",
        *("--turns", "30", "--soak-warmup", "6", "--conversation-turns", "3"),
        *("--sample-every-s", "0.25"),
    )
    print(f"{time.monotonic() - t0:.1f} s")
    assert result["turns"] == 30 and result["success_rate"] == 1.0
    assert result["samples"] and all(s["tasks"] is not None for s in result["samples"])
    assert result["baseline"]["tasks_after_gc"] is not None
    assert all(result["checks"].values()), result["checks"]


def test_the_resilience_run_refuses_bad_settings() -> None:
    for args in (
        ["--concurrency", "0"],
        ["--turns", "0"],
        ["--pg-url", "postgresql://postgres@db.example.com/postgres"],
        ["--service-env", "NOEQUALS"],
        ["--scenarios", "nope"],
    ):
        with pytest.raises(SystemExit):
            resilience.parse_args(args)
