"""Every Prometheus series the service exports, declared in one place.

Adding a series is one step here: declare it in `Metrics.__init__` (name, help, labels; buckets
for a histogram, a multiprocess mode for a gauge), then record it where the event happens and
list it in docs/metrics.md. Labels never carry per-request values such as thread or user ids.

Names follow Prometheus conventions (base units, `_total` on counters, added by the client) and
the OpenTelemetry GenAI client conventions for model calls (dots become underscores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

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

GaugeMode = Literal["livesum", "max", "livemax"]
"""How a gauge sums over workers (the subset of prometheus_client's modes used here)."""

_GEN_AI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")


class Metrics:
    """The service's series, in a registry of their own (so each app and test starts at zero).

    With `multiprocess_dir` (several Hypercorn workers), values live in that directory and a
    scrape sums every worker's files; gauges say how (`multiprocess_mode`).
    """

    def __init__(self, *, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)

        # --- HTTP ----------------------------------------------------------------------------
        self.http_requests = self._counter(
            "chatkit_http_requests",
            "HTTP requests answered, by URL rule (`unmatched` for unknown paths), method, status.",
            ("route", "method", "status"),
        )
        self.http_request_duration = self._histogram(
            "chatkit_http_request_duration_seconds",
            "Time from request to the end of the response body (SSE: the whole stream).",
            ("route", "method"),
            HTTP_SECONDS_BUCKETS,
        )

        # --- ChatKit protocol ----------------------------------------------------------------
        self.chatkit_requests = self._counter(
            "chatkit_requests",
            "ChatKit requests by type and outcome (ok, completed, cancelled, error, rejected); "
            "streams are counted when they end.",
            ("type", "outcome", "error_type"),
        )
        self.streams_in_flight = self._gauge(
            "chatkit_streams_in_flight",
            "ChatKit SSE streams currently open.",
            mode="livesum",
        )
        self.stream_duration = self._histogram(
            "chatkit_stream_duration_seconds",
            "Lifetime of a ChatKit SSE stream, by request type and outcome.",
            ("type", "outcome"),
            LLM_SECONDS_BUCKETS,
        )

        # --- model calls (OpenTelemetry GenAI client metrics) ----------------------------------
        self.model_operation_duration = self._histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of a model call, to the last streamed chunk; error_type is empty on success.",
            (*_GEN_AI, "error_type"),
            LLM_SECONDS_BUCKETS,
        )
        self.model_time_to_first_chunk = self._histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from a streamed model call's start to its first output chunk.",
            _GEN_AI,
            LLM_SECONDS_BUCKETS,
        )
        self.model_token_usage = self._histogram(
            "gen_ai_client_token_usage",
            "Tokens used per model call, by token type (input, output).",
            (*_GEN_AI, "gen_ai_token_type"),
            TOKEN_BUCKETS,
        )
        self.model_errors = self._counter(
            "chatkit_model_errors",
            "Failed model calls by cause (auth, rate_limited, timeout, provider_unavailable, ...).",
            ("gen_ai_provider_name", "gen_ai_request_model", "error_type"),
        )

        # --- tools and storage -----------------------------------------------------------------
        self.tool_calls = self._counter(
            "chatkit_tool_calls",
            "Function tool calls by tool and outcome (ok, error).",
            ("tool", "outcome"),
        )
        self.tool_call_duration = self._histogram(
            "chatkit_tool_call_duration_seconds",
            "Duration of function tool calls.",
            ("tool",),
            LLM_SECONDS_BUCKETS,
        )
        self.store_operation_duration = self._histogram(
            "chatkit_store_operation_duration_seconds",
            "Latency of Store operations (the ChatKit Store method name).",
            ("operation",),
            LLM_SECONDS_BUCKETS,
        )

        # --- attachments -----------------------------------------------------------------------
        self.uploads = self._counter(
            "chatkit_uploads",
            "Attachment uploads by storage backend (local, gcs) and outcome (ok, or the "
            "failure's type: too_large, unsupported_type, bad_upload, storage_unavailable, ...).",
            ("backend", "outcome"),
        )
        self.upload_bytes = self._histogram(
            "chatkit_upload_bytes",
            "Size of each stored upload, by storage backend.",
            ("backend",),
            UPLOAD_BYTES_BUCKETS,
        )
        self.upload_duration = self._histogram(
            "chatkit_upload_duration_seconds",
            "Time to receive and store an upload, by storage backend and outcome.",
            ("backend", "outcome"),
            HTTP_SECONDS_BUCKETS,
        )

        # --- abuse limits ----------------------------------------------------------------------
        self.limit_rejections = self._counter(
            "chatkit_limit_rejections",
            "Requests refused (429) or turns ended by an abuse limit, by limit "
            "(requests_per_minute, concurrent_streams, token_budget).",
            ("limit",),
        )
        self.limit_store_failures = self._counter(
            "chatkit_limit_store_failures",
            "Limit checks answered without the shared rate-limit store (Redis unreachable: "
            "limits not enforced).",
        )

        # --- authentication ----------------------------------------------------------------
        self.auth_failures = self._counter(
            "chatkit_auth_failures",
            "Requests refused for their credentials (401), by reason (missing, malformed, "
            "expired, bad_signature, unknown_key, ...); keys_unavailable: the issuer's keys "
            "could not be fetched (503).",
            ("reason",),
        )

        # --- process -------------------------------------------------------------------------
        self.build_info = self._gauge(
            "chatkit_build_info",
            "Always 1; labels say what is running.",
            ("version", "provider", "model"),
            mode="max",
        )
        self.draining = self._gauge(
            "chatkit_draining",
            "1 while the process drains before shutting down.",
            mode="livemax",
        )

    def upload_counter(self, backend: str) -> Callable[[str, int | None], None]:
        """Counts uploads by outcome, and their size when kept: the upload route's, and those
        that reach the bucket without passing through this service (signed PUTs), once checked."""

        def count(outcome: str, size: int | None) -> None:
            self.uploads.labels(backend, outcome).inc()
            if size is not None:
                self.upload_bytes.labels(backend).observe(size)

        return count

    def _counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def _histogram(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        return Histogram(name, documentation, labels, buckets=buckets, registry=self.registry)

    def _gauge(
        self, name: str, documentation: str, labels: Sequence[str] = (), *, mode: GaugeMode
    ) -> Gauge:
        return Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode=mode)

    def exposition(self) -> bytes:
        """The Prometheus text format of every series (summed over workers when multiprocess)."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # A fresh registry per scrape: the collector reads every worker's files each time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
