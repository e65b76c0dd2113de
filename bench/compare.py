"""Side by side: the reference backend and this service, same machine, same mock model, same load.

    scripts/bench                       # c=10 and c=100, 20 s each, both backends
    scripts/bench --levels 1 10 --duration 10 --rounds 2
    python -m bench.compare --render bench/results/<run>/results.json   # the table again

One run: build bench/.venv if needed (bench/requirements.lock), start the mock model
(bench/mock_llm.py), then for every round, level and backend start that backend fresh, drive it
with the closed-loop load generator (bench/load.py: each conversation is threads.create + 2
follow-ups), and stop it. The backends:

- `reference`: bench/peer_fastapi (FastAPI + uvicorn + openai-chatkit as its quickstart shows,
  in-memory store), from bench/.venv;
- `service`: `.venv/bin/chatkit-backend serve` on its defaults (SQLite in a fresh temp dir,
  metrics, JSON logs, titles on), pointed at the mock (LLM_PROVIDER=openai, OPENAI_BASE_URL).

The backend under test is pinned to one core, the mock and the load generator to another
(sched_setaffinity, what taskset does), when the machine has two. Every virtual user is its own
user (X-User-Id, or its own JWT with --auth jwt), as per-user limits expect. Results go to
bench/results/<time>/: results.json (every run's full figures and the summary), results.md
(the table: per level, the median over rounds, and service / reference). Traffic stays on
127.0.0.1; everything started is stopped by its PID, on errors and Ctrl+C too.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LOCK = BENCH / "requirements.lock"
BACKENDS = ("reference", "service")
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 40.0  # the service drains open streams on SIGTERM; none are open by then
# Passed through to the processes started (everything else is left out, so the service runs on
# its defaults whatever the caller's shell exports).
TOOLS_PACKAGES = ("openai-chatkit", "openai-agents", "openai", "fastapi", "uvicorn", "uvloop")
TOOLS_PACKAGES += ("httptools", "aiohttp")
SERVICE_PACKAGES = ("chatkit-backend", "openai-chatkit", "openai-agents", "openai", "hypercorn")
SERVICE_PACKAGES += ("quart", "uvloop")
PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


# ----------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Metric:
    name: str
    better: str  # "higher" | "lower"
    digits: int
    get: Callable[[dict[str, Any]], float | None]


def _dig(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _errors(r: dict[str, Any]) -> float | None:
    errs = _dig(r, "latency", "errors")
    return float(sum(errs.values())) if isinstance(errs, dict) else None


METRICS: tuple[Metric, ...] = (
    Metric("turns/s", "higher", 1, lambda r: _dig(r, "throughput", "requests_per_s")),
    Metric(
        "added time to first token p50 (ms)",
        "lower",
        0,
        lambda r: _dig(r, "latency", "added_ms", "p50"),
    ),
    Metric(
        "added time to first token p99 (ms)",
        "lower",
        0,
        lambda r: _dig(r, "latency", "added_ms", "p99"),
    ),
    Metric(
        "CPU ms per turn", "lower", 1, lambda r: _dig(r, "backend", "cpu_ms_per_completed_request")
    ),
    Metric(
        "time to response headers p50, create (ms)",
        "lower",
        0,
        lambda r: _dig(r, "by_kind", "threads.create", "headers_ms", "p50"),
    ),
    Metric(
        "time to response headers p50, follow-up (ms)",
        "lower",
        0,
        lambda r: _dig(r, "by_kind", "threads.add_user_message", "headers_ms", "p50"),
    ),
    Metric("peak RSS (MB)", "lower", 0, lambda r: _dig(r, "backend", "rss_peak_mb")),
    Metric("errors", "lower", 0, _errors),
)


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """{level: {backend: {metric: median over rounds}}} from the runs' load results."""
    grouped: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault((run["concurrency"], run["backend"]), []).append(run["result"])
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for (level, backend), results in sorted(grouped.items()):
        row: dict[str, float | None] = {}
        for m in METRICS:
            values = [v for v in (m.get(r) for r in results) if v is not None]
            row[m.name] = float(statistics.median(values)) if values else None
        out.setdefault(str(level), {})[backend] = row
    return out


