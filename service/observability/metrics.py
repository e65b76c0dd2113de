"""Every Prometheus series the service exports, declared in one place.

Adding a series is one step here: declare it in `Metrics.__init__` (name, help, labels; buckets
for a histogram, a multiprocess mode for a gauge), then record it where the event happens and
list it in docs/metrics.md. Labels never carry per-request values such as thread or user ids.

Names follow Prometheus conventions (base units, `_total` on counters, added by the client) and
the OpenTelemetry GenAI client conventions for model calls (dots become underscores).
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

GEN_AI_OPERATION_CHAT = "chat"

# `*_created` timestamps double the output and multiprocess mode cannot produce them anyway.
disable_created_metrics()  # type: ignore[no-untyped-call]


def _doubling(start: float, count: int) -> tuple[float, ...]:
    return tuple(round(start * 2**step, 6) for step in range(count))


LLM_SECONDS_BUCKETS: tuple[float, ...] = (*_doubling(0.01, 14), 163.84, 327.68)
"""0.01 s doubling to 81.92 s (the OpenTelemetry GenAI advice), then 163.84 s and 327.68 s."""
TOKEN_BUCKETS: tuple[float, ...] = tuple(float(4**power) for power in range(14))
"""Powers of 4 from 1 to 67,108,864 (the OpenTelemetry GenAI advice for token counts)."""
HTTP_SECONDS_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
"""Usual HTTP latencies, plus long buckets: an SSE response lasts as long as its answer."""

UPLOAD_BYTES_BUCKETS: tuple[float, ...] = tuple(float(4**power) for power in range(5, 15))
"""Powers of 4 from 1 KiB to 256 MiB."""

_GEN_AI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")


class Metrics:
    """The service's series, in a registry of their own (so each app and test starts at zero).

    With `multiprocess_dir` (several Hypercorn workers), values live in that directory and a
    scrape sums every worker's files; gauges say how (`multiprocess_mode`).
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry

        # --- HTTP ----------------------------------------------------------------------------
        self.http_requests = Counter(
            "chatkit_http_requests",
            "HTTP requests answered, by URL rule (`unmatched` for unknown paths), method, status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "chatkit_http_request_duration_seconds",
            "Time from request to the end of the response body (SSE: the whole stream).",
            ["route", "method"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=registry,
        )

        # --- ChatKit protocol ----------------------------------------------------------------
        self.chatkit_requests = Counter(
            "chatkit_requests",
            "ChatKit requests by type and outcome (ok, completed, cancelled, error, rejected); "
            "streams are counted when they end.",
            ["type", "outcome", "error_type"],
            registry=registry,
        )
        self.streams_in_flight = Gauge(
            "chatkit_streams_in_flight",
            "ChatKit SSE streams currently open.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.stream_duration = Histogram(
            "chatkit_stream_duration_seconds",
            "Lifetime of a ChatKit SSE stream, by request type and outcome.",
            ["type", "outcome"],
            buckets=LLM_SECONDS_BUCKETS,
            registry=registry,
        )

        # --- model calls (OpenTelemetry GenAI client metrics) ----------------------------------
        self.model_operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of a model call, to the last streamed chunk; error_type is empty on success.",
            [*_GEN_AI, "error_type"],
            buckets=LLM_SECONDS_BUCKETS,
            registry=registry,
        )
        self.model_time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from a streamed model call's start to its first output chunk.",
            list(_GEN_AI),
            buckets=LLM_SECONDS_BUCKETS,
            registry=registry,
        )
        self.model_token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per model call, by token type (input, output).",
            [*_GEN_AI, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.model_errors = Counter(
            "chatkit_model_errors",
            "Failed model calls by cause (auth, rate_limited, timeout, provider_unavailable, ...).",
            ["gen_ai_provider_name", "gen_ai_request_model", "error_type"],
            registry=registry,
        )

        # --- tools and storage -----------------------------------------------------------------
        self.tool_calls = Counter(
            "chatkit_tool_calls",
            "Function tool calls by tool and outcome (ok, error).",
            ["tool", "outcome"],
            registry=registry,
        )
        self.tool_call_duration = Histogram(
            "chatkit_tool_call_duration_seconds",
            "Duration of function tool calls.",
            ["tool"],
            buckets=LLM_SECONDS_BUCKETS,
            registry=registry,
        )
        self.store_operation_duration = Histogram(
            "chatkit_store_operation_duration_seconds",
            "Latency of Store operations (the ChatKit Store method name).",
            ["operation"],
            buckets=LLM_SECONDS_BUCKETS,
            registry=registry,
        )

        # --- attachments -----------------------------------------------------------------------
        self.uploads = Counter(
            "chatkit_uploads",
            "Attachment uploads by storage backend (local, gcs) and outcome (ok, or the "
            "failure's type: too_large, unsupported_type, bad_upload, storage_unavailable, ...).",
            ["backend", "outcome"],
            registry=registry,
        )
        self.upload_bytes = Histogram(
            "chatkit_upload_bytes",
            "Size of each stored upload, by storage backend.",
            ["backend"],
            buckets=UPLOAD_BYTES_BUCKETS,
            registry=registry,
        )
        self.upload_duration = Histogram(
            "chatkit_upload_duration_seconds",
            "Time to receive and store an upload, by storage backend and outcome.",
            ["backend", "outcome"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=registry,
        )

        # --- abuse limits ----------------------------------------------------------------------
        self.limit_rejections = Counter(
            "chatkit_limit_rejections",
            "Requests refused (429) or turns ended by an abuse limit, by limit "
            "(requests_per_minute, concurrent_streams, token_budget).",
            ["limit"],
            registry=registry,
        )
        self.limit_store_failures = Counter(
            "chatkit_limit_store_failures",
            "Limit checks answered without the shared rate-limit store (Redis unreachable: "
            "limits not enforced).",
            registry=registry,
        )

        # --- authentication ----------------------------------------------------------------
        self.auth_failures = Counter(
            "chatkit_auth_failures",
            "Requests refused for their credentials (401), by reason (missing, malformed, "
            "expired, bad_signature, unknown_key, ...); keys_unavailable: the issuer's keys "
            "could not be fetched (503).",
            ["reason"],
            registry=registry,
        )

        # --- process -------------------------------------------------------------------------
        self.build_info = Gauge(
            "chatkit_build_info",
            "Always 1; labels say what is running.",
            ["version", "provider", "model"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.draining = Gauge(
            "chatkit_draining",
            "1 while the process drains before shutting down.",
            registry=registry,
            multiprocess_mode="livemax",
        )

    def exposition(self) -> bytes:
        """The Prometheus text format of every series (summed over workers when multiprocess)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # A fresh registry per scrape: the collector reads every worker's files each time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
