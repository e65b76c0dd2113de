"""`StreamRelay` with the outcome recorder: how each stream ends (outcome, in-flight gauge),
heartbeats, drain cut-off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from service.agents.factory import create_model
from service.chatkit.errors import ConversationBusy
from service.chatkit.failures import FailureTable
from service.chatkit.outcomes import OutcomeRecorder
from service.chatkit.store.base import StoreUnavailableError
from service.chatkit.streaming import DRAIN_NOTICE, HEARTBEAT, StreamRelay
from service.lifecycle import Lifecycle
from service.observability.metrics import Metrics
from service.request_context import Turn
from service.settings import Settings

CREATED = b'data: {"type":"thread.created","thread":{"id":"thr_9"}}\n\n'
DELTA = b'data: {"type":"thread.item.updated"}\n\n'
ERROR_EVENT = b'data: {"type":"error","code":"custom","message":"x","allow_retry":true}\n\n'


def relay_for(
    source: AsyncIterator[bytes], heartbeat: float = 30.0, turn: Turn | None = None
) -> tuple[StreamRelay, Metrics, Lifecycle]:
    metrics, lifecycle = Metrics(), Lifecycle()
    recorder = OutcomeRecorder(metrics, FailureTable(create_model(Settings(_env_file=None))))
    turn = turn or Turn(request_type="threads.create", request_id="r1")
    relay = StreamRelay(
        source, observer=recorder.stream(turn), lifecycle=lifecycle, heartbeat_seconds=heartbeat
    )
    return relay, metrics, lifecycle


def ended(metrics: Metrics, outcome: str, error_type: str = "") -> float | None:
    labels = {"type": "threads.create", "outcome": outcome, "error_type": error_type}
    return metrics.registry.get_sample_value("chatkit_requests_total", labels)


def in_flight(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("chatkit_streams_in_flight", {})


async def body(relay: StreamRelay) -> list[bytes]:
    await relay.start()
    return [chunk async for chunk in relay.events()]


async def events(*chunks: bytes, pause: float = 0.0) -> AsyncIterator[bytes]:
    """The chunks, with `pause` seconds of silence between two."""
    for index, chunk in enumerate(chunks):
        if index:
            await asyncio.sleep(pause)
        yield chunk


async def test_a_normal_stream_is_completed() -> None:
    relay, metrics, lifecycle = relay_for(events(CREATED, DELTA))
    assert await body(relay) == [CREATED, DELTA]
    assert ended(metrics, "completed") == 1
    assert in_flight(metrics) == 0
    assert lifecycle.open_streams == 0
    duration = metrics.registry.get_sample_value(
        "chatkit_stream_duration_seconds_count", {"type": "threads.create", "outcome": "completed"}
    )
    assert duration == 1


async def test_an_error_event_ends_as_error_with_the_cause_noted_on_the_turn() -> None:
    turn = Turn(request_type="threads.create", request_id="r1")
    turn.fail(StoreUnavailableError("connection refused"))
    relay, metrics, _ = relay_for(events(CREATED, ERROR_EVENT), turn=turn)
    assert await body(relay) == [CREATED, ERROR_EVENT]
    assert ended(metrics, "error", "store_unavailable") == 1


async def test_an_exception_mid_stream_becomes_an_error_event() -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield CREATED
        raise RuntimeError("boom")

    relay, metrics, _ = relay_for(failing())
    chunks = await body(relay)
    last = json.loads(chunks[-1][len(b"data: ") :])
    assert last["type"] == "error"
    assert last["allow_retry"] is True
    assert ended(metrics, "error", "internal") == 1


async def test_a_busy_thread_is_rejected() -> None:
    async def busy() -> AsyncIterator[bytes]:
        raise ConversationBusy()
        yield b""

    relay, metrics, lifecycle = relay_for(busy())
    with pytest.raises(ConversationBusy):
        await relay.start()
    assert ended(metrics, "rejected", "busy") == 1
    assert in_flight(metrics) == 0
    assert lifecycle.open_streams == 0


async def test_a_client_that_leaves_cancels_the_source_and_counts_as_cancelled() -> None:
    stopped = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield DELTA
                await asyncio.sleep(0.01)
        finally:
            stopped.set()

    relay, metrics, _ = relay_for(endless())
    await relay.start()
    stream = relay.events()
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    assert stopped.is_set()
    assert ended(metrics, "cancelled") == 1
    assert in_flight(metrics) == 0


async def test_heartbeats_fill_the_silence_before_the_answer() -> None:
    relay, metrics, _ = relay_for(events(CREATED, DELTA, pause=0.5), heartbeat=0.1)
    chunks = await body(relay)
    assert chunks[0] == CREATED
    assert chunks[-1] == DELTA
    assert HEARTBEAT in chunks[1:-1]
    assert set(chunks[1:-1]) == {HEARTBEAT}
    assert ended(metrics, "completed") == 1


async def test_a_drain_that_runs_out_ends_the_stream_with_a_retry_notice() -> None:
    stopped = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        try:
            yield CREATED
            await asyncio.sleep(60)
            yield DELTA
        finally:
            stopped.set()

    relay, metrics, lifecycle = relay_for(slow())
    consumer = asyncio.create_task(body(relay))
    await asyncio.sleep(0.05)
    await lifecycle.drain(budget=0.1)
    chunks = await consumer
    notice = json.loads(chunks[-1][len(b"data: ") :])
    assert notice == {
        "type": "error",
        "code": "custom",
        "message": DRAIN_NOTICE,
        "allow_retry": True,
    }
    assert stopped.is_set()  # the SDK's generator was cancelled (and saves the partial answer)
    assert ended(metrics, "error", "draining") == 1
    assert lifecycle.open_streams == 0
