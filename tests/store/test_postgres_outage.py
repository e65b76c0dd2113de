"""The PostgreSQL store when the database goes away and comes back (through a proxy that the
test cuts: every connection drops and the port refuses, as in a database restart)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest

from service.chatkit.store.base import SchemaTooNewError, StoreUnavailableError
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.startup import StoreStartup
from tests.support.builders import ALICE, assistant_message, thread, user_message
from tests.support.postgres import query, scratch_schema, terminate, with_port
from tests.support.proxy import TcpProxy, proxy_to_test_database
from tests.support.server import free_port


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    with proxy_to_test_database() as running:
        yield running


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with scratch_schema("outage") as schema_url:
        yield schema_url


def through(proxy: TcpProxy, url: str) -> str:
    return with_port(url, proxy.port)


async def test_an_unreachable_database_is_reported_not_raised_as_a_crash(
    proxy: TcpProxy, url: str
) -> None:
    proxy.cut()
    store = PostgresStore(through(proxy, url), connect_timeout=1)
    with pytest.raises(StoreUnavailableError, match="cannot connect to the database"):
        await store.open()
    with pytest.raises(StoreUnavailableError, match="not connected to the database") as ping:
        await store.ping()
    assert "Connect" in str(ping.value) or "refused" in str(ping.value).lower()
    with pytest.raises(StoreUnavailableError) as load:
        await store.load_thread("thr_any", ALICE)
    assert load.value.message == StoreUnavailableError.USER_MESSAGE
    assert load.value.allow_retry
    with pytest.raises(StoreUnavailableError):
        async with store.turn_lock("thr_any", ALICE):
            pass


async def test_the_store_recovers_by_itself_when_the_database_returns(
    proxy: TcpProxy, url: str
) -> None:
    store = PostgresStore(through(proxy, url), min_size=2, max_size=4, connect_timeout=1)
    await store.open()
    try:
        t = thread()
        await store.save_thread(t, ALICE)
        async with store.turn_lock(t.id, ALICE):
            pass
        proxy.cut()
        with pytest.raises(StoreUnavailableError):
            await store.add_thread_item(t.id, user_message(t.id, "lost"), ALICE)
        with pytest.raises(StoreUnavailableError):
            await store.ping()
        with pytest.raises(StoreUnavailableError):
            async with store.turn_lock(t.id, ALICE):
                pass
        proxy.restore()
        await store.ping()  # no reopen: the pool replaced its broken connections
        answer = assistant_message(t.id, "back")
        await store.add_thread_item(t.id, answer, ALICE)
        assert (await store.load_thread_items(t.id, None, 10, "asc", ALICE)).data == [answer]
        async with store.turn_lock(t.id, ALICE):
            pass
    finally:
        await store.close()


async def test_killed_connections_are_replaced_without_failing_requests(url: str) -> None:
    store = PostgresStore(url, min_size=3, max_size=3)
    await store.open()
    try:
        t = thread()
        await store.save_thread(t, ALICE)
        for round_ in range(3):
            assert await terminate(url) >= 3
            # No pause: the first statement may meet a connection that died a moment ago.
            results = await asyncio.gather(
                *(store.load_thread(t.id, ALICE) for _ in range(6)), return_exceptions=True
            )
            assert all(r == t for r in results), (round_, results)
    finally:
        await store.close()


async def test_start_up_waits_for_the_database_and_then_serves(proxy: TcpProxy, url: str) -> None:
    proxy.cut()
    store = PostgresStore(through(proxy, url), connect_timeout=1)
    startup = StoreStartup(store, migrate=True, retry_max_seconds=0.4, first_retry_seconds=0.1)
    await startup.start()  # does not raise: the process serves, not ready
    try:
        await asyncio.sleep(0.5)
        assert not startup.opened.is_set()
        with pytest.raises(StoreUnavailableError, match="not connected"):
            await store.ping()
        proxy.restore()
        await asyncio.wait_for(startup.opened.wait(), 10)
        await store.ping()
        t = thread()
        await store.save_thread(t, ALICE)
    finally:
        await startup.stop()


async def test_start_up_refuses_a_newer_schema(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    await query(url, "INSERT INTO schema_migrations (version, description) VALUES (99, 'x')")
    startup = StoreStartup(PostgresStore(url), migrate=True, retry_max_seconds=1)
    with pytest.raises(SchemaTooNewError):
        await startup.start()


class LogLines(logging.Handler):
    def __init__(self, enough: int) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.enough = enough
        self.seen_enough = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if len(self.lines) >= self.enough:
            self.seen_enough.set()


async def test_connection_failures_are_logged_with_host_and_port_not_the_password() -> None:
    port = free_port()
    store = PostgresStore(
        f"postgresql://chat:s3cret-pw@127.0.0.1:{port}/chat?password=qs-s3cret", connect_timeout=1
    )
    startup = StoreStartup(store, migrate=True, retry_max_seconds=0.2, first_retry_seconds=0.05)
    handler = LogLines(enough=2)  # the start-up attempt and a retry
    logger = logging.getLogger("service.chatkit.store")
    logger.addHandler(handler)
    try:
        await startup.start()
        await asyncio.wait_for(handler.seen_enough.wait(), 30)
    finally:
        logger.removeHandler(handler)
        await startup.stop()
    logged = handler.lines
    assert all(f"127.0.0.1:{port}/chat" in line for line in logged), logged
    assert not any("s3cret" in line for line in logged), logged
