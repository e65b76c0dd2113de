"""Text that is valid JSON but not valid Unicode (lone surrogates), on both stores.

A browser that cuts a string inside an emoji sends one. In an id it names nothing (not an
outage); in user text it is repaired to U+FFFD on write; and rows an older release wrote with
one still load, repaired, instead of making the user's history fail until deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest
from chatkit.store import NotFoundError
from chatkit.types import FileAttachment, UserMessageItem
from pydantic import ValidationError

from service.chatkit.store.base import ChatStore
from service.chatkit.store.postgres import PostgresStore
from service.chatkit.store.sqlite import SQLiteStore
from tests.support.builders import ALICE, thread, user_message
from tests.support.postgres import query, scratch_schema

LONE = "x\ud800y"
REPAIRED = "x\ufffdy"


def text_of(item: object) -> str:
    assert isinstance(item, UserMessageItem)
    return "".join(part.text for part in item.content)


async def test_ids_that_cannot_be_encoded_are_not_found(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    await store.add_thread_item(t.id, user_message(t.id, "hi"), ALICE)
    bad = f"thr_{LONE}"
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: store.load_thread(bad, ALICE),
        lambda: store.delete_thread(bad, ALICE),
        lambda: store.load_threads(10, bad, "desc", ALICE),
        lambda: store.load_thread_items(bad, None, 10, "asc", ALICE),
        lambda: store.load_thread_items(t.id, bad, 10, "asc", ALICE),
        lambda: store.load_item(t.id, bad, ALICE),
        lambda: store.load_item(bad, "msg_1", ALICE),
        lambda: store.delete_thread_item(bad, "msg_1", ALICE),
        lambda: store.add_thread_item(bad, user_message(bad, "hi"), ALICE),
        lambda: store.load_attachment(bad, ALICE),
        lambda: store.delete_attachment(bad, ALICE),
        lambda: store.save_feedback(t.id, [bad], "positive", ALICE),
    ]
    for attempt in attempts:
        with pytest.raises(NotFoundError):  # not StoreUnavailableError, not UnicodeEncodeError
            await attempt()
        await store.ping()  # and the store is still fine
    assert (await store.load_thread(t.id, ALICE)).id == t.id


async def test_lone_surrogates_in_text_are_stored_repaired(store: ChatStore) -> None:
    t = thread(title=LONE, metadata={"note": LONE})
    await store.save_thread(t, ALICE)
    item = user_message(t.id, f"before {LONE} after")
    await store.add_thread_item(t.id, item, ALICE)
    upload = FileAttachment(id="atc_lone", name=LONE, mime_type="text/plain")
    await store.save_attachment(upload, ALICE)

    loaded = await store.load_thread(t.id, ALICE)
    assert (loaded.title, loaded.metadata) == (REPAIRED, {"note": REPAIRED})
    assert [x.title for x in (await store.load_threads(10, None, "asc", ALICE)).data] == [REPAIRED]
    assert text_of(await store.load_item(t.id, item.id, ALICE)) == f"before {REPAIRED} after"
    page = await store.load_thread_items(t.id, None, 10, "asc", ALICE)
    assert [text_of(x) for x in page.data] == [f"before {REPAIRED} after"]
    assert (await store.load_attachment("atc_lone", ALICE)).name == REPAIRED
    await store.save_thread(loaded.model_copy(update={"title": f"again {LONE}"}), ALICE)
    assert (await store.load_thread(t.id, ALICE)).title == f"again {REPAIRED}"


async def test_a_surrogate_pair_split_in_two_is_joined_not_replaced(store: ChatStore) -> None:
    t = thread(title="\ud83d\ude00")  # two lone halves that make one emoji
    await store.save_thread(t, ALICE)
    assert (await store.load_thread(t.id, ALICE)).title == "\U0001f600"


@dataclass
class Raw:
    """A store and a way to write rows behind its back, as an older release did."""

    store: ChatStore
    execute: Callable[[str], Awaitable[object]]
    moment: str  # a timestamp literal of the dialect


@pytest.fixture(params=["sqlite", "postgresql"])
async def raw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Raw]:
    if request.param == "sqlite":
        path = str(tmp_path / "legacy.db")

        async def execute_sqlite(sql: str) -> None:
            async with aiosqlite.connect(path) as db:
                await db.execute(sql)
                await db.commit()

        store: ChatStore = SQLiteStore(path)
        await store.open()
        yield Raw(store, execute_sqlite, "1767268800000000")
        await store.close()
        return
    async with scratch_schema("invalid_text") as url:

        async def execute_postgres(sql: str) -> object:
            return await query(url, sql)

        store = PostgresStore(url, max_size=2)
        await store.open()
        yield Raw(store, execute_postgres, "now()")
        await store.close()


async def test_rows_written_with_lone_surrogates_still_load(raw: Raw) -> None:
    # What release 1 wrote for a title with a lone surrogate: json.dumps escapes it.
    t = thread("thr_legacy", title="placeholder")
    document = t.model_dump_json().replace("placeholder", "x\\ud800y")
    await raw.execute(
        "INSERT INTO threads (id, tenant_id, user_id, created_at, updated_at, data) VALUES"
        f" ('thr_legacy', 'acme', 'alice', {raw.moment}, {raw.moment}, '{document}')"
    )
    item = user_message(t.id, "placeholder", item_id="msg_legacy")
    item_document = item.model_dump_json().replace("placeholder", "a\\udc00b")
    await raw.execute(
        "INSERT INTO items (id, thread_id, type, created_at, data) VALUES"
        f" ('msg_legacy', 'thr_legacy', 'user_message', {raw.moment}, '{item_document}')"
    )
    store = raw.store

    loaded = await store.load_thread(t.id, ALICE)
    assert loaded.title == REPAIRED
    assert [x.title for x in (await store.load_threads(10, None, "desc", ALICE)).data] == [REPAIRED]
    page = await store.load_thread_items(t.id, None, 10, "asc", ALICE)
    assert [text_of(x) for x in page.data] == ["a\ufffdb"]
    assert text_of(await store.load_item(t.id, "msg_legacy", ALICE)) == "a\ufffdb"
    await store.add_thread_item(t.id, user_message(t.id, "next"), ALICE)
    await store.save_thread(loaded.model_copy(update={"title": "renamed"}), ALICE)
    assert (await store.load_thread(t.id, ALICE)).title == "renamed"


async def test_documents_that_are_not_json_still_fail_loudly(raw: Raw) -> None:
    # The repair is for lone surrogates only: a broken row is not silently papered over.
    await raw.execute(
        "INSERT INTO threads (id, tenant_id, user_id, created_at, updated_at, data) VALUES"
        f" ('thr_broken', 'acme', 'alice', {raw.moment}, {raw.moment}, '{{not json')"
    )
    with pytest.raises(ValidationError, match="Invalid JSON"):
        await raw.store.load_thread("thr_broken", ALICE)
