"""Store operation latency: every operation observed once, failures noted on the turn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from chatkit.store import NotFoundError, Store
from chatkit.types import ThreadMetadata

from service.chatkit.store.base import ChatStore
from service.chatkit.store.sqlite import SQLiteStore
from service.observability.metrics import Metrics
from service.observability.store_calls import STORE_OPERATIONS, meter_store
from service.request_context import RequestContext, Turn

CONTEXT = RequestContext(user_id="ann", tenant_id="acme")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ChatStore]:
    sqlite = SQLiteStore(tmp_path / "chat.db")
    await sqlite.open(migrate=True)
    yield sqlite
    await sqlite.close()


def count(metrics: Metrics, operation: str) -> float | None:
    return metrics.registry.get_sample_value(
        "chatkit_store_operation_duration_seconds_count", {"operation": operation}
    )


def test_every_operation_of_the_chatkit_store_contract_is_timed() -> None:
    assert set(Store.__abstractmethods__) <= set(STORE_OPERATIONS)


async def test_operations_are_observed_once_each(store: ChatStore) -> None:
    metrics = Metrics()
    metered = meter_store(store, metrics)
    assert metered is store  # same object: turn locks and id generation stay the store's own
    thread = ThreadMetadata(id="thr_1", created_at=datetime.now())
    await metered.save_thread(thread, CONTEXT)
    await metered.load_thread("thr_1", CONTEXT)
    await metered.load_thread("thr_1", CONTEXT)
    await metered.ping()
    assert count(metrics, "save_thread") == 1
    assert count(metrics, "load_thread") == 2
    assert count(metrics, "ping") == 1
    assert count(metrics, "delete_thread") == 0  # every operation's series exists from the start


async def test_a_failure_is_recorded_on_the_turn_and_a_not_found_answer_is_not(
    store: ChatStore,
) -> None:
    metered = meter_store(store, Metrics())
    turn = Turn(request_type="threads.add_user_message", request_id="r1")
    context = replace(CONTEXT, turn=turn)
    with pytest.raises(NotFoundError):
        await metered.load_thread("thr_missing", context)
    assert turn.error is None
    await metered.close()  # now every query fails
    with pytest.raises(Exception) as failed:  # noqa: PT011  (whatever the driver raises)
        await metered.load_thread("thr_missing", context=context)
    assert turn.error is failed.value


class SelfCallingStore(SQLiteStore):
    async def load_thread(self, thread_id: str, context: RequestContext) -> ThreadMetadata:
        await self.ping()  # a store calling itself: part of this operation
        return await super().load_thread(thread_id, context)


async def test_a_store_calling_itself_is_observed_as_the_outer_operation(tmp_path: Path) -> None:
    store = SelfCallingStore(tmp_path / "chat.db")
    await store.open(migrate=True)
    try:
        metrics = Metrics()
        metered = meter_store(store, metrics)
        await metered.save_thread(ThreadMetadata(id="thr_1", created_at=datetime.now()), CONTEXT)
        await metered.load_thread("thr_1", CONTEXT)
        assert count(metrics, "load_thread") == 1
        assert count(metrics, "ping") == 0
    finally:
        await store.close()
