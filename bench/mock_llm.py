"""Mock OpenAI-compatible LLM server for benchmarking ChatKit backends.

Imitates, on 127.0.0.1 only:
  POST /v1/responses          (Responses API; stream=true -> SSE, else JSON)
  POST /v1/chat/completions   (Chat Completions; stream=true -> SSE, else JSON)
  GET  /v1/models
  GET  /health
  GET  /stats                 counters + observed time-to-first-token lag
  GET  /tools                 the `tools` of the latest request that offered any
  POST /stats/reset           clear counters/samples (config is kept)
  GET  /faults, POST /faults  the fault plan (see below); POST {} clears it
The same routes also answer without the /v1 prefix.

Timing model (per request, measured from the moment the request body has been
read):  response headers + response.created/in_progress are sent at once;
the first text delta is sent at +TTFT; token i (0-based) at +TTFT + i*DELAY;
the closing events follow the last token immediately.

Configuration: CLI flags (--port, --tokens, --ttft-ms, --token-delay-ms).  Per-request
overrides (for tests) via headers x-mock-tokens, x-mock-ttft-ms, x-mock-token-delay-ms.

Faults (resilience benchmarks): POST /faults with a JSON plan makes model requests
(/responses, /chat/completions) fail; GET /faults shows it with its counters; --faults
JSON starts with one.  Plan fields:
  kind            "status": answer `status` (default 503) with an OpenAI error body and
                  Retry-After (`retry_after_ms`, default 100; also sent as retry-after-ms);
                  "hang": read the request, send nothing for `hang_s` (default 3600) or
                  until the client goes away, then answer as usual;
                  "drop": stream the answer's first `drop_after` tokens (default 2),
                  then cut the connection (no closing events, an incomplete chunked body).
  first           fault only the first N matching requests, then answer normally
                  (default: no limit)
  rate            fault this fraction of matching requests (default 1.0; seeded by `seed`)
  attempts_below  fault only requests whose x-stainless-retry-count (the OpenAI client's
                  retry number, 0 on the first try) is below this: 1 = every first try
                  fails and its retry succeeds (default: any)
/stats counts `retries` (requests carrying x-stainless-retry-count > 0) and `faults`
(injected, by kind).

Scripted function calls (both APIs, stream and JSON): when the last user message
contains `[[call NAME {json args}]]` and the request's `tools` offer a function
NAME, the answer is a function call (Responses: a `function_call` output item;
Chat Completions: `tool_calls`, finish_reason "tool_calls").  Once the input holds
the output of that call (`function_call_output` item / `role: tool` message), the
answer is text "TOOL RESULT: <output, first 500 chars>".  Several markers in one
message are called one per request, in order (the k-th call is made when k outputs
follow the last user message).  NAME not offered -> text "NO SUCH TOOL: NAME".

Stack: a raw ASGI app served by uvicorn (uvloop + httptools when installed).
Run: python -m bench.mock_llm --port 8901 (from the project root).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import json
import random
import re
import sys
import time
import uuid
from collections import deque

WORDS = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "ut",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
]

MAX_BODY = 32 * 1024 * 1024
MAX_TOKENS = 100_000


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def token_text(i: int) -> str:
    w = WORDS[i % len(WORDS)]
    return w if i == 0 else " " + w


def expected_text(n: int) -> str:
    return "".join(token_text(i) for i in range(n))


class Config:
    def __init__(self, tokens: int, token_delay_ms: float, ttft_ms: float):
        self.tokens = tokens
        self.token_delay_ms = token_delay_ms
        self.ttft_ms = ttft_ms

    def as_dict(self):
        return {
            "tokens": self.tokens,
            "token_delay_ms": self.token_delay_ms,
            "ttft_ms": self.ttft_ms,
        }


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.since = time.time()
        self.requests: dict[str, int] = {}
        self.active = 0
        self.completed = 0
        self.disconnected = 0
        self.errors = 0
        self.tool_calls = 0
        self.retries = 0  # requests the client marked as a retry (x-stainless-retry-count > 0)
        self.faults: dict[str, int] = {}  # injected, by kind
        # lateness of the first delta vs. its schedule (ms), and of the last token
        self.ttft_lag_ms: deque[float] = deque(maxlen=50_000)
        self.end_lag_ms: deque[float] = deque(maxlen=50_000)

    def as_dict(self):
        def pct(vals):
            v = sorted(vals)
            if not v:
                return None

            def q(p):
                k = (len(v) - 1) * p
                lo = int(k)
                hi = min(lo + 1, len(v) - 1)
                return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 3)

            return {
                "n": len(v),
                "p50": q(0.5),
                "p95": q(0.95),
                "p99": q(0.99),
                "max": round(v[-1], 3),
            }

        return {
            "since": self.since,
            "requests": dict(self.requests),
            "active": self.active,
            "completed": self.completed,
            "disconnected": self.disconnected,
            "errors": self.errors,
            "tool_calls": self.tool_calls,
            "retries": self.retries,
            "faults": dict(self.faults),
            "ttft_lag_ms": pct(self.ttft_lag_ms),
            "end_lag_ms": pct(self.end_lag_ms),
        }


FAULT_KINDS = ("status", "hang", "drop")


class Faults:
    """The fault plan (POST /faults): which model requests fail, and how."""

    def __init__(self):
        self.set({})

    def set(self, plan: dict):
        kind = plan.get("kind")
        if kind is not None and kind not in FAULT_KINDS:
            raise ValueError(f"kind: one of {', '.join(FAULT_KINDS)} (or absent: no faults)")
        status = int(plan.get("status", 503))
        if not 400 <= status <= 599:
            raise ValueError("status: 400..599")
        first = plan.get("first")
        first = None if first is None else max(0, int(first))
        rate = float(plan.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate: 0..1")
        attempts_below = plan.get("attempts_below")
        attempts_below = None if attempts_below is None else int(attempts_below)
        retry_after_ms = max(0.0, float(plan.get("retry_after_ms", 100.0)))
        hang_s = max(0.0, float(plan.get("hang_s", 3600.0)))
        drop_after = max(0, int(plan.get("drop_after", 2)))
        self.kind = kind
        self.status = status
        self.retry_after_ms = retry_after_ms
        self.hang_s = hang_s
        self.drop_after = drop_after
        self.first = first
        self.rate = rate
        self.attempts_below = attempts_below
        self.seed = plan.get("seed", 1)
        self.rng = random.Random(self.seed)
        self.matched = 0  # requests the plan applied to (before `first` and `rate`)
        self.injected = 0

    def pick(self, headers: dict) -> str | None:
        """The fault for this model request (its kind), or None."""
        if self.kind is None:
            return None
        if self.attempts_below is not None:
            try:
                attempt = int(headers.get(b"x-stainless-retry-count", b"0"))
            except ValueError:
                attempt = 0
            if attempt >= self.attempts_below:
                return None
        self.matched += 1
        if self.first is not None and self.injected >= self.first:
            return None
        if self.rate < 1.0 and self.rng.random() >= self.rate:
            return None
        self.injected += 1
        STATS.faults[self.kind] = STATS.faults.get(self.kind, 0) + 1
        return self.kind

    def as_dict(self):
        return {
            "kind": self.kind,
            "status": self.status,
            "retry_after_ms": self.retry_after_ms,
            "hang_s": self.hang_s,
            "drop_after": self.drop_after,
            "first": self.first,
            "rate": self.rate,
            "attempts_below": self.attempts_below,
            "seed": self.seed,
            "matched": self.matched,
            "injected": self.injected,
        }


class DropConnection(Exception):
    """Raised mid-stream to make the server cut the connection (fault kind "drop")."""


CFG = Config(50, 10.0, 250.0)
STATS = Stats()
FAULTS = Faults()
LAST_TOOLS: list = []  # the `tools` of the latest request that offered any (GET /tools)


# ----------------------------------------------------------------------------
# ASGI helpers


async def _read_body(receive) -> bytes:
    chunks = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        b = msg.get("body", b"")
        size += len(b)
        if size > MAX_BODY:
            raise ValueError("body too large")
        chunks.append(b)
        if not msg.get("more_body"):
            return b"".join(chunks)


async def _send_json(send, status: int, obj, extra_headers=()):
    body = _dumps(obj)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error(status: int, message: str, typ="invalid_request_error"):
    return status, {"error": {"message": message, "type": typ, "param": None, "code": None}}


async def _wait_disconnect(receive):
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


class _Stream:
    """Writes SSE chunks, tracks client disconnects."""

    def __init__(self, send, receive):
        self.send = send
        self.watch = asyncio.ensure_future(_wait_disconnect(receive))

    @property
    def gone(self) -> bool:
        return self.watch.done()

    async def start(self, req_id: str):
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", req_id.encode()),
                    (b"openai-processing-ms", b"1"),
                ],
            }
        )

    async def write(self, data: bytes):
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def close(self):
        try:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self.watch.cancel()


async def _sleep_until(t: float):
    d = t - time.perf_counter()
    if d > 0:
        await asyncio.sleep(d)


def _params(req: dict, headers: dict) -> tuple[int, float, float]:
    n = CFG.tokens
    ttft = CFG.ttft_ms
    delay = CFG.token_delay_ms
    try:
        if b"x-mock-tokens" in headers:
            n = int(headers[b"x-mock-tokens"])
        if b"x-mock-ttft-ms" in headers:
            ttft = float(headers[b"x-mock-ttft-ms"])
        if b"x-mock-token-delay-ms" in headers:
            delay = float(headers[b"x-mock-token-delay-ms"])
    except ValueError:
        pass
    # honour max_output_tokens / max_tokens when given
    cap = req.get("max_output_tokens") or req.get("max_completion_tokens") or req.get("max_tokens")
    if isinstance(cap, int) and cap > 0:
        n = min(n, cap)
    n = max(0, min(n, MAX_TOKENS))
    return n, max(0.0, ttft) / 1000.0, max(0.0, delay) / 1000.0


def _input_tokens(raw_len: int) -> int:
    return max(1, raw_len // 4)


# ----------------------------------------------------------------------------
# Scripted function calls: `[[call NAME {json args}]]` in the last user message

MARKER = "[[call"
TOOL_OUTPUT_MAX = 500
_NAME = re.compile(r"\s+([A-Za-z0-9_.:\-]+)")


def parse_markers(text: str) -> list[tuple[str, str]]:
    """Every `[[call NAME {json}]]` in `text`, as (NAME, arguments JSON text)."""
    out, pos, dec = [], 0, json.JSONDecoder()
    while True:
        i = text.find(MARKER, pos)
        if i < 0:
            return out
        m = _NAME.match(text, i + len(MARKER))
        if not m:
            pos = i + len(MARKER)
            continue
        j = m.end()
        while j < len(text) and text[j].isspace():
            j += 1
        args = {}
        if text.startswith("]]", j):
            end = j + 2
        else:
            try:
                args, k = dec.raw_decode(text, j)
            except ValueError:
                pos = j
                continue
            while k < len(text) and text[k].isspace():
                k += 1
            if not text.startswith("]]", k) or not isinstance(args, dict):
                pos = k
                continue
            end = k + 2
        out.append((m.group(1), _dumps(args).decode()))
        pos = end


def _content_text(content) -> str:
    """Text of a message content / tool output: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_content_text(p) for p in content)
    if isinstance(content, dict):
        for k in ("text", "output", "content", "refusal"):
            if isinstance(content.get(k), (str, list)):
                return _content_text(content[k])
    return ""


