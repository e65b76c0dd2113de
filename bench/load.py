"""Closed-loop load generator for ChatKit backends (loopback targets only).

Each of --concurrency virtual users repeats, until the run window closes:
  POST threads.create (SSE, read fully)  ->  --extra-turns x POST
  threads.add_user_message on the new thread (SSE, read fully).

Timeline:  [warmup]  [measurement window = --duration]  [drain <= --drain-timeout]
 * Virtual users start spread over --ramp seconds (default = warmup).
 * Latency stats use requests that START inside the window.
 * Throughput (conversations/s, requests/s) counts completions inside the window.
 * No new conversation starts after the window; conversations in flight finish
   (their remaining turns included) until the drain timeout, then are cancelled.

Per request it records: time to response headers, time to first SSE byte,
time to first text (first non-empty assistant text delta / content part /
assistant item), and total stream duration.  added_ms = ttft - LLM TTFT, where
LLM TTFT is --llm-ttft-ms, or the mock's configured ttft read from
--mock-url/stats.

Errors: connect/read failures, timeouts, HTTP != 200, non-SSE body, SSE
`error` events, missing thread.created on threads.create, no text (unless
--no-expect-text).

Backend resources (--pid, psutil): CPU seconds in the window (+ utilisation in
cores), sampled peak RSS over the whole run, and the kernel's VmHWM.
--pid-children adds child processes (multi-worker servers).

Who asks: every virtual user can be its own user, so per-user limits (streams in flight,
requests per minute) see many users as in real traffic:
  --dev-user-prefix P   X-User-Id: P-<vu>, X-Tenant-Id: --tenant (AUTH_MODE=dev)
  --jwt-hs256-secret S  Authorization: Bearer <HS256 JWT, sub=P-<vu>, tenant=--tenant>
                        (AUTH_MODE=jwt with AUTH_JWT_SECRET=S; --jwt-claim iss=... adds claims)
  --bearer TOKEN / -H 'K: V'  the same header for every virtual user

Writes JSON (--out, else stdout) and prints one human-readable line on stderr
(stdout when --out is given).

Example (from the project root):
  bench/.venv/bin/python -m bench.load --url http://127.0.0.1:8900 --path /chatkit \\
      --concurrency 10 --duration 20 --extra-turns 2 --pid 1234 \\
      --mock-url http://127.0.0.1:8901 --out bench/results/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import platform
import socket
import sys
import time
from urllib.parse import urlparse, urlunparse

import aiohttp

try:
    import psutil
except ImportError:  # resource stats become unavailable, load still runs
    psutil = None

LIMITS = {
    "concurrency": 5000,
    "duration": 3600.0,
    "warmup": 600.0,
    "drain": 300.0,
    "extra_turns": 100,
    "max_conversations": 10_000_000,
    "request_timeout": 600.0,
}
MAX_STREAM_BYTES = 64 * 1024 * 1024  # per request
MAX_EVENTS = 200_000  # per request


# ----------------------------------------------------------------------------
# helpers


def is_loopback_host(host: str) -> bool:
    if not host:
        return False
    if host == "localhost":
        return all(is_loopback_ip(ai[4][0]) for ai in socket.getaddrinfo(host, None))
    return is_loopback_ip(host)


def is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def pct(values, ps=(0.5, 0.95, 0.99)):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    out = {"n": len(v)}
    for p in ps:
        k = (len(v) - 1) * p
        lo = int(k)
        hi = min(lo + 1, len(v) - 1)
        out[f"p{int(p * 100)}"] = round(v[lo] + (v[hi] - v[lo]) * (k - lo), 3)
    out["mean"] = round(sum(v) / len(v), 3)
    out["min"] = round(v[0], 3)
    out["max"] = round(v[-1], 3)
    return out


def user_input(text: str) -> dict:
    return {
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    }


def has_text(ev: dict) -> bool:
    """True if this ChatKit event carries assistant text."""
    t = ev.get("type")
    if t == "thread.item.updated":
        u = ev.get("update") or {}
        ut = u.get("type")
        if ut == "assistant_message.content_part.text_delta":
            return bool(u.get("delta"))
        if ut in ("assistant_message.content_part.added", "assistant_message.content_part.done"):
            return bool((u.get("content") or {}).get("text"))
        return False
    if t in ("thread.item.added", "thread.item.done"):
        item = ev.get("item") or {}
        if item.get("type") == "assistant_message":
            return any(c.get("text") for c in item.get("content") or [])
    return False


class SSEParser:
    """Incremental text/event-stream parser; yields the `data` of each event."""

    def __init__(self):
        self.buf = b""

    def feed(self, chunk: bytes):
        self.buf += chunk
        out = []
        while True:
            i = self.buf.find(b"\n\n")
            j = self.buf.find(b"\r\n\r\n")
            if i < 0 and j < 0:
                break
            if j >= 0 and (i < 0 or j < i):
                block, self.buf = self.buf[:j], self.buf[j + 4 :]
            else:
                block, self.buf = self.buf[:i], self.buf[i + 2 :]
            data = [
                ln[5:].lstrip(b" ") if ln.startswith(b"data:") else None
                for ln in block.replace(b"\r\n", b"\n").split(b"\n")
            ]
            data = [d for d in data if d is not None]
            if data:
                out.append(b"\n".join(data))
        return out


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims: dict, secret: str) -> str:
    """A compact HS256 JWT (RFC 7519) signed with `secret`."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def proc_stat():
    """System-wide CPU ticks (user, nice, system, idle, iowait, irq, softirq, steal)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
        return [int(x) for x in parts[1:9]]
    except (OSError, ValueError, IndexError):
        return None


def stat_delta(s0, s1, secs):
    if not s0 or not s1 or secs <= 0:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    d = [(b - a) / hz / secs for a, b in zip(s0, s1, strict=True)]
    user, nice, system, idle, iowait, irq, softirq, steal = d
    return {
        "busy_cores": round(user + nice + system + irq + softirq, 3),
        "idle_cores": round(idle + iowait, 3),
        "steal_cores": round(steal, 3),
    }


# ----------------------------------------------------------------------------
# process monitor


class ProcMon:
    def __init__(self, pid: int | None, children: bool, interval: float = 0.1):
        self.pid = pid
        self.children = children
        self.interval = interval
        self.peak_rss = 0
        self.samples = 0
        self.error = None
        self.proc = None
        if pid and psutil is None:
            self.error = "psutil not installed"
        elif pid:
            try:
                self.proc = psutil.Process(pid)
            except psutil.Error as e:
                self.error = f"pid {pid}: {e}"

    def _procs(self):
        ps = [self.proc]
        if self.children:
            with contextlib.suppress(psutil.Error):
                ps += self.proc.children(recursive=True)
        return ps

    def cpu(self) -> float | None:
        if not self.proc:
            return None
        total = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self._procs():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def hwm(self) -> int | None:
        if not self.proc:
            return None
        total = 0
        for p in self._procs():
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total or None

    async def run(self, stop: asyncio.Event):
        if not self.proc:
            return
        while not stop.is_set():
            r = self.rss()
            self.samples += 1
            if r > self.peak_rss:
                self.peak_rss = r
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)


# ----------------------------------------------------------------------------
# load


class Runner:
    def __init__(self, a):
        self.a = a
        self.url = a.target_url
        self.headers = {"content-type": "application/json", "accept": "text/event-stream"}
        for h in a.header or []:
            k, _, v = h.partition(":")
            self.headers[k.strip()] = v.strip()
        if a.bearer:
            self.headers["authorization"] = f"Bearer {a.bearer}"
        self.window_closed = asyncio.Event()  # set when the window ends early (abort)
        self.records: list[dict] = []  # per request
        self.convs: list[dict] = []  # per conversation
        self.started_convs = 0
        self.cancelled = 0
        self.error_count = 0
        self.system_cpu = None
        self.aborted = None

    def headers_for(self, vu: int) -> dict[str, str]:
        """The request headers of one virtual user (its identity, when asked for)."""
        a = self.a
        headers = dict(self.headers)
        user = f"{a.dev_user_prefix}-{vu}"
        if a.jwt_hs256_secret:
            now = int(time.time())
            claims: dict[str, object] = {"sub": user, "tenant": a.tenant, "iat": now}
            claims["exp"] = now + int(a.warmup + a.duration + a.drain_timeout) + 3600
            for c in a.jwt_claim or []:
                k, _, v = c.partition("=")
                claims[k.strip()] = v.strip()
            headers["authorization"] = "Bearer " + jwt_hs256(claims, a.jwt_hs256_secret)
        elif a.dev_identity:
            headers["x-user-id"] = user
            headers["x-tenant-id"] = a.tenant
        return headers

    async def request(self, session, kind: str, payload: dict, headers: dict) -> dict:
        rec = {
            "kind": kind,
            "start": time.perf_counter(),
            "status": None,
            "hdr": None,
            "first_byte": None,
            "first_text": None,
            "end": None,
            "events": 0,
            "deltas": 0,
            "bytes": 0,
            "error": None,
            "thread_id": None,
        }
        body = json.dumps(payload).encode()
        try:
            async with session.post(self.url, data=body, headers=headers) as resp:
                rec["hdr"] = time.perf_counter()
                rec["status"] = resp.status
                if resp.status != 200:
                    txt = await resp.content.read(2048)
                    rec["error"] = f"http_{resp.status}"
                    rec["detail"] = txt[:300].decode("utf-8", "replace")
                    return rec
                ctype = resp.headers.get("content-type", "")
                if "text/event-stream" not in ctype:
                    txt = await resp.content.read(2048)
                    rec["error"] = "not_sse"
                    rec["detail"] = f"{ctype}: {txt[:200].decode('utf-8', 'replace')}"
                    return rec
                parser = SSEParser()
                async for chunk in resp.content.iter_any():
                    if rec["first_byte"] is None:
                        rec["first_byte"] = time.perf_counter()
                    rec["bytes"] += len(chunk)
                    if rec["bytes"] > MAX_STREAM_BYTES:
                        rec["error"] = "stream_too_large"
                        break
                    for data in parser.feed(chunk):
                        rec["events"] += 1
                        try:
                            ev = json.loads(data)
                        except ValueError:
                            rec["error"] = rec["error"] or "bad_json"
                            continue
                        t = ev.get("type")
                        if (
                            t == "thread.item.updated"
                            and (ev.get("update") or {}).get("type")
                            == "assistant_message.content_part.text_delta"
                        ):
                            rec["deltas"] += 1
                        if rec["first_text"] is None and has_text(ev):
                            rec["first_text"] = time.perf_counter()
                        if t == "thread.created":
                            rec["thread_id"] = (ev.get("thread") or {}).get("id")
                        elif t == "error":
                            rec["error"] = rec["error"] or "sse_error"
                            rec["detail"] = json.dumps(ev)[:300]
                    if rec["events"] > MAX_EVENTS:
                        rec["error"] = "too_many_events"
                        break
                rec["end"] = time.perf_counter()
        except TimeoutError:
            rec["error"] = "timeout"
        except aiohttp.ClientError as e:
            rec["error"] = type(e).__name__
            rec["detail"] = str(e)[:300]
        except OSError as e:
            rec["error"] = type(e).__name__
            rec["detail"] = str(e)[:300]
        if rec["error"] is None:
            if rec["first_byte"] is None:
                rec["error"] = "empty_stream"
            elif kind == "threads.create" and not rec["thread_id"]:
                rec["error"] = "no_thread_created"
            elif self.a.expect_text and rec["first_text"] is None:
                rec["error"] = "no_text"
        return rec

    async def conversation(self, session, vu: int, n: int, headers: dict):
        conv = {"start": time.perf_counter(), "end": None, "ok": False, "turns": 0}
        self.convs.append(conv)
        rec = await self.request(
            session,
            "threads.create",
            {
                "type": "threads.create",
                "params": {"input": user_input(f"Hello from vu {vu}, conversation {n}.")},
            },
            headers,
        )
        self.records.append(rec)
        ok = rec["error"] is None
        conv["turns"] = 1
        for k in range(self.a.extra_turns):
            if not ok:
                break
            rec2 = await self.request(
                session,
                "threads.add_user_message",
                {
                    "type": "threads.add_user_message",
                    "params": {
                        "thread_id": rec["thread_id"],
                        "input": user_input(f"Follow-up {k + 1}, please continue."),
                    },
                },
                headers,
            )
            self.records.append(rec2)
            ok = rec2["error"] is None
            conv["turns"] += 1
        conv["end"] = time.perf_counter()
        conv["ok"] = ok
        if not ok:
            self.error_count += 1
            if self.error_count >= self.a.max_errors and self.aborted is None:
                self.aborted = f"stopped after {self.error_count} failed conversations"
                self.window_end = min(self.window_end, time.perf_counter())
                self.window_closed.set()
        return ok

    async def vu(self, session, vu: int):
        # ramp: spread VU starts so closed-loop users don't move in lockstep waves
        await asyncio.sleep(self.ramp * vu / self.a.concurrency)
        n = 0
        headers = self.headers_for(vu)
        while time.perf_counter() < self.window_end:
            if self.started_convs >= self.a.max_conversations:
                return
            self.started_convs += 1
            n += 1
            ok = await self.conversation(session, vu, n, headers)
            if not ok:  # never spin on a failing target
                await asyncio.sleep(self.a.error_backoff_ms / 1000)
            elif self.a.think_ms > 0:
                await asyncio.sleep(self.a.think_ms / 1000)

    async def mock_stats(self, session, reset=False):
        if not self.a.mock_url:
            return None
        base = self.a.mock_url.rstrip("/")
        try:
            if reset:
                async with session.post(base + "/stats/reset", data=b"{}") as r:
                    await r.read()
            async with session.get(base + "/stats") as r:
                return await r.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            return {"error": str(e)}

    async def run(self) -> dict:
        a = self.a
        mon = ProcMon(a.pid, a.pid_children)
        mock_mon = ProcMon(a.mock_pid, False)
        me = psutil.Process() if psutil else None
        conn = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=a.request_timeout)
        stop_mon = asyncio.Event()
        loadavg0 = os.getloadavg()
        async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
            llm_ttft = a.llm_ttft_ms
            pre = await self.mock_stats(session)
            if llm_ttft is None and pre and "config" in pre:
                llm_ttft = pre["config"].get("ttft_ms")
            mon_task = asyncio.ensure_future(mon.run(stop_mon))
            t_start = time.perf_counter()
            self.window_start = t_start + a.warmup
            self.window_end = self.window_start + a.duration
            self.ramp = a.warmup if a.ramp is None else min(a.ramp, a.warmup + a.duration)
            tasks = [asyncio.ensure_future(self.vu(session, i)) for i in range(a.concurrency)]

            await asyncio.sleep(max(0.0, self.window_start - time.perf_counter()))
            cpu0, me0 = mon.cpu(), (sum(me.cpu_times()[:2]) if me else None)
            mock0 = mock_mon.cpu()
            sys0 = proc_stat()
            await self.mock_stats(session, reset=True)
            with contextlib.suppress(TimeoutError):  # window_end moves earlier on abort
                await asyncio.wait_for(
                    self.window_closed.wait(), max(0.0, self.window_end - time.perf_counter())
                )
            cpu1, me1 = mon.cpu(), (sum(me.cpu_times()[:2]) if me else None)
            mock1 = mock_mon.cpu()
            self.system_cpu = stat_delta(sys0, proc_stat(), self.window_end - self.window_start)
            mock_window = await self.mock_stats(session)
            if mock0 is not None and mock1 is not None:
                mock_window = dict(mock_window or {})
                win = max(1e-3, self.window_end - self.window_start)
                mock_window["cpu_util_cores"] = round((mock1 - mock0) / win, 3)
            rss_end = mon.rss() if mon.proc else None

            done, pending = await asyncio.wait(tasks, timeout=a.drain_timeout)
            for t in pending:
                t.cancel()
            self.cancelled = len(pending)
            if pending:
                await asyncio.wait(pending, timeout=5)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()
            t_end = time.perf_counter()
            stop_mon.set()
            await mon_task
        return self.report(
            llm_ttft, cpu0, cpu1, me0, me1, mon, rss_end, mock_window, t_start, t_end, loadavg0
        )

    def report(
        self, llm_ttft, cpu0, cpu1, me0, me1, mon, rss_end, mock_window, t_start, t_end, loadavg0
    ) -> dict:
        a = self.a
        ws, we = self.window_start, self.window_end
        dur = max(1e-3, we - ws)  # == --duration unless the run was aborted
        in_win = [r for r in self.records if ws <= r["start"] < we]

        def ms(r, key):
            return None if r[key] is None else (r[key] - r["start"]) * 1000

        def summarize(recs):
            ok = [r for r in recs if r["error"] is None]
            errs: dict[str, int] = {}
            for r in recs:
                if r["error"]:
                    errs[r["error"]] = errs.get(r["error"], 0) + 1
            ttft = [ms(r, "first_text") for r in ok]
            return {
                "requests": len(recs),
                "ok": len(ok),
                "errors": errs,
                "headers_ms": pct(ms(r, "hdr") for r in ok),
                "ttfb_ms": pct(ms(r, "first_byte") for r in ok),
                "ttft_ms": pct(ttft),
                "added_ms": pct(x - llm_ttft for x in ttft if x is not None)
                if llm_ttft is not None
                else None,
                "stream_ms": pct(ms(r, "end") for r in ok),
                "events_per_request": pct(r["events"] for r in ok),
                "text_deltas_per_request": pct(r["deltas"] for r in ok),
            }

        overall = summarize(in_win)
        by_kind = {
            k: summarize([r for r in in_win if r["kind"] == k])
            for k in ("threads.create", "threads.add_user_message")
        }
        done_req = [
            r
            for r in self.records
            if r["end"] is not None and ws <= r["end"] < we and r["error"] is None
        ]
        done_conv = [
            c for c in self.convs if c["end"] is not None and ws <= c["end"] < we and c["ok"]
        ]
        conv_started_win = [c for c in self.convs if ws <= c["start"] < we]
        errors_sample = [
            {"kind": r["kind"], "error": r["error"], "detail": r.get("detail")}
            for r in in_win
            if r["error"]
        ][:5]
        cpu_s = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
        lg_cpu = (me1 - me0) if me0 is not None and me1 is not None else None
        res = {
            "label": a.label,
            "target": self.url,
            "config": {
                "concurrency": a.concurrency,
                "duration_s": a.duration,
                "window_s": round(dur, 3),
                "warmup_s": a.warmup,
                "extra_turns": a.extra_turns,
                "think_ms": a.think_ms,
                "ramp_s": self.ramp,
                "request_timeout_s": a.request_timeout,
                "drain_timeout_s": a.drain_timeout,
                "max_conversations": a.max_conversations,
                "expect_text": a.expect_text,
                "llm_ttft_ms": llm_ttft,
                "headers": sorted(k for k in self.headers),
                "identity": "jwt" if a.jwt_hs256_secret else ("dev" if a.dev_identity else "none"),
            },
            "throughput": {
                "conversations_per_s": round(len(done_conv) / dur, 3),
                "requests_per_s": round(len(done_req) / dur, 3),
                "completed_conversations": len(done_conv),
                "completed_requests": len(done_req),
                "conversations_started_in_window": len(conv_started_win),
                "conversations_failed_in_window": sum(
                    1 for c in conv_started_win if c["end"] is not None and not c["ok"]
                ),
                "cancelled_vus_at_drain": self.cancelled,
                "aborted": self.aborted,
            },
            "latency": overall,
            "by_kind": by_kind,
            "errors_sample": errors_sample,
            "backend": {
                "pid": a.pid,
                "include_children": a.pid_children,
                "cpu_s": round(cpu_s, 3) if cpu_s is not None else None,
                "cpu_util_cores": round(cpu_s / dur, 3) if cpu_s is not None else None,
                "cpu_ms_per_completed_request": round(1000 * cpu_s / len(done_req), 2)
                if cpu_s is not None and done_req
                else None,
                "rss_peak_mb": round(mon.peak_rss / 2**20, 1) if mon.proc else None,
                "rss_end_of_window_mb": round(rss_end / 2**20, 1) if rss_end else None,
                "vmhwm_mb": round(mon.hwm() / 2**20, 1) if mon.hwm() else None,
                "rss_samples": mon.samples,
                "error": mon.error,
            },
            "loadgen": {
                "cpu_s": round(lg_cpu, 3) if lg_cpu is not None else None,
                "cpu_util_cores": round(lg_cpu / dur, 3) if lg_cpu is not None else None,
            },
            "mock_llm_window": mock_window,
            "meta": {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": platform.node(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "loadavg_before": loadavg0,
                "loadavg_after": os.getloadavg(),
                "system_cpu_in_window": self.system_cpu,
                "wall_s": round(t_end - t_start, 2),
                "tags": dict(t.split("=", 1) for t in (a.tag or []) if "=" in t),
            },
        }
        if a.raw:
            t0 = self.window_start
            res["raw_fields"] = [
                "kind",
                "start_s",
                "ttfb_ms",
                "ttft_ms",
                "stream_ms",
                "events",
                "error",
            ]
            res["raw"] = [
                [
                    r["kind"],
                    round(r["start"] - t0, 4),
                    *(
                        None if (x := ms(r, k)) is None else round(x, 3)
                        for k in ("first_byte", "first_text", "end")
                    ),
                    r["events"],
                    r["error"],
                ]
                for r in self.records
            ]
        return res


def human_line(r: dict) -> str:
    def f(d, k="p50"):
        return "-" if not d else f"{d[k]:.1f}"

    lat, th, be = r["latency"], r["throughput"], r["backend"]

    def trio(d):
        return "-" if not d else f"{f(d)}/{f(d, 'p95')}/{f(d, 'p99')}"

    errs = sum(lat["errors"].values())
    s = (
        f"[{r['label']}] c={r['config']['concurrency']} conv/s={th['conversations_per_s']:.2f} "
        f"req/s={th['requests_per_s']:.2f} | ms p50/p95/p99: ttfb={trio(lat['ttfb_ms'])} "
        f"ttft={trio(lat['ttft_ms'])} added={trio(lat['added_ms'])} "
        f"stream={trio(lat['stream_ms'])} | errors={errs}/{lat['requests']}"
    )
    if errs:
        s += f" {lat['errors']}"
    if be.get("cpu_s") is not None:
        per = be.get("cpu_ms_per_completed_request")
        s += (
            f" | backend cpu={be['cpu_s']:.1f}s ({be['cpu_util_cores']:.2f} cores"
            + (f", {per:.0f} ms/req" if per is not None else "")
            + f") rss_peak={be['rss_peak_mb']}MB"
        )
    lg = r["loadgen"]
    if lg.get("cpu_util_cores") is not None:
        s += f" | loadgen {lg['cpu_util_cores']:.2f} cores"
    mk = r.get("mock_llm_window") or {}
    if mk.get("cpu_util_cores") is not None:
        s += f" mock {mk['cpu_util_cores']:.2f} cores"
    sc = r["meta"].get("system_cpu_in_window")
    if sc:
        s += f" | host steal {sc['steal_cores']:.2f} cores"
    return s


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--url",
        default="http://127.0.0.1:8900",
        help="backend base URL (loopback only); its path is replaced by --path "
        "when --path is given",
    )
    p.add_argument(
        "--path",
        default=None,
        help="endpoint path, e.g. /chatkit (default: the path in --url, else /chatkit)",
    )
    p.add_argument(
        "-H",
        "--header",
        action="append",
        help="extra request header 'Name: value' (repeatable), e.g. auth",
    )
    p.add_argument("--bearer", help="shorthand for -H 'Authorization: Bearer TOKEN'")
    p.add_argument(
        "--dev-identity",
        action="store_true",
        help="send X-User-Id: <--dev-user-prefix>-<vu> and X-Tenant-Id: <--tenant> "
        "(one user per virtual user, AUTH_MODE=dev)",
    )
    p.add_argument("--dev-user-prefix", default="bench-user")
    p.add_argument("--tenant", default="bench")
    p.add_argument(
        "--jwt-hs256-secret",
        default=None,
        help="send each virtual user its own HS256 bearer JWT (sub=<prefix>-<vu>, "
        "tenant=<--tenant>) signed with this secret (AUTH_MODE=jwt, AUTH_JWT_SECRET)",
    )
    p.add_argument("--jwt-claim", action="append", help="extra JWT claim key=value (iss, aud, ...)")
    p.add_argument("-c", "--concurrency", type=int, default=10)
    p.add_argument(
        "-d", "--duration", type=float, default=20.0, help="measurement window seconds (default 20)"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    p.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="spread virtual-user starts over this many seconds (default: = --warmup)",
    )
    p.add_argument("--drain-timeout", type=float, default=30.0)
    p.add_argument(
        "-k",
        "--extra-turns",
        type=int,
        default=0,
        help="threads.add_user_message turns after threads.create",
    )
    p.add_argument("--think-ms", type=float, default=0.0, help="pause between conversations")
    p.add_argument("--max-conversations", type=int, default=1_000_000)
    p.add_argument("--request-timeout", type=float, default=60.0)
    p.add_argument(
        "--error-backoff-ms",
        type=float,
        default=200.0,
        help="pause of a virtual user after a failed conversation",
    )
    p.add_argument(
        "--max-errors",
        type=int,
        default=1000,
        help="stop starting conversations after this many failed ones",
    )
    p.add_argument(
        "--no-expect-text",
        dest="expect_text",
        action="store_false",
        help="do not count responses without assistant text as errors",
    )
    p.add_argument(
        "--llm-ttft-ms",
        type=float,
        default=None,
        help="LLM TTFT to subtract for added_ms (default: from --mock-url)",
    )
    p.add_argument(
        "--mock-url",
        default=None,
        help="mock LLM base URL (e.g. http://127.0.0.1:8901): reads /stats",
    )
    p.add_argument("--pid", type=int, default=None, help="backend PID for CPU/RSS")
    p.add_argument(
        "--mock-pid",
        type=int,
        default=None,
        help="mock LLM PID: report its CPU use (driver-side saturation check)",
    )
    p.add_argument(
        "--pid-children",
        action="store_true",
        help="include the PID's child processes (multi-worker servers)",
    )
    p.add_argument("--label", default="backend")
    p.add_argument("--tag", action="append", help="key=value added to meta.tags")
    p.add_argument("--out", default=None, help="write JSON here (else stdout)")
    p.add_argument(
        "--raw",
        action="store_true",
        help="include per-request timings (all phases; start_s relative to window start)",
    )
    a = p.parse_args(argv)

    u = urlparse(a.url)
    if u.scheme not in ("http", "https"):
        p.error("--url must be http(s)://")
    path = a.path if a.path is not None else (u.path if u.path not in ("", "/") else "/chatkit")
    if not path.startswith("/"):
        path = "/" + path
    a.target_url = urlunparse((u.scheme, u.netloc, path, "", u.query, ""))
    for name, url in (("--url", a.url), ("--mock-url", a.mock_url)):
        if url and not is_loopback_host(urlparse(url).hostname or ""):
            p.error(f"{name} must point at a loopback address (127.0.0.0/8, ::1, localhost)")
    if not 1 <= a.concurrency <= LIMITS["concurrency"]:
        p.error(f"--concurrency must be 1..{LIMITS['concurrency']}")
    if not 0 < a.duration <= LIMITS["duration"]:
        p.error(f"--duration must be in (0, {LIMITS['duration']}]")
    if not 0 <= a.warmup <= LIMITS["warmup"]:
        p.error("--warmup out of range")
    if a.ramp is not None and not 0 <= a.ramp <= LIMITS["warmup"]:
        p.error("--ramp out of range")
    if not 0 < a.drain_timeout <= LIMITS["drain"]:
        p.error("--drain-timeout out of range")
    if not 0 <= a.extra_turns <= LIMITS["extra_turns"]:
        p.error("--extra-turns out of range")
    if not 1 <= a.max_conversations <= LIMITS["max_conversations"]:
        p.error("--max-conversations out of range")
    if a.max_errors < 1 or not 0 <= a.error_backoff_ms <= 60_000:
        p.error("--max-errors must be >= 1, --error-backoff-ms in [0, 60000]")
    if not 0 < a.request_timeout <= LIMITS["request_timeout"]:
        p.error("--request-timeout out of range")
    return a


def main(argv=None):
    a = parse_args(argv)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:  # plain asyncio is fine, just slower
        run = asyncio.run
    res = run(Runner(a).run())
    line = human_line(res)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
        print(line)
    else:
        print(json.dumps(res, indent=2))
        print(line, file=sys.stderr)
    errs = sum(res["latency"]["errors"].values())
    return 0 if res["latency"]["requests"] and not errs else 3


if __name__ == "__main__":
    sys.exit(main())
