"""Resilience under load: this service against a misbehaving model provider, a storm of client
disconnects, a database that drops its connections, and a long run of turns.

    python -m bench.resilience                         # every scenario, 10,000-turn soak
    python -m bench.resilience --scenarios storm soak --turns 2000
    .venv/bin/python -m bench.resilience --scenarios database --pg-url postgresql://...

Each scenario starts its own mock model (bench/mock_llm.py, driven through its POST /faults
plan) and a fresh service (`.venv/bin/chatkit-backend serve`, as scripts/bench runs it), drives
it over HTTP + SSE from this process (aiohttp), reads the service's /metrics and its process
(psutil), stops both, and prints one line of figures. Everything goes to
bench/results/<time>/resilience.json (and the service's and the mock's logs beside it).

- provider: bursts where every first try (429) or the first two tries (503) of each model call
  fail, so turns succeed only through the OpenAI client's bounded retries (LLM_MAX_RETRIES);
  then a provider that keeps answering 503 or 429, and one that drops the stream mid-answer:
  every turn must end with a readable `error` event, none may hang, the service answers no 5xx.
- timeout: the provider accepts the request and says nothing (LLM_TIMEOUT_SECONDS small): each
  turn must end with an error event within about timeout x (1 + retries) + backoff.
- storm: N concurrent answers cut by their clients mid-answer; the open-streams gauge must come
  back to 0, the asyncio task count, threads and RSS to near their idle baseline, and a next turn
  on every one of those threads must work (turn locks released).
- database: PostgreSQL behind a TCP proxy (bench/tcp_proxy.py) that cuts every connection and
  refuses new ones for a while, under closed-loop load; errors during the cut are counted, turns
  after it must succeed.
- soak: --turns turns in a row (closed loop, --concurrency users, conversations of
  --conversation-turns turns), RSS, threads, open files and asyncio tasks sampled; growth
  against the idle baseline after warm-up, checked against stated bounds.

The asyncio task count comes from a probe loaded into the service from outside
(bench/probe/sitecustomize.py on its PYTHONPATH): the service has no such figure of its own.
Traffic stays on 127.0.0.1; everything started is stopped by its PID, on errors and Ctrl+C too.
Exit codes: 0 when every check held, 3 when one did not, 1 on a failed start, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

from bench import compare
from bench.load import SSEParser, pct, user_input
from bench.tcp_proxy import TcpProxy

ROOT = compare.ROOT
BENCH = compare.BENCH
PROBE_DIR = BENCH / "probe"
SCENARIOS = ("provider", "timeout", "storm", "database", "soak")
TURN_TIMEOUT_S = 120.0  # a turn taking longer counts as hung (and is cut)
QUIET_TIMEOUT_S = 60.0  # how long the service may take to close its streams after a scenario
READABLE_MAX_CHARS = 500
PROBE_INTERVAL_S = 0.25  # how often the probe in the service writes its sample


def say(msg: str) -> None:
    print(f"resilience: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# one turn, as the ChatKit web component sends it


@dataclass
class Turn:
    kind: str
    user: str
    start: float
    end: float | None = None
    status: int | None = None
    thread_id: str | None = None
    text: bool = False
    events: int = 0
    errors: list[str] = field(default_factory=list)  # the `message` of each SSE error event
    failure: str | None = None  # transport failure, HTTP status, or the missing part
    cut: bool = False  # this client hung up on purpose

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.failure is None and not self.errors and self.text

    @property
    def seconds(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def outcome(self) -> str:
        if self.ok:
            return "ok"
        if self.cut:
            return "cut"
        if self.status is not None and self.status != 200:
            return f"http_{self.status}"  # a JSON error answer (its message in `errors`)
        if self.errors:
            return "error_event"
        return self.failure or "failed"


def readable(message: str) -> bool:
    """A message for a person: one line of prose, no traceback, no exception dump."""
    return (
        bool(message.strip())
        and len(message) <= READABLE_MAX_CHARS
        and "\n" not in message
        and "Traceback" not in message
        and not re.search(r"\b\w+(Error|Exception)\(", message)
    )


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def turn(
        self,
        user: str,
        thread_id: str | None = None,
        text: str = "Hello, how are you?",
        *,
        cut_after_text: bool = False,
        limit_s: float = TURN_TIMEOUT_S,
    ) -> Turn:
        """threads.create (no thread_id) or threads.add_user_message, the stream read to the end
        (or until the first assistant text with `cut_after_text`, then the connection closed)."""
        kind = "threads.add_user_message" if thread_id else "threads.create"
        params: dict[str, Any] = {"input": user_input(text)}
        if thread_id:
            params["thread_id"] = thread_id
        t = Turn(kind, user, time.monotonic(), thread_id=thread_id)
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "x-user-id": user,
            "x-tenant-id": "resilience",
        }
        body = json.dumps({"type": kind, "params": params}).encode()
        try:
            async with asyncio.timeout(limit_s):
                async with self.session.post(
                    self.base + "/chatkit/api", data=body, headers=headers
                ) as resp:
                    t.status = resp.status
                    if resp.status != 200:
                        t.failure = f"http_{resp.status}"
                        with contextlib.suppress(aiohttp.ClientError, ValueError):
                            answer = await resp.json(content_type=None)
                            message = (answer.get("error") or {}).get("message")
                            if isinstance(message, str):
                                t.errors.append(message)
                        return t
                    parser = SSEParser()
                    async for chunk in resp.content.iter_any():
                        for data in parser.feed(chunk):
                            t.events += 1
                            self._event(t, data)
                        if cut_after_text and t.text:
                            t.cut = True
                            resp.close()  # hang up mid-answer, as a closed browser tab does
                            return t
        except TimeoutError:
            t.failure = "hung"
        except (aiohttp.ClientError, OSError) as e:
            t.failure = type(e).__name__
        finally:
            t.end = time.monotonic()
        if t.failure is None and not t.errors:
            if kind == "threads.create" and not t.thread_id:
                t.failure = "no_thread_created"
            elif not t.text:
                t.failure = "no_text"
        return t

    @staticmethod
    def _event(t: Turn, data: bytes) -> None:
        try:
            ev = json.loads(data)
        except ValueError:
            t.failure = t.failure or "bad_json"
            return
        typ = ev.get("type")
        if typ == "thread.created":
            t.thread_id = (ev.get("thread") or {}).get("id")
        elif typ == "error":
            t.errors.append(str(ev.get("message") or ""))
        elif typ == "thread.item.updated":
            update = ev.get("update") or {}
            if update.get("type") == "assistant_message.content_part.text_delta":
                t.text = t.text or bool(update.get("delta"))
        elif typ == "thread.item.done":
            item = ev.get("item") or {}
            if item.get("type") == "assistant_message":
                t.text = t.text or any(c.get("text") for c in item.get("content") or [])

    async def metrics(self) -> dict[str, float]:
        """/metrics as {'name{labels}': value} (labels as the service prints them)."""
        async with self.session.get(self.base + "/metrics") as resp:
            text = await resp.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[key] = float(value)
        return out


def metric_sum(metrics: dict[str, float], name: str, **labels: str) -> float:
    """The sum of `name`'s series whose labels include `labels` (a value '5xx' matches 5..)."""
    total = 0.0
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(
            have.get(k, "").startswith(v[0]) if v.endswith("xx") else have.get(k) == v
            for k, v in labels.items()
        ):
            total += value
    return total