def _offered(req: dict) -> set[str]:
    names = set()
    for t in req.get("tools") or []:
        if not isinstance(t, dict) or t.get("type", "function") != "function":
            continue
        name = t.get("name") or (t.get("function") or {}).get("name")
        if isinstance(name, str):
            names.add(name)
    return names


def _conversation(req: dict, api: str) -> list:
    items = req.get("input") if api == "responses" else req.get("messages")
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _is_output(item: dict, api: str) -> bool:
    if api == "responses":
        return item.get("type") == "function_call_output"
    return item.get("role") == "tool"


def script_for(req: dict, api: str):
    """None (ordinary answer), ("text", text) or ("call", name, arguments, call_id)."""
    items = _conversation(req, api)
    last = max((i for i, x in enumerate(items) if x.get("role") == "user"), default=None)
    if last is None:
        return None
    text = _content_text(items[last].get("content"))
    markers = parse_markers(text)
    if not markers:
        return None
    outputs = [x for x in items[last + 1 :] if _is_output(x, api)]
    k = len(outputs)
    if k >= len(markers):
        out = outputs[-1]
        body = _content_text(out.get("output") if api == "responses" else out.get("content"))
        return ("text", "TOOL RESULT: " + body[:TOOL_OUTPUT_MAX])
    name, args = markers[k]
    if name not in _offered(req):
        return ("text", "NO SUCH TOOL: " + name)
    digest = hashlib.sha1(f"{k}\0{name}\0{args}\0{text}".encode()).hexdigest()[:24]
    return ("call", name, args, "call_" + digest)


