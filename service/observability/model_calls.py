"""An Agents SDK `Model` that measures every call of the model it wraps.

Records the OpenTelemetry GenAI client series: operation duration (with the failure's cause),
time to first output chunk for streamed calls, and token usage from the provider's report.
The wrapper changes nothing else: every call and attribute goes to the wrapped model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from agents import Model, ModelResponse
from agents.items import TResponseStreamEvent

from service.observability.metrics import GEN_AI_OPERATION_CHAT, Metrics

if TYPE_CHECKING:
    from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest

CANCELLED = "cancelled"

_OUTPUT_DONE_EVENTS = frozenset({"response.output_item.done", "response.completed"})
_FAILURE_EVENTS = {
    # Streamed terminal failures: the SDK raises on them and closes this stream.
    "response.failed": "provider_unavailable",
    "response.error": "provider_unavailable",
    "error": "provider_unavailable",
    "response.incomplete": "incomplete",
}


def is_output_chunk(event: TResponseStreamEvent) -> bool:
    """The first chunk that carries model output: a delta of text, tool arguments, reasoning...,
    or a finished item (providers that send an item whole)."""
    kind = event.type
    return kind.endswith(".delta") or kind in _OUTPUT_DONE_EVENTS


class MeteredModel(Model):
    def __init__(
        self,
        inner: Model,
        metrics: Metrics,
        *,
        provider: str,
        model: str,
        classify_failure: Callable[[BaseException], str],
    ) -> None:
        """`provider` is the OTel provider name, `model` the configured model name;
        `classify_failure` turns an exception into a short cause (`rate_limited`, ...)."""
        self._inner = inner
        self._metrics = metrics
        self._provider = provider
        self._model = model
        self._classify = classify_failure

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities the SDK probes for by name (e.g. prompt cache keys).
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)  # e.g. while copying, before __init__ has run
        return getattr(self._inner, name)

    # The SDK's arguments are passed through untouched: only timing and usage are ours.
    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        started = time.perf_counter()
        try:
            response = await self._inner.get_response(*args, **kwargs)
        except (asyncio.CancelledError, GeneratorExit):
            self._cancelled(started)
            raise
        except Exception as exc:
            self._failed(started, exc)
            raise
        self._succeeded(started, response.usage.input_tokens, response.usage.output_tokens)
        return response

    async def stream_response(
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[TResponseStreamEvent]:
        started = time.perf_counter()
        first_chunk_seen = False
        failure: str | None = None
        input_tokens = output_tokens = 0
        try:
            async for event in self._inner.stream_response(*args, **kwargs):
                if not first_chunk_seen and is_output_chunk(event):
                    first_chunk_seen = True
                    self._metrics.model_time_to_first_chunk.labels(*self._labels()).observe(
                        time.perf_counter() - started
                    )
                if event.type == "response.completed" and event.response.usage is not None:
                    input_tokens = event.response.usage.input_tokens
                    output_tokens = event.response.usage.output_tokens
                failure = _FAILURE_EVENTS.get(event.type, failure)
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            if failure is None:
                self._cancelled(started)
            else:
                self._failed_as(started, failure)
            raise
        except Exception as exc:
            self._failed(started, exc)
            raise
        if failure is not None:
            self._failed_as(started, failure)
        else:
            self._succeeded(started, input_tokens, output_tokens)

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        return self._inner.get_retry_advice(request)

    async def close(self) -> None:
        await self._inner.close()

    # --- recording ---------------------------------------------------------------------------

    def _labels(self) -> tuple[str, str, str]:
        return (GEN_AI_OPERATION_CHAT, self._provider, self._model)

    def _succeeded(self, started: float, input_tokens: int, output_tokens: int) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.model_operation_duration.labels(*self._labels(), "").observe(elapsed)
        if input_tokens or output_tokens:
            usage = self._metrics.model_token_usage
            usage.labels(*self._labels(), "input").observe(input_tokens)
            usage.labels(*self._labels(), "output").observe(output_tokens)

    def _cancelled(self, started: float) -> None:
        # The caller stopped the call (client gone): not the provider's failure.
        elapsed = time.perf_counter() - started
        self._metrics.model_operation_duration.labels(*self._labels(), CANCELLED).observe(elapsed)

    def _failed(self, started: float, exc: Exception) -> None:
        self._failed_as(started, self._classify(exc))

    def _failed_as(self, started: float, kind: str) -> None:
        elapsed = time.perf_counter() - started
        self._metrics.model_operation_duration.labels(*self._labels(), kind).observe(elapsed)
        self._metrics.model_errors.labels(self._provider, self._model, kind).inc()