def summary(turns: list[Turn]) -> dict[str, Any]:
    outcomes: dict[str, int] = {}
    for t in turns:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
    messages = sorted({m for t in turns for m in t.errors})
    seconds = [t.seconds for t in turns if t.seconds is not None]
    return {
        "turns": len(turns),
        "ok": outcomes.get("ok", 0),
        "success_rate": round(outcomes.get("ok", 0) / len(turns), 4) if turns else None,
        "outcomes": outcomes,
        "http_5xx": sum(1 for t in turns if t.status is not None and t.status >= 500),
        "hung": outcomes.get("hung", 0),
        "error_messages": messages[:10],
        "all_readable": all(readable(m) for m in messages),
        "seconds": pct(seconds, (0.5, 0.99)),
    }


# ----------------------------------------------------------------------------------------------
# processes: the mock, the service, and what the service's process looks like


@dataclass
class Ctx:
    a: argparse.Namespace
    procs: compare.Procs
    out: Path


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    workdir: Path
    probe: Path

    def sample(self) -> dict[str, Any]:
        """RSS (MB), threads, open files of the service's processes; asyncio tasks (the probe)."""
        rss = threads = fds = 0
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
                threads += p.num_threads()
                fds += p.num_fds()
        tasks: int | None = None
        by_coroutine: dict[str, int] = {}
        for f in self.probe.parent.glob(self.probe.name + ".*[0-9]"):
            with contextlib.suppress(OSError, ValueError):
                got = json.loads(f.read_text())
                tasks = (tasks or 0) + int(got["tasks"])
                for k, v in got.get("by_coroutine", {}).items():
                    by_coroutine[k] = by_coroutine.get(k, 0) + int(v)
        return {
            "t": time.monotonic(),
            "rss_mb": round(rss / 2**20, 1),
            "threads": threads,
            "fds": fds,
            "tasks": tasks,
            "by_coroutine": by_coroutine,
        }


def start_mock(ctx: Ctx, name: str, tokens: int, ttft_ms: float, delay_ms: float) -> str:
    port = compare.free_port()
    log = ctx.out / f"mock-{name}.log"
    cmd = [ctx.a.tools_python, "-m", "bench.mock_llm", "--port", str(port)]
    cmd += ["--tokens", str(tokens), "--ttft-ms", str(ttft_ms), "--token-delay-ms", str(delay_ms)]
    proc = ctx.procs.start(cmd, log=log, env=compare.base_env(), cwd=ROOT, cpus=None)
    url = f"http://127.0.0.1:{port}"
    compare.wait_ready(url + "/health", proc, log, 30)
    return url


def start_service(ctx: Ctx, name: str, mock_url: str, env: dict[str, str]) -> Service:
    port = compare.free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"resilience-{name}-"))
    log = ctx.out / f"service-{name}.log"
    full = compare.service_env(port, mock_url)
    probe = workdir / "tasks"
    path = [str(PROBE_DIR), *([str(ctx.a.service_src)] if ctx.a.service_src else [])]
    full.update(PYTHONPATH=os.pathsep.join(path), BENCH_TASK_PROBE=str(probe))
    full.update(BENCH_TASK_PROBE_INTERVAL=str(PROBE_INTERVAL_S))
    full.update(env)
    full.update(kv.split("=", 1) for kv in ctx.a.service_env)
    proc = ctx.procs.start(
        [str(ctx.a.service_bin), "serve"], log=log, env=full, cwd=workdir, cpus=None
    )
    url = f"http://127.0.0.1:{port}"
    say(f"{name}: service pid {proc.pid} on {url}")
    compare.wait_ready(url + "/readyz", proc, log, compare.READY_TIMEOUT_S)
    return Service(name, proc, url, workdir, probe)


def stop_service(ctx: Ctx, svc: Service) -> int | None:
    ctx.procs.stop(svc.proc)
    shutil.rmtree(svc.workdir, ignore_errors=True)
    return svc.proc.returncode