def text_tokens(text: str) -> list[str]:
    """Split scripted text into stream tokens (each with its leading white space)."""
    toks = re.findall(r"\s*\S+", text)
    if toks and len("".join(toks)) < len(text):
        toks[-1] += text[len("".join(toks)) :]
    return toks or ([text] if text else [])


def _arg_chunks(args: str, size: int = 8) -> list[str]:
    return [args[i : i + size] for i in range(0, len(args), size)] or [""]


# ----------------------------------------------------------------------------
# Responses API


def _response_obj(req: dict, resp_id: str, created: int, status: str, output, usage):
    tools = req.get("tools")
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": req.get("instructions"),
        "max_output_tokens": req.get("max_output_tokens"),
        "model": req.get("model") or "gpt-4.1-mini",
        "output": output,
        "parallel_tool_calls": req.get("parallel_tool_calls", True),
        "previous_response_id": req.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": req.get("store", True),
        "temperature": req.get("temperature", 1.0),
        "text": req.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": req.get("tool_choice") or "auto",
        "tools": tools if isinstance(tools, list) else [],
        "top_p": req.get("top_p", 1.0),
        "truncation": req.get("truncation") or "disabled",
        "usage": usage,
        "user": None,
        "metadata": req.get("metadata") or {},
    }


def _usage_responses(inp: int, out: int):
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }


