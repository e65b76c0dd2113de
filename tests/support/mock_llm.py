"""A loopback model provider speaking the OpenAI Responses and Chat Completions formats.

It runs in a thread on 127.0.0.1 so the real `openai` client (httpx2) talks to it over TCP.
Each conversation request takes the next queued `Reply` (or the default one); requests from
the title writer are recognised by their instructions and answered with `title`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TITLE_MARKER = "You write conversation titles"


@dataclass
class Reply:
    text: str = "Hello from the mock model."
    first_token_delay: float = 0.0
    token_delay: float = 0.0
    status: int | None = None
    """Answer with this HTTP error status instead of a completion."""
    error_message: str = "mock failure"
    tool_call: tuple[str, dict[str, Any]] | None = None
    """Ask the agent to call this tool (name, arguments) instead of answering."""
    hang: float = 0.0
    """Wait this long before sending anything (to provoke client timeouts)."""
    drop_after: int | None = None
    """Close the connection abruptly after this many text chunks."""
    input_tokens: int = 11
    output_tokens: int | None = None

    def chunks(self) -> list[str]:
        words = self.text.split(" ")
        return [word if i == 0 else " " + word for i, word in enumerate(words)]


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    is_title: bool
    at: float = field(default_factory=time.monotonic)


@dataclass
class Transcribed:
    """A request to the transcription endpoint: its multipart body and content type."""

    body: bytes
    content_type: str


@dataclass
class StreamLog:
    path: str
    chunks_planned: int
    chunks_sent: int = 0
    completed: bool = False
    client_closed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class MockLLM:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.title = "Mock conversation title"
        self.title_reply: Reply | None = None
        self.requests: list[Recorded] = []
        self.streams: list[StreamLog] = []
        self.transcript = "Hello from the microphone."
        self.transcriptions: list[Transcribed] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> MockLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.default = Reply()
            self.title = "Mock conversation title"
            self.title_reply = None
            self.requests.clear()
            self.streams.clear()
            self.transcriptions.clear()

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def conversation_requests(self) -> list[Recorded]:
        return [r for r in self.requests if not r.is_title]

    def _next(self, is_title: bool) -> Reply:
        with self._lock:
            if is_title:
                return self.title_reply or Reply(text=self.title)
            return self.replies.popleft() if self.replies else self.default


def _is_title_request(body: dict[str, Any]) -> bool:
    if TITLE_MARKER in str(body.get("instructions") or ""):
        return True
    messages = body.get("messages") or []
    return any(
        m.get("role") in ("system", "developer") and TITLE_MARKER in str(m.get("content"))
        for m in messages
    )


def _handler_for(mock: MockLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.endswith("/audio/transcriptions"):  # multipart: the recording
                upload = Transcribed(self.rfile.read(length), self.headers.get("Content-Type", ""))
                with mock._lock:
                    mock.transcriptions.append(upload)
                self._json(200, {"text": mock.transcript})
                return
            body = json.loads(self.rfile.read(length) or b"{}")
            is_title = _is_title_request(body)
            with mock._lock:
                mock.requests.append(
                    Recorded(
                        self.path, body, {k.lower(): v for k, v in self.headers.items()}, is_title
                    )
                )
            reply = mock._next(is_title)
            if reply.hang:
                time.sleep(reply.hang)
            if reply.status is not None:
                self._json(reply.status, _error_body(reply))
                return
            if self.path.endswith("/responses"):
                api = _ResponsesFormat(body, reply)
            elif self.path.endswith("/chat/completions"):
                api = _ChatFormat(body, reply)
            else:
                self._json(
                    404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}
                )
                return
            if body.get("stream"):
                self._stream(api, reply)
            else:
                self._json(200, api.complete())

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, api: _ResponsesFormat | _ChatFormat, reply: Reply) -> None:
            chunks = reply.chunks() if reply.tool_call is None else []
            log = StreamLog(self.path, chunks_planned=len(chunks))
            with mock._lock:
                mock.streams.append(log)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                self._write(api.opening())
                if reply.first_token_delay:
                    time.sleep(reply.first_token_delay)
                for index, chunk in enumerate(chunks):
                    if reply.drop_after is not None and index >= reply.drop_after:
                        self.connection.shutdown(2)
                        return
                    if index and reply.token_delay:
                        time.sleep(reply.token_delay)
                    self._write(api.delta(chunk))
                    log.chunks_sent += 1
                self._write(api.closing())
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                log.completed = True
            except (BrokenPipeError, ConnectionResetError, OSError):
                log.client_closed = True
            finally:
                log.done.set()
                self.close_connection = True

        def _write(self, events: list[str]) -> None:
            for event in events:
                data = event.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

    return Handler


def _error_body(reply: Reply) -> dict[str, Any]:
    kinds = {
        401: "invalid_api_key",
        403: "permission_denied",
        404: "model_not_found",
        429: "rate_limit_exceeded",
    }
    return {
        "error": {
            "message": reply.error_message,
            "type": "invalid_request_error" if (reply.status or 500) < 500 else "server_error",
            "code": kinds.get(reply.status or 0),
        }
    }


def _sse(payload: dict[str, Any], event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n"


class _ResponsesFormat:
    def __init__(self, body: dict[str, Any], reply: Reply) -> None:
        self.model = str(body.get("model", "mock"))
        self.reply = reply
        self.seq = 0
        self.response_id = f"resp_{time.monotonic_ns()}"
        self.item_id = f"msg_{time.monotonic_ns()}"

    def _event(self, type_: str, **fields: Any) -> str:
        self.seq += 1
        return _sse({"type": type_, "sequence_number": self.seq, **fields}, type_)

    def _response(self, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
        out_tokens = self.reply.output_tokens or max(1, len(self.reply.chunks()))
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": int(time.time()),
            "model": self.model,
            "status": status,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "usage": {
                "input_tokens": self.reply.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": out_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.reply.input_tokens + out_tokens,
            }
            if status == "completed"
            else None,
        }

    def _output(self) -> list[dict[str, Any]]:
        if self.reply.tool_call is not None:
            name, arguments = self.reply.tool_call
            return [
                {
                    "type": "function_call",
                    "id": f"fc_{self.item_id}",
                    "call_id": f"call_{self.item_id}",
                    "name": name,
                    "arguments": json.dumps(arguments),
                    "status": "completed",
                }
            ]
        return [self._message(self.reply.text, "completed")]

    def _message(self, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
        return {
            "type": "message",
            "id": self.item_id,
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def complete(self) -> dict[str, Any]:
        return self._response("completed", self._output())

    def opening(self) -> list[str]:
        events = [self._event("response.created", response=self._response("in_progress", []))]
        if self.reply.tool_call is not None:
            return events
        return [
            *events,
            self._event(
                "response.output_item.added", output_index=0, item=self._message("", "in_progress")
            ),
            self._event(
                "response.content_part.added",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": []},
            ),
        ]

    def delta(self, chunk: str) -> list[str]:
        return [
            self._event(
                "response.output_text.delta",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                delta=chunk,
                logprobs=[],
            )
        ]

    def closing(self) -> list[str]:
        output = self._output()
        if self.reply.tool_call is not None:
            call = output[0]
            return [
                self._event(
                    "response.output_item.added",
                    output_index=0,
                    item={**call, "arguments": "", "status": "in_progress"},
                ),
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=call["id"],
                    output_index=0,
                    delta=call["arguments"],
                ),
                self._event(
                    "response.function_call_arguments.done",
                    item_id=call["id"],
                    output_index=0,
                    arguments=call["arguments"],
                ),
                self._event("response.output_item.done", output_index=0, item=call),
                self._event("response.completed", response=self._response("completed", output)),
            ]
        part = {"type": "output_text", "text": self.reply.text, "annotations": []}
        return [
            self._event(
                "response.output_text.done",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                text=self.reply.text,
                logprobs=[],
            ),
            self._event(
                "response.content_part.done",
                item_id=self.item_id,
                output_index=0,
                content_index=0,
                part=part,
            ),
            self._event("response.output_item.done", output_index=0, item=output[0]),
            self._event("response.completed", response=self._response("completed", output)),
        ]


class _ChatFormat:
    def __init__(self, body: dict[str, Any], reply: Reply) -> None:
        self.model = str(body.get("model", "mock"))
        self.reply = reply
        self.id = f"chatcmpl-{time.monotonic_ns()}"
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def _usage(self) -> dict[str, int]:
        out_tokens = self.reply.output_tokens or max(1, len(self.reply.chunks()))
        return {
            "prompt_tokens": self.reply.input_tokens,
            "completion_tokens": out_tokens,
            "total_tokens": self.reply.input_tokens + out_tokens,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def complete(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.reply.text}
        finish = "stop"
        if self.reply.tool_call is not None:
            name, arguments = self.reply.tool_call
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{self.id}",
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(arguments)},
                    }
                ],
            }
            finish = "tool_calls"
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self._usage(),
        }

    def opening(self) -> list[str]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def delta(self, chunk: str) -> list[str]:
        return [self._chunk({"content": chunk})]

    def closing(self) -> list[str]:
        events: list[str] = []
        finish = "stop"
        if self.reply.tool_call is not None:
            name, arguments = self.reply.tool_call
            events.append(
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": f"call_{self.id}",
                                "type": "function",
                                "function": {"name": name, "arguments": json.dumps(arguments)},
                            }
                        ]
                    }
                )
            )
            finish = "tool_calls"
        events.append(self._chunk({}, finish))
        if self.include_usage:
            events.append(
                _sse(
                    {
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": self.model,
                        "choices": [],
                        "usage": self._usage(),
                    }
                )
            )
        events.append("data: [DONE]\n\n")
        return events