def _fmt(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def render_markdown(summary: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """The issue's table: per level and metric, reference, this service, service / reference."""
    lines = [
        "| concurrency | metric | better | reference | this service | service / reference |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for level in sorted(summary, key=int):
        ref = summary[level].get("reference", {})
        ours = summary[level].get("service", {})
        for m in METRICS:
            r, o = ref.get(m.name), ours.get(m.name)
            ratio = o / r if r and o is not None else None
            lines.append(
                f"| {level} | {m.name} | {m.better} | {_fmt(r, m.digits)} | "
                f"{_fmt(o, m.digits)} | {_fmt(ratio, 2)} |"
            )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {k: v for k in PASS_ENV if (v := os.getenv(k)) is not None}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def service_env(port: int, mock_url: str) -> dict[str, str]:
    """The environment `scripts/bench` runs this service in: its defaults, on 127.0.0.1:`port`,
    the model at the mock (`mock_url` without /v1)."""
    env = base_env()
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        LLM_PROVIDER="openai",
        OPENAI_BASE_URL=f"{mock_url}/v1",
        OPENAI_API_KEY="sk-bench-mock",
        OPENAI_AGENTS_DISABLE_TRACING="1",
    )
    return env


def _preexec(cpus: set[int] | None) -> Callable[[], None]:
    def run() -> None:
        if cpus and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)
        with contextlib.suppress(OSError, AttributeError):  # Linux: die with the harness
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return run


@dataclass
class Procs:
    """Every process this run started, stopped by PID (TERM, then KILL after a bound)."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def start(
        self,
        cmd: list[str],
        *,
        log: Path,
        env: dict[str, str],
        cwd: Path,
        cpus: set[int] | None,
    ) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        self.logs.append(out)
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # Ctrl+C reaches the harness only; it stops them in order
            preexec_fn=_preexec(cpus),
        )
        self.started.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        if proc in self.started:
            self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.started)):
            self.stop(proc)
        for out in self.logs:
            out.close()
        self.logs.clear()


def identity_args(jwt_secret: str | None) -> list[str]:
    """How the load generator says who each virtual user is: its own HS256 token, or dev
    headers. The secret goes as one `--flag=value` argument: it may begin with "-", which
    argparse would take for a flag."""
    return [f"--jwt-hs256-secret={jwt_secret}"] if jwt_secret else ["--dev-identity"]


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited ({proc.returncode}); see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s; see {log}")


# ----------------------------------------------------------------------------------------------
# bench/.venv


def ensure_bench_venv(python: str) -> Path:
    """bench/.venv with bench/requirements.lock; rebuilt when the lock changes."""
    venv = BENCH / ".venv"
    stamp = venv / ".installed"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    exe = venv / "bin" / "python"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return exe
    say(f"building {venv} from {LOCK.relative_to(ROOT)} (once; a couple of minutes)")
    if not exe.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(exe),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(LOCK),
        ],
        check=True,
    )
    stamp.write_text(digest + "\n")
    return exe


def versions(python: str, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version\nout = {}\n"
        "for p in sys.argv[1:]:\n    try: out[p] = version(p)\n"
        "    except Exception: out[p] = None\nprint(json.dumps(out))"
    )
    res = subprocess.run(
        [python, "-c", code, *packages], capture_output=True, text=True, check=False, timeout=60
    )
    try:
        return dict(json.loads(res.stdout))
    except ValueError:
        return {}


# ----------------------------------------------------------------------------------------------
# the run


def say(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--levels", type=int, nargs="+", default=[10, 100], help="concurrency levels")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds before the window")
    p.add_argument("--rounds", type=int, default=1, help="repeat everything; medians are shown")
    p.add_argument("--extra-turns", type=int, default=2, help="follow-ups per conversation")
    p.add_argument("--tokens", type=int, default=50, help="mock model: tokens per answer")
    p.add_argument("--ttft-ms", type=float, default=250.0, help="mock model: time to first token")
    p.add_argument("--token-delay-ms", type=float, default=10.0, help="mock model: between tokens")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra setting for this service (repeatable), e.g. TITLE_GENERATION=false",
    )
    p.add_argument(
        "--auth",
        choices=["dev", "jwt"],
        default="dev",
        help="dev: X-User-Id per virtual user; jwt: AUTH_MODE=jwt with a fresh HS256 secret, "
        "each virtual user its own bearer token (sent to the reference too, which ignores it)",
    )
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin to cores")
    p.add_argument("--backend-cpus", default="0", help="cores of the backend under test")
    p.add_argument("--driver-cpus", default="1", help="cores of the mock and the load generator")
    p.add_argument("--raw", action="store_true", help="keep per-request timings in the JSON")
    p.add_argument("--out-dir", type=Path, default=None, help="default bench/results/<time>")
    p.add_argument(
        "--tools-python",
        default=None,
        help="Python for the mock and the load generator (default: bench/.venv, built if needed)",
    )
    p.add_argument("--service-bin", type=Path, default=ROOT / ".venv" / "bin" / "chatkit-backend")
    p.add_argument("--render", type=Path, default=None, help="print the table of a results.json")
    a = p.parse_args(argv)
    if a.render is None:
        if not all(1 <= c <= 5000 for c in a.levels):
            p.error("--levels: 1..5000")
        if not (0 < a.duration <= 3600 and 0 <= a.warmup <= 600 and 1 <= a.rounds <= 20):
            p.error("--duration in (0, 3600], --warmup in [0, 600], --rounds in 1..20")
        for kv in a.service_env:
            if "=" not in kv:
                p.error(f"--service-env {kv!r}: expected K=V")
    return a


def cpu_sets(a: argparse.Namespace) -> tuple[set[int] | None, set[int] | None]:
    if not a.pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    usable = os.sched_getaffinity(0)
    backend = {int(c) for c in a.backend_cpus.split(",")}
    driver = {int(c) for c in a.driver_cpus.split(",")}
    if len(usable) < 2 or not backend <= usable or not driver <= usable:
        say(f"not pinning: usable cores {sorted(usable)}")
        return None, None
    return backend, driver


def run(a: argparse.Namespace) -> dict[str, Any]:
    tools = a.tools_python or str(ensure_bench_venv(sys.executable))
    if "service" in a.backends and not a.service_bin.exists():
        raise SystemExit(
            f"{a.service_bin} is missing: run scripts/run (or scripts/bootstrap) first"
        )
    if "reference" in a.backends and a.tools_python:
        say("the reference runs with --tools-python; it needs fastapi and uvicorn there")
    out = a.out_dir or BENCH / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    backend_cpus, driver_cpus = cpu_sets(a)
    jwt_secret = secrets.token_urlsafe(48) if a.auth == "jwt" else None
    procs = Procs()
    runs: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        mock_port = free_port()
        mock_url = f"http://127.0.0.1:{mock_port}"
        mock_log = out / "mock.log"
        mock_cmd = [tools, "-m", "bench.mock_llm", "--port", str(mock_port)]
        mock_cmd += ["--tokens", str(a.tokens), "--ttft-ms", str(a.ttft_ms)]
        mock_cmd += ["--token-delay-ms", str(a.token_delay_ms)]
        mock = procs.start(
            mock_cmd,
            log=mock_log,
            env=base_env(),
            cwd=ROOT,
            cpus=driver_cpus,
        )
        wait_ready(mock_url + "/health", mock, mock_log, 30)
        say(f"mock model (pid {mock.pid}) on {mock_url}: {a.tokens} tokens, {a.ttft_ms:g} ms TTFT")
        ctx = Run(a, procs, tools, mock, mock_url, out, backend_cpus, driver_cpus, jwt_secret)
        for rnd in range(1, a.rounds + 1):
            for level in a.levels:
                for backend in a.backends:
                    name = f"{backend}-c{level}-r{rnd}"
                    result = one_run(ctx, name, backend, level)
                    runs.append(
                        {"backend": backend, "concurrency": level, "round": rnd, "result": result}
                    )
    finally:
        procs.stop_all()
    summary = summarize(runs)
    report = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            "wall_s": round(time.time() - t0, 1),
            "host": platform.node(),
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "mock_pid": mock.pid,
            "pinning": {
                "backend": sorted(backend_cpus) if backend_cpus else None,
                "driver": sorted(driver_cpus) if driver_cpus else None,
            },
            "settings": {
                k: v
                for k, v in vars(a).items()
                if k not in ("render", "out_dir", "tools_python", "service_bin")
            },
            "versions": {
                "tools": versions(tools, TOOLS_PACKAGES),
                "service": versions(str(a.service_bin.parent / "python"), SERVICE_PACKAGES),
            },
        },
        "summary": summary,
        "runs": runs,
    }
    table = render_markdown(summary)
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(_header(report) + "\n" + table)
    print(table, end="")
    say(f"results in {out}")
    return report


@dataclass(frozen=True)
class Run:
    a: argparse.Namespace
    procs: Procs
    tools: str
    mock: subprocess.Popen[bytes]
    mock_url: str
    out: Path
    backend_cpus: set[int] | None
    driver_cpus: set[int] | None
    jwt_secret: str | None


def one_run(ctx: Run, name: str, backend: str, level: int) -> dict[str, Any]:
    """Start one backend fresh, drive it at one level, stop it; the load generator's result."""
    a, procs, tools, mock, mock_url, out = (
        ctx.a,
        ctx.procs,
        ctx.tools,
        ctx.mock,
        ctx.mock_url,
        ctx.out,
    )
    backend_cpus, driver_cpus, jwt_secret = ctx.backend_cpus, ctx.driver_cpus, ctx.jwt_secret
    port = free_port()
    log = out / f"{name}.log"
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
    try:
        env = base_env()
        if backend == "service":
            env = service_env(port, mock_url)
            if jwt_secret:
                env.update(AUTH_MODE="jwt", AUTH_JWT_SECRET=jwt_secret)
            env.update(kv.split("=", 1) for kv in a.service_env)
            # cwd: the temp dir, so the defaults' ./data (SQLite, uploads) land there
            cmd = [str(a.service_bin), "serve"]
            ready, path = f"http://127.0.0.1:{port}/readyz", "/chatkit/api"
        else:
            cmd = [tools, "-m", "bench.peer_fastapi", "--port", str(port)]
            cmd += ["--base-url", f"{mock_url}/v1"]
            env["PYTHONPATH"] = str(ROOT)
            ready, path = f"http://127.0.0.1:{port}/health", "/chatkit"
        proc = procs.start(cmd, log=log, env=env, cwd=workdir, cpus=backend_cpus)
        say(f"{name}: pid {proc.pid}, waiting for {ready}")
        try:
            wait_ready(ready, proc, log, READY_TIMEOUT_S)
            result_file = out / f"{name}.json"
            load = [tools, "-m", "bench.load", "--url", f"http://127.0.0.1:{port}", "--path", path]
            load += ["-c", str(level), "-d", str(a.duration), "--warmup", str(a.warmup)]
            load += ["-k", str(a.extra_turns), "--pid", str(proc.pid), "--pid-children"]
            load += ["--mock-url", mock_url, "--mock-pid", str(mock.pid), "--label", name]
            load += ["--out", str(result_file), "--drain-timeout", "60"]
            load += identity_args(jwt_secret)
            load += ["--raw"] if a.raw else []
            bound = a.warmup + a.duration + 60 + 60
            done = subprocess.run(
                load,
                cwd=ROOT,
                env=base_env(),
                preexec_fn=_preexec(driver_cpus),
                stdout=subprocess.PIPE,
                text=True,
                timeout=bound,
                check=False,
            )
            say(done.stdout.strip() or f"{name}: load generator exit {done.returncode}")
            if not result_file.exists():
                raise RuntimeError(
                    f"{name}: the load generator wrote no result (exit {done.returncode})"
                )
            result: dict[str, Any] = json.loads(result_file.read_text())
            if not _dig(result, "throughput", "completed_requests"):
                say(f"{name}: no turn completed in the window: lengthen --warmup and --duration")
        finally:
            procs.stop(proc)
        result["backend_exit_code"] = proc.returncode
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _header(report: dict[str, Any]) -> str:
    m = report["meta"]
    s = m["settings"]
    pin = m["pinning"]
    pinned = (
        f"backend on core(s) {pin['backend']}, mock and load generator on {pin['driver']}"
        if pin["backend"]
        else "not pinned"
    )
    return (
        f"# scripts/bench, {m['time']}\n\n"
        f"{m['cpus']} CPUs ({m['cpu']}), {m['platform']}, Python {m['python']}; {pinned}. "
        f"Mock model: {s['tokens']} tokens, {s['ttft_ms']:g} ms to the first, "
        f"{s['token_delay_ms']:g} ms apart. Conversation = create + {s['extra_turns']} "
        f"follow-ups; {s['warmup']:g} s warm-up, {s['duration']:g} s measured per level, "
        f"{s['rounds']} round(s), medians. Auth: {s['auth']}. Service settings: "
        f"{s['service_env'] or 'defaults'}.\n"
    )


@contextlib.contextmanager
def _signals_as_exit() -> Iterator[None]:
    """SIGTERM / SIGHUP end the run like Ctrl+C does: through the finally that stops everything."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.render is not None:
        print(render_markdown(json.loads(a.render.read_text())["summary"]), end="")
        return 0
    try:
        with _signals_as_exit():
            report = run(a)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    except (RuntimeError, subprocess.SubprocessError) as e:
        say(f"failed: {e}; everything started was stopped")
        return 1
    errors = sum(
        (v or 0)
        for level in report["summary"].values()
        for row in level.values()
        for k, v in row.items()
        if k == "errors"
    )
    return 3 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