def _message_item(msg_id: str, text: str, status: str):
    content = (
        []
        if status == "in_progress"
        else [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
    )
    return {
        "id": msg_id,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    }


def _ev(seq: list, typ: str, **fields) -> bytes:
    d = {"type": typ, "sequence_number": seq[0], **fields}
    seq[0] += 1
    return b"event: " + typ.encode() + b"\ndata: " + _dumps(d) + b"\n\n"


def _call_item(fc_id: str, call_id: str, name: str, args: str, status: str):
    return {
        "id": fc_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": args,
    }


async def responses_stream_call(req, raw_len, headers, send, receive, t0, script):
    _, name, args, call_id = script
    _n, ttft, delay = _params(req, headers)
    resp_id = "resp_" + uuid.uuid4().hex
    fc_id = "fc_" + uuid.uuid4().hex
    created = int(time.time())
    seq = [0]
    st = _Stream(send, receive)
    try:
        await st.start(resp_id)
        base = _response_obj(req, resp_id, created, "in_progress", [], None)
        await st.write(
            _ev(seq, "response.created", response=base)
            + _ev(seq, "response.in_progress", response=base)
        )
        parts = _arg_chunks(args)
        for i, part in enumerate(parts):
            await _sleep_until(t0 + ttft + i * delay)
            if st.gone:
                STATS.disconnected += 1
                return
            chunk = b""
            if i == 0:
                STATS.ttft_lag_ms.append((time.perf_counter() - t0 - ttft) * 1000)
                chunk += _ev(
                    seq,
                    "response.output_item.added",
                    output_index=0,
                    item=_call_item(fc_id, call_id, name, "", "in_progress"),
                )
            chunk += _ev(
                seq,
                "response.function_call_arguments.delta",
                item_id=fc_id,
                output_index=0,
                delta=part,
            )
            await st.write(chunk)
        item = _call_item(fc_id, call_id, name, args, "completed")
        done = _response_obj(
            req,
            resp_id,
            created,
            "completed",
            [item],
            _usage_responses(_input_tokens(raw_len), len(parts)),
        )
        done["completed_at"] = int(time.time())
        await st.write(
            _ev(
                seq,
                "response.function_call_arguments.done",
                item_id=fc_id,
                output_index=0,
                name=name,
                arguments=args,
            )
            + _ev(seq, "response.output_item.done", output_index=0, item=item)
            + _ev(seq, "response.completed", response=done)
        )
        STATS.completed += 1
        STATS.tool_calls += 1
    finally:
        await st.close()


async def responses_stream(req, raw_len, headers, send, receive, t0, script=None):
    if script and script[0] == "call":
        return await responses_stream_call(req, raw_len, headers, send, receive, t0, script)
    n, ttft, delay = _params(req, headers)
    toks = text_tokens(script[1]) if script else None
    if toks is not None:
        n = len(toks)
    resp_id = "resp_" + uuid.uuid4().hex
    msg_id = "msg_" + uuid.uuid4().hex
    created = int(time.time())
    seq = [0]
    st = _Stream(send, receive)
    try:
        await st.start(resp_id)
        base = _response_obj(req, resp_id, created, "in_progress", [], None)
        await st.write(
            _ev(seq, "response.created", response=base)
            + _ev(seq, "response.in_progress", response=base)
        )
        text_parts = []
        for i in range(n):
            await _sleep_until(t0 + ttft + i * delay)
            if st.gone:
                STATS.disconnected += 1
                return None
            tok = token_text(i) if toks is None else toks[i]
            text_parts.append(tok)
            chunk = b""
            if i == 0:
                STATS.ttft_lag_ms.append((time.perf_counter() - t0 - ttft) * 1000)
                chunk += _ev(
                    seq,
                    "response.output_item.added",
                    output_index=0,
                    item=_message_item(msg_id, "", "in_progress"),
                )
                chunk += _ev(
                    seq,
                    "response.content_part.added",
                    item_id=msg_id,
                    output_index=0,
                    content_index=0,
                    part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                )
            chunk += _ev(
                seq,
                "response.output_text.delta",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                delta=tok,
                logprobs=[],
            )
            await st.write(chunk)
        if n == 0:
            await _sleep_until(t0 + ttft)
            await st.write(
                _ev(
                    seq,
                    "response.output_item.added",
                    output_index=0,
                    item=_message_item(msg_id, "", "in_progress"),
                )
                + _ev(
                    seq,
                    "response.content_part.added",
                    item_id=msg_id,
                    output_index=0,
                    content_index=0,
                    part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                )
            )
        if n:
            STATS.end_lag_ms.append((time.perf_counter() - t0 - ttft - (n - 1) * delay) * 1000)
        text = "".join(text_parts)
        item = _message_item(msg_id, text, "completed")
        done = _response_obj(
            req, resp_id, created, "completed", [item], _usage_responses(_input_tokens(raw_len), n)
        )
        done["completed_at"] = int(time.time())
        await st.write(
            _ev(
                seq,
                "response.output_text.done",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                text=text,
                logprobs=[],
            )
            + _ev(
                seq,
                "response.content_part.done",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                part=item["content"][0],
            )
            + _ev(seq, "response.output_item.done", output_index=0, item=item)
            + _ev(seq, "response.completed", response=done)
        )
        STATS.completed += 1
    finally:
        await st.close()


async def responses_json(req, raw_len, headers, send, t0, script=None):
    n, ttft, delay = _params(req, headers)
    if script and script[0] == "call":
        _, name, args, call_id = script
        n = len(_arg_chunks(args))
        item = _call_item("fc_" + uuid.uuid4().hex, call_id, name, args, "completed")
        STATS.tool_calls += 1
    else:
        text = expected_text(n) if script is None else script[1]
        n = n if script is None else len(text_tokens(text))
        item = _message_item("msg_" + uuid.uuid4().hex, text, "completed")
    await _sleep_until(t0 + ttft + max(0, n - 1) * delay)
    resp_id = "resp_" + uuid.uuid4().hex
    obj = _response_obj(
        req,
        resp_id,
        int(time.time()),
        "completed",
        [item],
        _usage_responses(_input_tokens(raw_len), n),
    )
    await _send_json(send, 200, obj)
    STATS.completed += 1


# ----------------------------------------------------------------------------
# Chat Completions API


def _chunk(cid, created, model, delta, finish=None, usage=None, choices=True):
    d = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
    }
    if usage is not None:
        d["usage"] = usage
    return b"data: " + _dumps(d) + b"\n\n"