@contextlib.asynccontextmanager
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        yield session


async def mock_call(session: aiohttp.ClientSession, url: str, path: str, body: Any = None) -> Any:
    if body is None:
        async with session.get(url + path) as r:
            return await r.json()
    async with session.post(url + path, json=body) as r:
        r.raise_for_status()
        return await r.json()


async def quiet(client: Client, within: float = QUIET_TIMEOUT_S) -> float | None:
    """Seconds until the open-streams gauge reads 0 (None: not within `within`)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        m = await client.metrics()
        if metric_sum(m, "chatkit_streams_in_flight") == 0:
            return round(time.monotonic() - t0, 2)
        await asyncio.sleep(0.1)
    return None


async def idle_sample(svc: Service, settle: float) -> dict[str, Any]:
    """A sample `settle` s after the load stopped (the probe writes every PROBE_INTERVAL_S):
    `tasks` as found, and `tasks_after_gc` after the probe ran a full garbage collection in the
    service. Tasks waiting in reference cycles (the chatkit SDK leaves one per turn that ended
    early, see service/serving.py) go at the collection; what remains is referenced: a leak
    if it grows with the turns."""
    await asyncio.sleep(settle)
    seen = svc.sample()
    request = svc.probe.parent / (svc.probe.name + ".gc")
    request.touch()
    for _ in range(200):  # the probe looks for the request at every sample
        if not request.exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(PROBE_INTERVAL_S + 0.1)  # the sample written after the collection
    after = svc.sample()
    return {
        **seen,
        "tasks_after_gc": after["tasks"],
        "by_coroutine_after_gc": after["by_coroutine"],
    }


async def closed_loop(
    client: Client,
    users: list[str],
    *,
    turns: int | None = None,
    until: float | None = None,
    per_conversation: int = 3,
    on_turn: Any = None,
) -> list[Turn]:
    """Each user runs conversations (create + follow-ups) until `turns` turns were started in
    all or the clock passes `until`."""
    done: list[Turn] = []
    started = [0]

    def more() -> bool:
        if turns is not None and started[0] >= turns:
            return False
        return until is None or time.monotonic() < until

    async def user(u: str) -> None:
        while more():
            thread: str | None = None
            for k in range(per_conversation):
                if not more():
                    return
                started[0] += 1
                t = await client.turn(u, thread, f"Message {k + 1}: tell me more.")
                done.append(t)
                if on_turn is not None:
                    on_turn(t)
                if not t.ok:
                    await asyncio.sleep(0.2)  # never spin on a failing service
                    break
                thread = t.thread_id

    await asyncio.gather(*(user(u) for u in users))
    return done


# ----------------------------------------------------------------------------------------------
# scenarios


def growth(before: dict[str, Any], after: dict[str, Any], key: str) -> int | None:
    if before.get(key) is None or after.get(key) is None:
        return None
    return int(after[key] - before[key])


def fmt(x: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if x is None else f"{x:,.{digits}f}{unit}"


async def provider(ctx: Ctx) -> dict[str, Any]:
    a = ctx.a
    mock = start_mock(ctx, "provider", a.tokens, a.ttft_ms, a.token_delay_ms)
    svc = start_service(
        ctx,
        "provider",
        mock,
        {"LLM_MAX_RETRIES": str(a.retries), "TITLE_GENERATION": "false"},
    )
    n, c = a.provider_turns, a.concurrency
    phases: dict[str, Any] = {}
    plans: dict[str, dict[str, Any]] = {
        "baseline": {},
        "burst_429": {"kind": "status", "status": 429, "attempts_below": 1, "retry_after_ms": 200},
        "burst_503": {"kind": "status", "status": 503, "attempts_below": min(2, a.retries)},
        "down_503": {"kind": "status", "status": 503},
        "down_429": {"kind": "status", "status": 429, "retry_after_ms": 200},
        "drop_midstream": {"kind": "drop", "drop_after": 2},
    }
    try:
        async with http() as session:
            client = Client(session, svc.url)
            for phase, plan in plans.items():
                await mock_call(session, mock, "/faults", plan)
                await mock_call(session, mock, "/stats/reset", {})
                users = [f"provider-{phase}-{i}" for i in range(c)]
                turns = await closed_loop(client, users, turns=n, per_conversation=2)
                stats = await mock_call(session, mock, "/stats")
                model_requests = sum(stats["requests"].values())
                phases[phase] = {
                    **summary(turns),
                    "plan": plan,
                    "model_requests": model_requests,
                    "retries_seen_by_mock": stats["retries"],
                    "faults_injected": stats["faults"],
                    "model_requests_per_turn": round(model_requests / max(1, len(turns)), 2),
                }
                say(f"provider/{phase}: {phases[phase]['outcomes']}")
                if phase == "baseline":
                    baseline = await idle_sample(svc, a.settle_s)
            await mock_call(session, mock, "/faults", {})
            metrics = await client.metrics()
            gone = await quiet(client)
            final = await idle_sample(svc, a.settle_s)
    finally:
        code = stop_service(ctx, svc)
    base = (phases["baseline"]["seconds"] or {}).get("p50")

    def added(p: str) -> float | None:
        s = (phases[p]["seconds"] or {}).get("p50")
        return None if s is None or base is None else round((s - base) * 1000)

    for p in phases:
        phases[p]["added_latency_p50_ms"] = added(p)
    bursts = ("burst_429", "burst_503")
    down = ("down_503", "down_429", "drop_midstream")
    attempts = 1 + a.retries
    checks = {
        "bursts: every turn succeeds through retries": all(
            phases[p]["success_rate"] == 1.0 for p in ("baseline", *bursts)
        ),
        "bursts: the mock saw the retries": all(
            phases[p]["retries_seen_by_mock"] >= phases[p]["turns"] for p in bursts
        ),
        "down: every turn ends with a readable error event": all(
            phases[p]["outcomes"].get("error_event", 0) == phases[p]["turns"]
            and phases[p]["all_readable"]
            for p in down
        ),
        f"down: model requests per turn bounded by 1 + LLM_MAX_RETRIES = {attempts}": all(
            phases[p]["model_requests"] <= attempts * phases[p]["turns"] for p in down
        ),
        "no turn hung": all(ph["hung"] == 0 for ph in phases.values()),
        "no 5xx from the service": all(ph["http_5xx"] == 0 for ph in phases.values())
        and metric_sum(metrics, "chatkit_http_requests_total", status="5xx") == 0,
        "open streams back to 0": gone is not None,
    }
    failed = sum(phases[p]["turns"] for p in down)
    task_growth = growth(baseline, final, "tasks_after_gc")
    checks[f"failed turns leave no asyncio task behind (+{a.task_slack} at most after gc)"] = (
        task_growth is not None and task_growth <= a.task_slack
    )
    b429, b503, d503, drop = (
        phases[p] for p in ("burst_429", "burst_503", "down_503", "drop_midstream")
    )
    line = (
        f"provider: 429 burst {b429['ok']}/{b429['turns']} ok, {b429['retries_seen_by_mock']} "
        f"retries, +{fmt(b429['added_latency_p50_ms'])} ms p50; 503 burst {b503['ok']}/"
        f"{b503['turns']} ok, {b503['retries_seen_by_mock']} retries, "
        f"+{fmt(b503['added_latency_p50_ms'])} ms p50; provider down: "
        f"{d503['outcomes'].get('error_event', 0)}/{d503['turns']} error events after "
        f"{d503['model_requests_per_turn']} requests/turn in "
        f"{fmt((d503['seconds'] or {}).get('p50'), 2)} s p50; dropped streams: "
        f"{drop['outcomes'].get('error_event', 0)}/{drop['turns']} error events; "
        f"5xx {sum(ph['http_5xx'] for ph in phases.values())}, hung "
        f"{sum(ph['hung'] for ph in phases.values())}; idle tasks after gc "
        f"{baseline['tasks_after_gc']} -> {final['tasks_after_gc']} after {failed} failed turns"
    )
    model_errors = {k: v for k, v in metrics.items() if k.startswith("chatkit_model_errors_total")}
    return {
        "line": line,
        "checks": checks,
        "settings": {"LLM_MAX_RETRIES": a.retries, "turns_per_phase": n, "concurrency": c},
        "phases": phases,
        "model_errors": model_errors,
        "baseline": baseline,
        "final": final,
        "task_growth_after_failed_turns": task_growth,
        "service_exit_code": code,
    }


async def timeout(ctx: Ctx) -> dict[str, Any]:
    a = ctx.a
    mock = start_mock(ctx, "timeout", a.tokens, a.ttft_ms, a.token_delay_ms)
    svc = start_service(
        ctx,
        "timeout",
        mock,
        {
            "LLM_MAX_RETRIES": str(a.retries),
            "LLM_TIMEOUT_SECONDS": str(a.timeout_s),
            "TITLE_GENERATION": "false",
        },
    )
    # the OpenAI client's backoff before retry i (0-based): min(0.5 * 2**i, 8) s, jitter <= 25 %
    backoff = sum(min(0.5 * 2**i, 8.0) for i in range(a.retries))
    expected = (1 + a.retries) * a.timeout_s + backoff
    try:
        async with http() as session:
            client = Client(session, svc.url)
            await mock_call(session, mock, "/faults", {"kind": "hang"})
            await mock_call(session, mock, "/stats/reset", {})
            users = [f"timeout-{i}" for i in range(a.concurrency)]
            turns = await closed_loop(client, users, turns=a.timeout_turns, per_conversation=1)
            stats = await mock_call(session, mock, "/stats")
            await mock_call(session, mock, "/faults", {})
            after = await client.turn("timeout-after")
            metrics = await client.metrics()
            gone = await quiet(client)
    finally:
        code = stop_service(ctx, svc)
    s = summary(turns)
    timeouts = metric_sum(metrics, "chatkit_model_errors_total", error_type="timeout")
    requests = sum(stats["requests"].values())
    checks = {
        "every turn ends with a readable error event": s["outcomes"].get("error_event", 0)
        == s["turns"]
        and s["all_readable"],
        "counted as model timeouts": timeouts >= s["turns"],
        f"model requests per turn bounded by 1 + LLM_MAX_RETRIES = {1 + a.retries}": requests
        <= (1 + a.retries) * s["turns"],
        "no turn hung": s["hung"] == 0,
        "no 5xx from the service": s["http_5xx"] == 0,
        "a turn after the provider recovers succeeds": after.ok,
        "open streams back to 0": gone is not None,
    }
    secs = s["seconds"] or {}
    line = (
        f"timeout: LLM_TIMEOUT_SECONDS={a.timeout_s:g}, LLM_MAX_RETRIES={a.retries}: "
        f"{s['outcomes'].get('error_event', 0)}/{s['turns']} turns ended with an error event "
        f"after {fmt(secs.get('p50'), 2)} s p50, {fmt(secs.get('max'), 2)} s max "
        f"(timeout x attempts + backoff = {expected:.1f} s); "
        f"{requests / max(1, s['turns']):.2f} model requests/turn; hung {s['hung']}; "
        f"next turn {'ok' if after.ok else after.outcome}"
    )
    return {
        "line": line,
        "checks": checks,
        "settings": {
            "LLM_TIMEOUT_SECONDS": a.timeout_s,
            "LLM_MAX_RETRIES": a.retries,
            "expected_bound_s": round(expected, 2),
        },
        **s,
        "model_requests": requests,
        "model_timeouts_counted": timeouts,
        "after": after.outcome,
        "service_exit_code": code,
    }


async def storm(ctx: Ctx) -> dict[str, Any]:
    a = ctx.a
    # long answers (--storm-tokens x 25 ms), so every stream is mid-answer when its client
    # hangs up
    mock = start_mock(ctx, "storm", a.storm_tokens, 100, 25)
    svc = start_service(ctx, "storm", mock, {"TURN_LOCK_TIMEOUT_SECONDS": "5"})
    n = a.storm
    rounds: list[dict[str, Any]] = []
    try:
        async with http() as session:
            client = Client(session, svc.url)
            users = [f"storm-{i}" for i in range(n)]
            created = await asyncio.gather(*(client.turn(u) for u in users))
            threads = [t.thread_id for t in created]
            setup_ok = all(t.ok for t in created)
            await quiet(client)
            baseline = await idle_sample(svc, a.settle_s)
            for r in range(a.storm_rounds):
                await mock_call(session, mock, "/stats/reset", {})
                cut = await asyncio.gather(
                    *(
                        client.turn(u, th, f"Storm {r}: a long answer please.", cut_after_text=True)
                        for u, th in zip(users, threads, strict=True)
                    )
                )
                in_flight = metric_sum(await client.metrics(), "chatkit_streams_in_flight")
                to_zero = await quiet(client)
                after = await idle_sample(svc, a.settle_s)
                stats = await mock_call(session, mock, "/stats")
                rounds.append(
                    {
                        "cut": sum(1 for t in cut if t.cut),
                        "not_cut": [t.outcome for t in cut if not t.cut],
                        "in_flight_right_after": in_flight,
                        "seconds_to_zero_streams": to_zero,
                        "upstream_model_calls_cancelled": stats["disconnected"],
                        "upstream_model_calls_completed": stats["completed"],
                        "sample": after,
                    }
                )
                say(f"storm round {r + 1}: {rounds[-1]['cut']} cut, gauge 0 after {to_zero} s")
            await mock_call(session, mock, "/stats/reset", {})
            nxt = await asyncio.gather(
                *(
                    client.turn(u, th, "Are you still there?")
                    for u, th in zip(users, threads, strict=True)
                )
            )
            await quiet(client)
            final = await idle_sample(svc, a.settle_s)
            metrics = await client.metrics()
    finally:
        code = stop_service(ctx, svc)
    s_next = summary(list(nxt))
    last = rounds[-1]["sample"] if rounds else final
    task_growth = growth(baseline, final, "tasks_after_gc")
    rss_growth = round(final["rss_mb"] - baseline["rss_mb"], 1)
    checks = {
        "set-up turns succeeded": setup_ok,
        "every stream was cut mid-answer": all(r["cut"] == n for r in rounds),
        "open streams gauge back to 0": all(
            r["seconds_to_zero_streams"] is not None for r in rounds
        ),
        f"asyncio tasks back to baseline after a collection (+{a.task_slack} at most)": (
            task_growth is not None and task_growth <= a.task_slack
        ),
        f"RSS back near baseline (+{a.storm_rss_slack_mb:g} MB at most)": rss_growth
        <= a.storm_rss_slack_mb,
        "threads back to baseline": final["threads"] <= baseline["threads"] + 2,
        "next turn on every thread works (locks released)": s_next["success_rate"] == 1.0,
        "no 5xx from the service": metric_sum(metrics, "chatkit_http_requests_total", status="5xx")
        == 0,
    }
    zero = [r["seconds_to_zero_streams"] for r in rounds]
    line = (
        f"storm: {a.storm_rounds} x {n} streams cut mid-answer; gauge 0 after "
        f"{', '.join(fmt(z, 1, ' s') for z in zero)}; upstream calls cancelled "
        f"{sum(r['upstream_model_calls_cancelled'] for r in rounds)}/{n * len(rounds)}; idle tasks "
        f"{baseline['tasks']} -> {last['tasks']} after the storms -> {final['tasks']} after the "
        f"next turns ({baseline['tasks_after_gc']} -> {final['tasks_after_gc']} after gc), RSS "
        f"{baseline['rss_mb']:.0f} -> {final['rss_mb']:.0f} MB, threads {baseline['threads']}"
        f" -> {final['threads']}; next turns {s_next['ok']}/{s_next['turns']} ok"
    )
    return {
        "line": line,
        "checks": checks,
        "settings": {"streams": n, "rounds": a.storm_rounds},
        "baseline": baseline,
        "rounds": rounds,
        "final": final,
        "next_turns": s_next,
        "task_growth": task_growth,
        "rss_growth_mb": rss_growth,
        "service_exit_code": code,
    }


async def pg_execute(admin_url: str, sql: str) -> None:
    """Run one statement on `admin_url`: with asyncpg when this Python has it (the service's
    .venv), else with the psql client."""
    try:
        import asyncpg
    except ImportError:
        asyncpg = None  # type: ignore[assignment]
    if asyncpg is not None:
        try:
            conn = await asyncpg.connect(admin_url, timeout=10)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as e:
            raise RuntimeError(f"PostgreSQL at --pg-url: {type(e).__name__}: {e}") from e
        return
    exe = shutil.which("psql")
    if exe is None:
        raise RuntimeError("the database scenario needs asyncpg or psql (postgresql-client)")
    cmd = [exe, admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
    done = await asyncio.to_thread(
        subprocess.run, cmd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode:
        raise RuntimeError(f"PostgreSQL at --pg-url: psql: {done.stderr.strip()}")


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A new database on the server of `admin_url` (its URL), dropped afterwards."""
    name = f"ck_resilience_{secrets.token_hex(4)}"
    await pg_execute(admin_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            await pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def database(ctx: Ctx) -> dict[str, Any]:
    a = ctx.a
    parts = urlsplit(a.pg_url)
    mock = start_mock(ctx, "database", a.tokens, a.ttft_ms, a.token_delay_ms)
    async with scratch_database(a.pg_url) as db_url:
        proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
        dsn = urlsplit(db_url)
        auth = dsn.netloc.rsplit("@", 1)[0] + "@" if "@" in dsn.netloc else ""
        via_proxy = dsn._replace(netloc=f"{auth}127.0.0.1:{proxy.port}").geturl()
        try:
            svc = start_service(
                ctx,
                "database",
                mock,
                {
                    "DATABASE_URL": via_proxy,
                    "DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
                    "TURN_LOCK_TIMEOUT_SECONDS": "5",
                    "TITLE_GENERATION": "false",
                },
            )
            try:
                result = await _database_load(a, svc, proxy)
            finally:
                result["service_exit_code"] = stop_service(ctx, svc)
        finally:
            proxy.stop()
    return result


async def _database_load(a: argparse.Namespace, svc: Service, proxy: TcpProxy) -> dict[str, Any]:
    marks: dict[str, float] = {}
    ready: list[tuple[float, int]] = []
    async with http() as session:
        client = Client(session, svc.url)
        users = [f"db-{i}" for i in range(a.concurrency)]
        t0 = time.monotonic()
        end = t0 + a.db_before_s + a.db_cut_s + a.db_after_s
        first_ok_after: list[float] = []

        def on_turn(t: Turn) -> None:
            if "restore" in marks and t.ok and t.start >= marks["restore"] and not first_ok_after:
                first_ok_after.append(t.end or t.start)

        async def cutter() -> None:
            await asyncio.sleep(a.db_before_s)
            marks["cut"] = time.monotonic()
            marks["dropped_connections"] = proxy.cut()
            say(f"database: cut {marks['dropped_connections']:.0f} connections")
            await asyncio.sleep(a.db_cut_s)
            proxy.restore()
            marks["restore"] = time.monotonic()
            say("database: restored")

        async def readiness() -> None:
            while time.monotonic() < end:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(
                        svc.url + "/readyz", timeout=aiohttp.ClientTimeout(total=5)
                    ) as r:
                        ready.append((time.monotonic(), r.status))
                await asyncio.sleep(0.25)

        loads = closed_loop(client, users, until=end, per_conversation=3, on_turn=on_turn)
        turns, *_ = await asyncio.gather(loads, cutter(), readiness())
        gone = await quiet(client)
        # after the load: one fresh conversation per user must work end to end
        after = await closed_loop(client, users, turns=2 * len(users), per_conversation=2)
        metrics = await client.metrics()
    cut_at, restore_at = marks["cut"], marks["restore"]
    before = [t for t in turns if (t.end or t.start) < cut_at]
    during = [t for t in turns if (t.end or t.start) >= cut_at and t.start < restore_at]
    later = [t for t in turns if t.start >= restore_at]
    s_before, s_during, s_later, s_after = map(summary, (before, during, later, after))
    not_ready = [s for at, s in ready if cut_at <= at < restore_at and s != 200]
    recovered_s = round(first_ok_after[0] - restore_at, 2) if first_ok_after else None
    checks = {
        "turns succeed before the cut": s_before["turns"] > 0 and s_before["success_rate"] == 1.0,
        "errors during the cut are readable": s_during["all_readable"],
        "no turn hung": all(s["hung"] == 0 for s in (s_before, s_during, s_later, s_after)),
        "turns succeed after the restore": first_ok_after != [],
        "every turn after recovery succeeds": s_after["success_rate"] == 1.0,
        "open streams back to 0": gone is not None,
    }
    line = (
        f"database: {marks['dropped_connections']:.0f} connections cut for {a.db_cut_s:g} s "
        f"under {a.concurrency} users; before {s_before['ok']}/{s_before['turns']} ok; during "
        f"{s_during['ok']}/{s_during['turns']} ok, {s_during['outcomes']}; first success "
        f"{fmt(recovered_s, 2, ' s')} after the restore; later {s_later['ok']}/"
        f"{s_later['turns']} ok; afterwards {s_after['ok']}/{s_after['turns']} ok; /readyz "
        f"not ready {len(not_ready)}/{sum(1 for at, _ in ready if cut_at <= at < restore_at)} "
        f"polls during the cut"
    )
    return {
        "line": line,
        "checks": checks,
        "settings": {
            "concurrency": a.concurrency,
            "before_s": a.db_before_s,
            "cut_s": a.db_cut_s,
            "after_s": a.db_after_s,
        },
        "dropped_connections": marks["dropped_connections"],
        "before": s_before,
        "during": s_during,
        "after_restore": s_later,
        "afterwards": s_after,
        "seconds_to_first_success_after_restore": recovered_s,
        "readyz_during_cut": sorted({s for at, s in ready if cut_at <= at < restore_at}),
        "store_errors": {
            k: v
            for k, v in metrics.items()
            if k.startswith("chatkit_requests_total") and 'outcome="error"' in k
        },
        "http_5xx_metric": metric_sum(metrics, "chatkit_http_requests_total", status="5xx"),
    }


def _slope_per_1000(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of value over turns, per 1000 turns."""
    if len(points) < 3:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return round(1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 3)


async def soak(ctx: Ctx) -> dict[str, Any]:
    a = ctx.a
    mock = start_mock(ctx, "soak", a.soak_tokens, a.soak_ttft_ms, a.soak_token_delay_ms)
    svc = start_service(ctx, "soak", mock, {"RATE_LIMIT_PER_MINUTE": "0"})
    warmup = min(a.soak_warmup, a.turns // 5)
    samples: list[dict[str, Any]] = []
    done = [0]
    try:
        async with http() as session:
            client = Client(session, svc.url)
            users = [f"soak-{i}" for i in range(a.concurrency)]
            warm = await closed_loop(
                client, users, turns=warmup, per_conversation=a.conversation_turns
            )
            await quiet(client)
            baseline = await idle_sample(svc, a.settle_s)
            stop = asyncio.Event()

            async def sampler() -> None:
                while not stop.is_set():
                    samples.append({"turns": done[0], **svc.sample()})
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), a.sample_every_s)

            def count(_t: Turn) -> None:
                done[0] += 1

            sampling = asyncio.ensure_future(sampler())
            t0 = time.monotonic()
            turns = await closed_loop(
                client,
                users,
                turns=a.turns,
                per_conversation=a.conversation_turns,
                on_turn=count,
            )
            wall = time.monotonic() - t0
            stop.set()
            await sampling
            gone = await quiet(client)
            final = await idle_sample(svc, 2 * a.settle_s)
            metrics = await client.metrics()
    finally:
        code = stop_service(ctx, svc)
    s = summary(turns)
    s_warm = summary(warm)
    second_half = [p for p in samples if p["turns"] >= a.turns // 2]
    rss_slope = _slope_per_1000([(p["turns"], p["rss_mb"]) for p in second_half])
    tasks_seen = [p["tasks"] for p in samples if p["tasks"] is not None]
    rss_growth = round(final["rss_mb"] - baseline["rss_mb"], 1)
    task_growth = growth(baseline, final, "tasks_after_gc")
    # the bound: every open turn may hold a handful of tasks; idle, the count returns
    task_bound = (baseline["tasks"] or 0) + a.tasks_per_stream * a.concurrency + a.task_slack
    checks = {
        "every turn succeeded": s["success_rate"] == 1.0 and s_warm["success_rate"] in (1.0, None),
        f"RSS growth within {a.rss_bound_mb:g} MB": rss_growth <= a.rss_bound_mb,
        f"idle asyncio tasks back to baseline after a collection (+{a.task_slack} at most)": (
            task_growth is not None and task_growth <= a.task_slack
        ),
        f"asyncio tasks never above baseline + {a.tasks_per_stream} x concurrency + "
        f"{a.task_slack} = {task_bound}": bool(tasks_seen) and max(tasks_seen) <= task_bound,
        "threads back to baseline": final["threads"] <= baseline["threads"] + 2,
        "open streams back to 0": gone is not None,
        "no 5xx from the service": metric_sum(metrics, "chatkit_http_requests_total", status="5xx")
        == 0,
    }
    line = (
        f"soak: {s['ok']:,}/{s['turns']:,} turns ok at {a.concurrency} users in {wall:.0f} s "
        f"({s['turns'] / wall:.1f} turns/s); RSS {baseline['rss_mb']:.0f} -> "
        f"{max((p['rss_mb'] for p in samples), default=0):.0f} max -> {final['rss_mb']:.0f} MB "
        f"idle ({rss_growth:+.1f} MB, second-half slope {fmt(rss_slope, 2)} MB/1000 turns; "
        f"bound {a.rss_bound_mb:g} MB); asyncio tasks idle {baseline['tasks']} -> "
        f"{final['tasks']} ({baseline['tasks_after_gc']} -> {final['tasks_after_gc']} after gc), "
        f"max {max(tasks_seen, default=None)} under load (bound {task_bound});"
        f" threads {baseline['threads']} -> {final['threads']}, open files {baseline['fds']} -> "
        f"{final['fds']}"
    )
    return {
        "line": line,
        "checks": checks,
        "settings": {
            "turns": a.turns,
            "warmup_turns": warmup,
            "concurrency": a.concurrency,
            "conversation_turns": a.conversation_turns,
            "mock": {
                "tokens": a.soak_tokens,
                "ttft_ms": a.soak_ttft_ms,
                "token_delay_ms": a.soak_token_delay_ms,
            },
            "bounds": {
                "rss_growth_mb": a.rss_bound_mb,
                "idle_task_growth": a.task_slack,
                "tasks_under_load": task_bound,
            },
        },
        **s,
        "wall_s": round(wall, 1),
        "baseline": baseline,
        "final": final,
        "rss_growth_mb": rss_growth,
        "rss_slope_mb_per_1000_turns_second_half": rss_slope,
        "task_growth": task_growth,
        "tasks_max_under_load": max(tasks_seen, default=None),
        "samples": [{k: v for k, v in p.items() if k != "by_coroutine"} for p in samples],
        "service_exit_code": code,
    }


RUNNERS = {
    "provider": provider,
    "timeout": timeout,
    "storm": storm,
    "database": database,
    "soak": soak,
}


# ----------------------------------------------------------------------------------------------
# the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.resilience",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--concurrency", type=int, default=8, help="users at once (closed loop)")
    p.add_argument("--tokens", type=int, default=20, help="mock model: tokens per answer")
    p.add_argument("--ttft-ms", type=float, default=50.0, help="mock model: time to first token")
    p.add_argument("--token-delay-ms", type=float, default=5.0, help="mock model: between tokens")
    p.add_argument("--retries", type=int, default=2, help="LLM_MAX_RETRIES (the default, 2)")
    p.add_argument("--provider-turns", type=int, default=40, help="turns per provider phase")
    p.add_argument("--timeout-s", type=float, default=2.0, help="LLM_TIMEOUT_SECONDS (timeout)")
    p.add_argument("--timeout-turns", type=int, default=16, help="turns against a silent model")
    p.add_argument("--storm", type=int, default=50, help="streams cut at once")
    p.add_argument("--storm-rounds", type=int, default=3, help="storms, one after the other")
    p.add_argument("--storm-tokens", type=int, default=120, help="storm: answer length (25 ms)")
    p.add_argument("--storm-rss-slack-mb", type=float, default=20.0)
    p.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL to create a scratch database on (database scenario; loopback only)",
    )
    p.add_argument("--db-before-s", type=float, default=5.0, help="load before the cut")
    p.add_argument("--db-cut-s", type=float, default=5.0, help="how long connections are refused")
    p.add_argument("--db-after-s", type=float, default=10.0, help="load after the restore")
    p.add_argument("--turns", type=int, default=10_000, help="soak: turns in a row")
    p.add_argument("--soak-warmup", type=int, default=500, help="soak: turns before the baseline")
    p.add_argument("--conversation-turns", type=int, default=5, help="soak: turns per thread")
    p.add_argument("--soak-tokens", type=int, default=10)
    p.add_argument("--soak-ttft-ms", type=float, default=10.0)
    p.add_argument("--soak-token-delay-ms", type=float, default=2.0)
    p.add_argument("--sample-every-s", type=float, default=1.0, help="soak: sampling interval")
    p.add_argument(
        "--settle-s", type=float, default=1.5, help="idle time before an idle sample (soak: x2)"
    )
    p.add_argument("--rss-bound-mb", type=float, default=50.0, help="soak: RSS growth bound")
    p.add_argument("--task-slack", type=int, default=5, help="idle asyncio tasks above baseline")
    p.add_argument("--tasks-per-stream", type=int, default=10, help="soak: task bound per stream")
    p.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra setting for every service started (repeatable)",
    )
    p.add_argument("--tools-python", default=sys.executable, help="Python for the mock model")
    p.add_argument("--service-bin", type=Path, default=ROOT / ".venv" / "bin" / "chatkit-backend")
    p.add_argument(
        "--service-src",
        type=Path,
        default=None,
        help="run the service's code from this directory (one holding service/), e.g. an "
        "unpacked `git archive`, instead of the checkout --service-bin was installed from",
    )
    p.add_argument("--out-dir", type=Path, default=None, help="default bench/results/<time>")
    a = p.parse_args(argv)
    if not (1 <= a.concurrency <= 500 and 1 <= a.storm <= 1000 and 1 <= a.storm_rounds <= 20):
        p.error("--concurrency 1..500, --storm 1..1000, --storm-rounds 1..20")
    if not (1 <= a.turns <= 1_000_000 and a.provider_turns >= 1 and a.timeout_turns >= 1):
        p.error("--turns 1..1,000,000; --provider-turns, --timeout-turns >= 1")
    if not (0 <= a.retries <= 10 and a.timeout_s > 0 and a.db_cut_s > 0):
        p.error("--retries 0..10, --timeout-s > 0, --db-cut-s > 0")
    if (urlsplit(a.pg_url).hostname or "127.0.0.1") not in ("127.0.0.1", "localhost", "::1"):
        p.error("--pg-url: loopback hosts only")
    for kv in a.service_env:
        if "=" not in kv:
            p.error(f"--service-env {kv!r}: expected K=V")
    return a


async def run_scenarios(a: argparse.Namespace, out: Path, procs: compare.Procs) -> dict[str, Any]:
    ctx = Ctx(a, procs, out)
    results: dict[str, Any] = {}
    for name in a.scenarios:
        say(f"{name}: starting")
        t0 = time.monotonic()
        try:
            results[name] = await RUNNERS[name](ctx)
        except (aiohttp.ClientError, OSError, KeyError, TypeError, ValueError) as e:
            # the service (or the mock) went away mid-scenario: a failed check, not a crash
            died = [(p.pid, p.returncode) for p in procs.started if p.poll() is not None]
            results[name] = {
                "line": f"{name}: did not finish: {type(e).__name__}: {e}; exited: {died}",
                "checks": {"the scenario ran to its end": False},
            }
        finally:
            procs.stop_all()
        results[name]["wall_s"] = round(time.monotonic() - t0, 1)
        print(results[name]["line"], flush=True)
        for check, held in results[name]["checks"].items():
            if not held:
                print(f"  FAILED: {check}", flush=True)
    return results


def run(a: argparse.Namespace) -> dict[str, Any]:
    if not a.service_bin.exists():
        raise SystemExit(f"{a.service_bin} is missing: run scripts/bootstrap first")
    out = a.out_dir or BENCH / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    procs = compare.Procs()
    t0 = time.time()
    try:
        results = asyncio.run(run_scenarios(a, out, procs))
    finally:
        procs.stop_all()
    report = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            "wall_s": round(time.time() - t0, 1),
            "host": platform.node(),
            "platform": platform.platform(),
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "settings": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(a).items()
                if k != "pg_url"
            },
            "versions": compare.versions(
                str(a.service_bin.parent / "python"), compare.SERVICE_PACKAGES
            ),
        },
        "scenarios": results,
        "ok": all(all(r["checks"].values()) for r in results.values()),
    }
    (out / "resilience.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"results in {out / 'resilience.json'}")
    return report


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        with compare._signals_as_exit():
            report = run(a)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped")
        return 130
    except (RuntimeError, subprocess.SubprocessError) as e:
        say(f"failed: {e}; everything started was stopped")
        return 1
    return 0 if report["ok"] else 3


if __name__ == "__main__":
    sys.exit(main())
