"""`MeteredModel`: the GenAI client series for streamed and plain calls, failures, cancellations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import (
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Usage,
)
from openai.types.responses import Response, ResponseUsage

from service.observability.metrics import Metrics
from service.observability.model_calls import MeteredModel

LABELS = {
    "gen_ai_operation_name": "chat",
    "gen_ai_provider_name": "gcp.gemini",
    "gen_ai_request_model": "gemini-test",
}


class Event:
    """Just what the wrapper reads of a Responses stream event."""

    def __init__(self, type_: str, response: Any = None) -> None:
        self.type = type_
        self.response = response


def completed(input_tokens: int, output_tokens: int) -> Event:
    usage = ResponseUsage.model_construct(input_tokens=input_tokens, output_tokens=output_tokens)
    return Event("response.completed", Response.model_construct(usage=usage))


class FakeModel(Model):
    def __init__(
        self,
        events: list[Any],
        error: Exception | None = None,
        gap: float = 0.0,
        pause: tuple[int, float] | None = None,
    ) -> None:
        """`gap` before every event; `pause` = (index, seconds) before one event."""
        self.events = events
        self.error = error
        self.gap = gap
        self.pause = pause
        self.closed = False

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        if self.error is not None:
            raise self.error
        usage = Usage(requests=1, input_tokens=30, output_tokens=12, total_tokens=42)
        return ModelResponse(output=[], usage=usage, response_id=None)

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for index, event in enumerate(self.events):
            await asyncio.sleep(
                self.pause[1] if self.pause and self.pause[0] == index else self.gap
            )
            yield event
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        self.closed = True

    def _supports_default_prompt_cache_key(self) -> bool:
        return True


def metered(inner: Model, metrics: Metrics) -> MeteredModel:
    return MeteredModel(
        inner,
        metrics,
        provider="gcp.gemini",
        model="gemini-test",
        classify_failure=lambda exc: "rate_limited" if "429" in str(exc) else "internal",
    )


def call_args() -> tuple[Any, ...]:
    return (None, "hi", ModelSettings(), [], None, [], ModelTracing.DISABLED)


CALL_KWARGS: dict[str, Any] = {
    "previous_response_id": None,
    "conversation_id": None,
    "prompt": None,
}


async def drain(model: MeteredModel) -> list[Any]:
    return [event async for event in model.stream_response(*call_args(), **CALL_KWARGS)]


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def test_a_streamed_call_records_duration_first_chunk_and_tokens() -> None:
    metrics = Metrics()
    events = [
        Event("response.created"),
        Event("response.output_item.added"),
        Event("response.output_text.delta"),
        Event("response.output_text.delta"),
        completed(input_tokens=120, output_tokens=9),
    ]
    assert len(await drain(metered(FakeModel(events), metrics))) == 5

    ok = {**LABELS, "error_type": ""}
    assert value(metrics, "gen_ai_client_operation_duration_seconds_count", **ok) == 1
    assert (
        value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **LABELS) == 1
    )
    for token_type, tokens in (("input", 120), ("output", 9)):
        labels = {**LABELS, "gen_ai_token_type": token_type}
        assert value(metrics, "gen_ai_client_token_usage_sum", **labels) == tokens
        assert value(metrics, "gen_ai_client_token_usage_count", **labels) == 1
    assert value(metrics, "chatkit_model_errors_total", **_error_labels("rate_limited")) is None


async def test_time_to_first_chunk_waits_for_output_not_for_the_opening_events() -> None:
    metrics = Metrics()
    # The opening events arrive at once; the first delta only after the model "thinks".
    events = [
        Event("response.created"),
        Event("response.output_item.added"),
        Event("response.output_text.delta"),
        completed(1, 1),
    ]
    await drain(metered(FakeModel(events, pause=(2, 0.3)), metrics))
    total = value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **LABELS)
    assert total is not None
    assert total >= 0.3


async def test_a_failed_stream_counts_the_cause_and_no_tokens() -> None:
    metrics = Metrics()
    model = metered(FakeModel([Event("response.created")], error=RuntimeError("HTTP 429")), metrics)
    with pytest.raises(RuntimeError):
        await drain(model)
    failed = {**LABELS, "error_type": "rate_limited"}
    assert value(metrics, "gen_ai_client_operation_duration_seconds_count", **failed) == 1
    assert value(metrics, "chatkit_model_errors_total", **_error_labels("rate_limited")) == 1
    assert (
        value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **LABELS)
        is None
    )
    input_labels = {**LABELS, "gen_ai_token_type": "input"}
    assert value(metrics, "gen_ai_client_token_usage_count", **input_labels) is None


async def test_a_streamed_failure_event_is_a_provider_error_when_the_sdk_closes_the_stream() -> (
    None
):
    metrics = Metrics()
    model = metered(FakeModel([Event("response.created"), Event("response.failed")]), metrics)
    stream = model.stream_response(*call_args(), **CALL_KWARGS)
    async for event in stream:
        if event.type == "response.failed":
            break  # the SDK raises on this event and closes the stream
    await stream.aclose()  # type: ignore[attr-defined]
    assert (
        value(metrics, "chatkit_model_errors_total", **_error_labels("provider_unavailable")) == 1
    )


async def test_a_call_stopped_by_the_caller_is_cancelled_not_an_error() -> None:
    metrics = Metrics()
    model = metered(FakeModel([Event("response.created")] * 100, gap=0.01), metrics)
    task = asyncio.create_task(drain(model))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    cancelled = {**LABELS, "error_type": "cancelled"}
    assert value(metrics, "gen_ai_client_operation_duration_seconds_count", **cancelled) == 1
    assert value(metrics, "chatkit_model_errors_total", **_error_labels("cancelled")) is None


async def test_a_plain_call_records_duration_and_tokens_without_first_chunk() -> None:
    metrics = Metrics()
    await metered(FakeModel([]), metrics).get_response(*call_args(), **CALL_KWARGS)
    assert (
        value(metrics, "gen_ai_client_operation_duration_seconds_count", **LABELS, error_type="")
        == 1
    )
    output = {**LABELS, "gen_ai_token_type": "output"}
    assert value(metrics, "gen_ai_client_token_usage_sum", **output) == 12
    assert (
        value(metrics, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **LABELS)
        is None
    )


async def test_everything_else_reaches_the_wrapped_model() -> None:
    inner = FakeModel([])
    model = metered(inner, Metrics())
    assert model._supports_default_prompt_cache_key() is True  # probed by the SDK by name
    await model.close()
    assert inner.closed


def _error_labels(kind: str) -> dict[str, str]:
    return {
        "gen_ai_provider_name": "gcp.gemini",
        "gen_ai_request_model": "gemini-test",
        "error_type": kind,
    }


@pytest.mark.parametrize("model_class", [OpenAIResponsesModel, OpenAIChatCompletionsModel])
def test_the_wrapped_models_need_no_run_end_cleanup(model_class: type[Model]) -> None:
    """MeteredModel forwards only public methods. The SDK also calls a private per-run cleanup
    hook on each model; the models we wrap keep the no-op default, so nothing is lost by not
    forwarding it. Should an SDK release give them a real cleanup, this fails: forward it then."""
    hook = "_cleanup_on_run_end"
    assert getattr(model_class, hook) is getattr(Model, hook)
    assert getattr(MeteredModel, hook) is getattr(Model, hook)