def _usage_chat(inp, out):
    return {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


async def chat_stream_call(req, raw_len, headers, send, receive, t0, script):
    _, name, args, call_id = script
    _n, ttft, delay = _params(req, headers)
    cid = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    model = req.get("model") or "gpt-4.1-mini"
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    st = _Stream(send, receive)
    try:
        await st.start(cid)
        parts = _arg_chunks(args)
        for i, part in enumerate(parts):
            await _sleep_until(t0 + ttft + i * delay)
            if st.gone:
                STATS.disconnected += 1
                return
            if i == 0:
                STATS.ttft_lag_ms.append((time.perf_counter() - t0 - ttft) * 1000)
                delta = {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": part},
                        }
                    ],
                }
            else:
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
            await st.write(_chunk(cid, created, model, delta))
        tail = _chunk(cid, created, model, {}, finish="tool_calls")
        if include_usage:
            tail += _chunk(
                cid,
                created,
                model,
                None,
                usage=_usage_chat(_input_tokens(raw_len), len(parts)),
                choices=False,
            )
        tail += b"data: [DONE]\n\n"
        await st.write(tail)
        STATS.completed += 1
        STATS.tool_calls += 1
    finally:
        await st.close()


async def chat_stream(req, raw_len, headers, send, receive, t0, script=None):
    if script and script[0] == "call":
        return await chat_stream_call(req, raw_len, headers, send, receive, t0, script)
    n, ttft, delay = _params(req, headers)
    toks = text_tokens(script[1]) if script else None
    if toks is not None:
        n = len(toks)
    cid = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    model = req.get("model") or "gpt-4.1-mini"
    include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
    st = _Stream(send, receive)
    try:
        await st.start(cid)
        for i in range(n):
            await _sleep_until(t0 + ttft + i * delay)
            if st.gone:
                STATS.disconnected += 1
                return None
            chunk = b""
            if i == 0:
                STATS.ttft_lag_ms.append((time.perf_counter() - t0 - ttft) * 1000)
                chunk += _chunk(
                    cid, created, model, {"role": "assistant", "content": "", "refusal": None}
                )
            chunk += _chunk(
                cid, created, model, {"content": token_text(i) if toks is None else toks[i]}
            )
            await st.write(chunk)
        if n == 0:
            await _sleep_until(t0 + ttft)
            await st.write(
                _chunk(cid, created, model, {"role": "assistant", "content": "", "refusal": None})
            )
        if n:
            STATS.end_lag_ms.append((time.perf_counter() - t0 - ttft - (n - 1) * delay) * 1000)
        tail = _chunk(cid, created, model, {}, finish="stop")
        if include_usage:
            tail += _chunk(
                cid,
                created,
                model,
                None,
                usage=_usage_chat(_input_tokens(raw_len), n),
                choices=False,
            )
        tail += b"data: [DONE]\n\n"
        await st.write(tail)
        STATS.completed += 1
    finally:
        await st.close()


