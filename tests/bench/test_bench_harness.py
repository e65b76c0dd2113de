"""The benchmark harness (bench/): end to end on a tiny setting, its table, its load generator.

The end-to-end run drives this service only, with the mock model and the load generator taken
from the project's .venv (the `test` extra has aiohttp and psutil; uvicorn comes with the
runtime), so no bench/.venv is needed. The reference backend needs bench/.venv (FastAPI); its
side of the table is checked from a saved result. Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from bench import compare, load

ROOT = Path(__file__).resolve().parents[2]
SERVICE_BIN = Path(sys.executable).parent / "chatkit-backend"
TINY = ["--levels", "2", "--duration", "3", "--warmup", "1", "--extra-turns", "1"]
TINY += ["--tokens", "5", "--ttft-ms", "50", "--token-delay-ms", "2"]


def harness(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.compare",
        *TINY,
        "--backends",
        "service",
        "--tools-python",
        sys.executable,
        "--service-bin",
        str(SERVICE_BIN),
        "--out-dir",
        str(out),
        *extra,
    ]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie is gone for our purpose (stopped, not yet reaped by its parent)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_one_command_measures_the_service_and_stops_everything(tmp_path: Path) -> None:
    done = subprocess.run(
        harness(tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=150, check=False
    )
    print(done.stderr)
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((tmp_path / "results.json").read_text())
    row = report["summary"]["2"]["service"]
    assert row["errors"] == 0
    assert row["turns/s"] > 0
    assert row["CPU ms per turn"] > 0
    assert row["peak RSS (MB)"] > 0
    for name in (
        "added time to first token p50 (ms)",
        "added time to first token p99 (ms)",
        "time to response headers p50, create (ms)",
        "time to response headers p50, follow-up (ms)",
    ):
        assert row[name] is not None, name
    [run] = report["runs"]
    result = run["result"]
    assert result["config"]["identity"] == "dev"  # one user per virtual user
    assert result["config"]["llm_ttft_ms"] == 50  # read from the mock's /stats
    assert result["mock_llm_window"]["completed"] > 0  # the service's model calls hit the mock
    assert result["backend_exit_code"] == 0  # stopped by SIGTERM, drained cleanly
    assert gone(result["backend"]["pid"])
    assert gone(report["meta"]["mock_pid"])

    table = (tmp_path / "results.md").read_text()
    assert "| 2 | turns/s | higher | - |" in table
    assert compare.render_markdown(report["summary"]) in table
    assert done.stdout == compare.render_markdown(report["summary"])


def _read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> str:
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=0.5):
            seen += proc.stderr.readline()
    return seen


def test_a_terminated_run_stops_what_it_started(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        harness(tmp_path), cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        seen = _read_until(proc, "waiting for", timeout=60)
        assert "waiting for" in seen, seen
        mock_pid = int(seen.split("mock model (pid ")[1].split(")")[0])
        service_pid = int(seen.split("service-c2-r1: pid ")[1].split(",")[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert gone(mock_pid)
    assert gone(service_pid)
    assert not (tmp_path / "results.json").exists()


def _result(turns: float, added50: float, rss: float, errors: int = 0) -> dict[str, Any]:
    return {
        "throughput": {"requests_per_s": turns},
        "latency": {"added_ms": {"p50": added50, "p99": added50 * 3}, "errors": {"x": errors}},
        "by_kind": {
            "threads.create": {"headers_ms": {"p50": 30.0}},
            "threads.add_user_message": {"headers_ms": {"p50": 40.0}},
        },
        "backend": {"cpu_ms_per_completed_request": 20.0, "rss_peak_mb": rss},
    }


def test_the_table_from_saved_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [
        {"backend": "reference", "concurrency": 10, "round": r, "result": _result(t, 15, 170)}
        for r, t in ((1, 10.0), (2, 14.0), (3, 12.0))
    ]
    runs += [
        {"backend": "service", "concurrency": 10, "round": r, "result": _result(t, 30, 160)}
        for r, t in ((1, 30.0), (2, 18.0), (3, 24.0))
    ]
    runs.append(
        {"backend": "reference", "concurrency": 100, "round": 1, "result": _result(34, 471, 189, 2)}
    )
    summary = compare.summarize(runs)
    assert summary["10"]["reference"]["turns/s"] == 12.0  # the median over rounds
    assert summary["10"]["service"]["turns/s"] == 24.0

    table = compare.render_markdown(summary)
    print(table)
    assert "| 10 | turns/s | higher | 12.0 | 24.0 | 2.00 |" in table
    assert "| 10 | added time to first token p50 (ms) | lower | 15 | 30 | 2.00 |" in table
    assert "| 10 | added time to first token p99 (ms) | lower | 45 | 90 | 2.00 |" in table
    assert "| 10 | time to response headers p50, follow-up (ms) | lower | 40 | 40 | 1.00 |" in table
    assert "| 10 | peak RSS (MB) | lower | 170 | 160 | 0.94 |" in table
    assert "| 100 | errors | lower | 2 | - | - |" in table  # a backend not run: no ratio
    assert table.index("| 10 |") < table.index("| 100 |")  # levels in numeric order

    capsys.readouterr()
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"summary": summary, "runs": runs}))
    assert compare.main(["--render", str(saved)]) == 0
    assert capsys.readouterr().out == table


def test_each_virtual_user_gets_its_own_identity() -> None:
    a = load.parse_args(["--dev-identity", "--tenant", "t1", "-c", "3"])
    dev = load.Runner(a).headers_for(2)
    assert (dev["x-user-id"], dev["x-tenant-id"]) == ("bench-user-2", "t1")
    assert "authorization" not in dev

    secret = "s" * 40
    a = load.parse_args(["--jwt-hs256-secret", secret, "--jwt-claim", "aud=chat", "-d", "5"])
    header = load.Runner(a).headers_for(7)["authorization"]
    assert header.startswith("Bearer ")
    claims = jwt.decode(
        header.removeprefix("Bearer "), secret, algorithms=["HS256"], audience="chat"
    )
    assert (claims["sub"], claims["tenant"]) == ("bench-user-7", "bench")
    assert claims["exp"] > time.time() + 3600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(header.removeprefix("Bearer "), "x" * 40, algorithms=["HS256"], audience="chat")


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://192.0.2.1:8000"],
        ["--url", "http://example.com:8000"],
        ["--mock-url", "http://10.0.0.1:8901"],
        ["-c", "0"],
        ["-d", "0"],
    ],
)
def test_the_load_generator_refuses_other_hosts_and_unbounded_runs(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        load.parse_args(args)


def test_the_harness_refuses_bad_settings() -> None:
    for args in (["--levels", "0"], ["--rounds", "0"], ["--service-env", "NOEQUALS"]):
        with pytest.raises(SystemExit):
            compare.parse_args(args)


def test_a_jwt_secret_that_begins_with_a_dash_reaches_the_load_generator() -> None:
    secret = "-" + "s" * 47
    a = load.parse_args([*compare.identity_args(secret), "-d", "5"])
    assert a.jwt_hs256_secret == secret
    assert load.parse_args(compare.identity_args(None)).dev_identity