async def chat_json(req, raw_len, headers, send, t0, script=None):
    n, ttft, delay = _params(req, headers)
    finish = "stop"
    if script and script[0] == "call":
        _, name, args, call_id = script
        n = len(_arg_chunks(args))
        message = {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            ],
        }
        finish = "tool_calls"
        STATS.tool_calls += 1
    else:
        text = expected_text(n) if script is None else script[1]
        n = n if script is None else len(text_tokens(text))
        message = {"role": "assistant", "content": text, "refusal": None}
    await _sleep_until(t0 + ttft + max(0, n - 1) * delay)
    obj = {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.get("model") or "gpt-4.1-mini",
        "system_fingerprint": "fp_mock",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": _usage_chat(_input_tokens(raw_len), n),
    }
    await _send_json(send, 200, obj)
    STATS.completed += 1


# ----------------------------------------------------------------------------
# Faults


async def fault_status(send):
    status = FAULTS.status
    typ = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "mock"
    ms = FAULTS.retry_after_ms
    extra = [
        (b"retry-after", str(max(1, -(-int(ms) // 1000))).encode()),
        (b"retry-after-ms", str(int(ms)).encode()),
    ]
    await _send_json(send, *_error(status, f"mock fault: HTTP {status}", typ), extra)


async def fault_hang(receive) -> bool:
    """Sleep FAULTS.hang_s or until the client leaves; True when the client is still there."""
    try:
        await asyncio.wait_for(_wait_disconnect(receive), FAULTS.hang_s)
    except TimeoutError:
        return True
    STATS.disconnected += 1
    return False


def dropping_send(send, allowed: int):
    """`send` that lets `allowed` non-empty body chunks through, then cuts the connection."""
    left = [allowed]

    async def wrapped(msg):
        if msg["type"] == "http.response.body":
            if left[0] <= 0:
                raise DropConnection("mock fault: connection dropped")
            if msg.get("body"):
                left[0] -= 1
        await send(msg)

    return wrapped


# ----------------------------------------------------------------------------
# ASGI app


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    if scope["type"] != "http":
        return None
    path = scope["path"]
    if path.startswith("/v1/"):
        path = path[3:]
    method = scope["method"]

    if method == "GET":
        if path in ("/health", "/"):
            return await _send_json(send, 200, {"ok": True})
        if path == "/stats":
            return await _send_json(send, 200, {"config": CFG.as_dict(), **STATS.as_dict()})
        if path == "/tools":
            return await _send_json(send, 200, {"tools": LAST_TOOLS})
        if path == "/faults":
            return await _send_json(send, 200, FAULTS.as_dict())
        if path == "/models":
            return await _send_json(
                send,
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": "gpt-4.1-mini", "object": "model", "created": 0, "owned_by": "mock"}
                    ],
                },
            )
        return await _send_json(send, *_error(404, f"unknown path {scope['path']}"))

    if method != "POST":
        return await _send_json(send, *_error(405, "method not allowed"))

    try:
        raw = await _read_body(receive)
    except ConnectionError:
        return None
    except ValueError as e:
        return await _send_json(send, *_error(413, str(e)))
    t0 = time.perf_counter()

    if path == "/stats/reset":
        STATS.reset()
        return await _send_json(send, 200, {"ok": True})
    if path == "/faults":
        try:
            plan = json.loads(raw) if raw.strip() else {}
            if not isinstance(plan, dict):
                raise ValueError("body must be a JSON object")
            FAULTS.set(plan)
        except (ValueError, TypeError) as e:
            return await _send_json(send, *_error(400, f"bad fault plan: {e}"))
        return await _send_json(send, 200, FAULTS.as_dict())
    if path not in ("/responses", "/chat/completions"):
        return await _send_json(send, *_error(404, f"unknown path {scope['path']}"))
    try:
        req = json.loads(raw) if raw else {}
        if not isinstance(req, dict):
            raise ValueError("body must be a JSON object")
    except ValueError as e:
        STATS.errors += 1
        return await _send_json(send, *_error(400, f"invalid JSON body: {e}"))

    headers = dict(scope.get("headers") or [])
    stream = bool(req.get("stream"))
    if isinstance(req.get("tools"), list) and req["tools"]:
        LAST_TOOLS[:] = req["tools"]
    script = None
    if MARKER.encode() in raw:  # cheap pre-check: the benchmark path never parses
        script = script_for(req, "responses" if path == "/responses" else "chat")
    key = path + (" stream" if stream else "")
    STATS.requests[key] = STATS.requests.get(key, 0) + 1
    if headers.get(b"x-stainless-retry-count", b"0") not in (b"0", b""):
        STATS.retries += 1
    fault = FAULTS.pick(headers)
    if fault == "status":
        return await fault_status(send)
    STATS.active += 1
    try:
        if fault == "hang":
            if not await fault_hang(receive):
                return None
            t0 = time.perf_counter()  # a slow provider: the usual timing from now on
        if fault == "drop":
            allowed = FAULTS.drop_after + (1 if path == "/responses" else 0) if stream else 0
            send = dropping_send(send, allowed)
        if path == "/responses":
            if stream:
                await responses_stream(req, len(raw), headers, send, receive, t0, script)
            else:
                await responses_json(req, len(raw), headers, send, t0, script)
        else:
            if stream:
                await chat_stream(req, len(raw), headers, send, receive, t0, script)
            else:
                await chat_json(req, len(raw), headers, send, t0, script)
    except DropConnection:
        raise  # the server closes the connection: the fault asked for
    except Exception:
        STATS.errors += 1
        raise
    finally:
        STATS.active -= 1


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address only")
    p.add_argument("--port", type=int, default=8901)
    p.add_argument(
        "--tokens",
        type=int,
        default=50,
        help="output tokens per response (default 50)",
    )
    p.add_argument(
        "--token-delay-ms",
        type=float,
        default=10.0,
        help="delay between tokens after the first (default 10)",
    )
    p.add_argument(
        "--ttft-ms",
        type=float,
        default=250.0,
        help="time to first token from request receipt (default 250)",
    )
    p.add_argument(
        "--faults",
        default=None,
        metavar="JSON",
        help='start with this fault plan (as POST /faults), e.g. \'{"kind": "status", '
        '"status": 429, "first": 10}\'',
    )
    p.add_argument("--log-level", default="warning")
    a = p.parse_args(argv)
    if not _is_loopback(a.host):
        sys.exit(f"refusing to bind non-loopback host {a.host!r}")
    if a.faults:
        try:
            plan = json.loads(a.faults)
            if not isinstance(plan, dict):
                raise ValueError("a JSON object")
            FAULTS.set(plan)
        except (ValueError, TypeError) as e:
            sys.exit(f"--faults: {e}")
    CFG.tokens = max(0, min(a.tokens, MAX_TOKENS))
    CFG.token_delay_ms = max(0.0, a.token_delay_ms)
    CFG.ttft_ms = max(0.0, a.ttft_ms)

    import uvicorn

    print(
        f"mock_llm: http://{a.host}:{a.port}/v1 tokens={CFG.tokens} "
        f"ttft_ms={CFG.ttft_ms} token_delay_ms={CFG.token_delay_ms}",
        flush=True,
    )
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        log_level=a.log_level,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
