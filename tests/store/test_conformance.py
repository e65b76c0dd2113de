"""The Store contract as ChatKit's server relies on it, plus ownership and tie-safe paging."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageItem,
    FileAttachment,
    UserMessageItem,
)

from service.chatkit.errors import ConversationBusy
from service.chatkit.store.base import ChatStore
from service.request_context import RequestContext
from tests.support.builders import (
    ALICE,
    ALICE_ELSEWHERE,
    BOB,
    T0,
    assistant_message,
    thread,
    user_message,
)


async def all_pages(
    store: ChatStore, thread_id: str, order: str, limit: int, ctx: RequestContext = ALICE
) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = await store.load_thread_items(thread_id, after, limit, order, ctx)
        seen += [item.id for item in page.data]
        if not page.has_more:
            assert page.after is None
            return seen
        assert page.after == page.data[-1].id
        after = page.after


async def test_thread_round_trip_and_update(store: ChatStore) -> None:
    t = thread(title=None, metadata={"k": "v"})
    await store.save_thread(t, ALICE)
    loaded = await store.load_thread(t.id, ALICE)
    assert loaded == t
    t.title = "Renamed"
    await store.save_thread(t, ALICE)
    assert (await store.load_thread(t.id, ALICE)).title == "Renamed"


async def test_unknown_and_foreign_threads_are_not_found(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    for ctx in (BOB, ALICE_ELSEWHERE):
        with pytest.raises(NotFoundError):
            await store.load_thread(t.id, ctx)
        with pytest.raises(NotFoundError):
            await store.load_thread_items(t.id, None, 10, "asc", ctx)
        with pytest.raises(NotFoundError):
            await store.add_thread_item(t.id, user_message(t.id, "intrusion"), ctx)
        with pytest.raises(NotFoundError):
            await store.delete_thread(t.id, ctx)
        with pytest.raises(NotFoundError):
            await store.save_thread(thread(t.id, title="hijack"), ctx)
    with pytest.raises(NotFoundError):
        await store.load_thread("thr_missing", ALICE)
    assert (await store.load_thread(t.id, ALICE)).title is None


async def test_thread_list_is_per_user_and_pages_across_equal_timestamps(store: ChatStore) -> None:
    mine = [thread(created_at=T0) for _ in range(7)]
    for t in mine:
        await store.save_thread(t, ALICE)
    await store.save_thread(thread(created_at=T0), BOB)
    for order in ("asc", "desc"):
        seen: list[str] = []
        after = None
        while True:
            page = await store.load_threads(3, after, order, ALICE)
            seen += [t.id for t in page.data]
            if not page.has_more:
                break
            after = page.after
        assert sorted(seen) == sorted(t.id for t in mine)
        assert len(seen) == len(set(seen))
    desc = await store.load_threads(100, None, "desc", ALICE)
    asc = await store.load_threads(100, None, "asc", ALICE)
    assert [t.id for t in desc.data] == [t.id for t in reversed(asc.data)]


async def test_threads_order_by_creation(store: ChatStore) -> None:
    older, newer = thread(created_at=T0), thread(created_at=T0 + timedelta(seconds=5))
    await store.save_thread(newer, ALICE)
    await store.save_thread(older, ALICE)
    page = await store.load_threads(10, None, "desc", ALICE)
    assert [t.id for t in page.data] == [newer.id, older.id]


async def test_items_page_across_equal_timestamps_without_skips_or_repeats(
    store: ChatStore,
) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    # Same created_at for all, ids in reverse-lexical order: neither may drive the order.
    ids = [f"msg_{chr(ord('z') - i)}" for i in range(11)]
    for item_id in ids:
        await store.add_thread_item(t.id, user_message(t.id, item_id, T0, item_id), ALICE)
    for limit in (1, 2, 3, 5, 20):
        assert await all_pages(store, t.id, "asc", limit) == ids
        assert await all_pages(store, t.id, "desc", limit) == list(reversed(ids))


async def test_items_order_by_created_at_then_insertion(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    late = user_message(t.id, "late", T0 + timedelta(seconds=2))
    early = user_message(t.id, "early", T0)
    middle = assistant_message(t.id, "middle", T0 + timedelta(seconds=1))
    for item in (late, early, middle):
        await store.add_thread_item(t.id, item, ALICE)
    page = await store.load_thread_items(t.id, None, 10, "asc", ALICE)
    assert [i.id for i in page.data] == [early.id, middle.id, late.id]
    newest_two = await store.load_thread_items(t.id, None, 2, "desc", ALICE)
    assert [i.id for i in newest_two.data] == [late.id, middle.id]
    assert newest_two.has_more
    assert newest_two.after == middle.id


async def test_item_upsert_load_and_delete(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    item = assistant_message(t.id, "draft")
    await store.add_thread_item(t.id, item, ALICE)
    item.content[0].text = "final"
    await store.save_item(t.id, item, ALICE)
    loaded = await store.load_item(t.id, item.id, ALICE)
    assert isinstance(loaded, AssistantMessageItem)
    assert loaded.content[0].text == "final"
    page = await store.load_thread_items(t.id, None, 10, "asc", ALICE)
    assert len(page.data) == 1
    with pytest.raises(NotFoundError):
        await store.load_item(t.id, item.id, BOB)
    await store.delete_thread_item(t.id, item.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_item(t.id, item.id, ALICE)
    await store.delete_thread_item(t.id, item.id, ALICE)  # idempotent within an owned thread
    with pytest.raises(NotFoundError):
        await store.delete_thread_item(t.id, item.id, BOB)


async def test_same_item_id_in_two_threads_is_two_items(store: ChatStore) -> None:
    a, b = thread(), thread()
    await store.save_thread(a, ALICE)
    await store.save_thread(b, ALICE)
    await store.add_thread_item(a.id, user_message(a.id, "in a", item_id="msg_same"), ALICE)
    await store.add_thread_item(b.id, user_message(b.id, "in b", item_id="msg_same"), ALICE)
    loaded_a = await store.load_item(a.id, "msg_same", ALICE)
    loaded_b = await store.load_item(b.id, "msg_same", ALICE)
    assert isinstance(loaded_a, UserMessageItem)
    assert isinstance(loaded_b, UserMessageItem)
    assert loaded_a.content[0].text == "in a"
    assert loaded_b.content[0].text == "in b"


async def test_delete_thread_removes_its_items(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    await store.add_thread_item(t.id, user_message(t.id, "hello"), ALICE)
    await store.delete_thread(t.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread(t.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread_items(t.id, None, 10, "asc", ALICE)
    await store.save_thread(thread(t.id), ALICE)  # the id is free again, with no old items
    assert (await store.load_thread_items(t.id, None, 10, "asc", ALICE)).data == []


async def test_unknown_cursor_is_not_found(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread_items(t.id, "msg_nope", 10, "asc", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_threads(10, "thr_nope", "desc", ALICE)


async def test_attachments_are_upserted_and_owned(store: ChatStore) -> None:
    attachment = FileAttachment(id="atc_1", name="a.pdf", mime_type="application/pdf")
    await store.save_attachment(attachment, ALICE)
    assert await store.load_attachment("atc_1", ALICE) == attachment
    t = thread()
    await store.save_thread(t, ALICE)
    attached = attachment.model_copy(update={"thread_id": t.id})
    await store.save_attachment(attached, ALICE)
    assert (await store.load_attachment("atc_1", ALICE)).thread_id == t.id
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_1", BOB)
    with pytest.raises(NotFoundError):
        await store.save_attachment(attachment, BOB)
    with pytest.raises(NotFoundError):
        await store.delete_attachment("atc_1", BOB)
    await store.delete_attachment("atc_1", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_1", ALICE)


async def test_feedback_is_recorded_once_per_user_and_item(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    answer = assistant_message(t.id, "42")
    await store.add_thread_item(t.id, answer, ALICE)
    await store.save_feedback(t.id, [answer.id], "negative", ALICE)
    await store.save_feedback(t.id, [answer.id], "positive", ALICE)
    records = await store.load_feedback(thread_id=t.id)
    assert [(r.item_id, r.kind, r.user_id, r.tenant_id) for r in records] == [
        (answer.id, "positive", "alice", "acme")
    ]
    with pytest.raises(NotFoundError):
        await store.save_feedback(t.id, [answer.id], "negative", BOB)
    with pytest.raises(NotFoundError):
        await store.save_feedback(t.id, ["msg_missing"], "negative", ALICE)
    assert len(await store.load_feedback(tenant_id="acme")) == 1
    assert await store.load_feedback(tenant_id="globex") == []


async def test_generated_ids_are_long_and_unique(store: ChatStore) -> None:
    t = thread()
    ids = {store.generate_item_id("message", t, ALICE) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("msg_") and len(i) >= 36 for i in ids)
    assert store.generate_thread_id(ALICE).startswith("thr_")


async def test_migrate_is_idempotent(store: ChatStore) -> None:
    status = await store.migrate()
    assert status.applied == ()
    assert status.current == status.latest


async def test_turn_lock_serialises_turns_on_one_thread(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    order: list[str] = []

    async def turn(name: str) -> None:
        async with store.turn_lock(t.id, ALICE):
            order.append(f"{name} start")
            await asyncio.sleep(0.05)
            order.append(f"{name} end")

    await asyncio.gather(turn("a"), turn("b"))
    assert order in (
        ["a start", "a end", "b start", "b end"],
        ["b start", "b end", "a start", "a end"],
    )


async def test_turn_lock_gives_up_with_busy(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    store.turn_lock_timeout = 0.2
    async with store.turn_lock(t.id, ALICE):
        with pytest.raises(ConversationBusy):
            async with store.turn_lock(t.id, ALICE):
                pass
    async with store.turn_lock(t.id, ALICE):  # free again
        pass


async def test_text_with_nul_characters_round_trips(store: ChatStore) -> None:
    t = thread(title="a\x00b")
    await store.save_thread(t, ALICE)
    item = user_message(t.id, "pasted \x00 binary \u2028 text")
    await store.add_thread_item(t.id, item, ALICE)
    assert (await store.load_thread(t.id, ALICE)).title == "a\x00b"
    assert await store.load_item(t.id, item.id, ALICE) == item


async def test_identifiers_that_cannot_exist_are_not_found(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread("thr_\x00", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_item(t.id, "msg_\x00", ALICE)
    with pytest.raises(NotFoundError):
        await store.load_thread_items(t.id, "msg_\x00", 10, "asc", ALICE)


async def test_writes_to_a_deleted_thread_are_not_found(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    await store.delete_thread(t.id, ALICE)
    with pytest.raises(NotFoundError):
        await store.add_thread_item(t.id, user_message(t.id, "late"), ALICE)
    with pytest.raises(NotFoundError):
        await store.delete_thread_item(t.id, "msg_any", ALICE)
    with pytest.raises(NotFoundError):
        await store.delete_thread(t.id, ALICE)


async def test_feedback_naming_an_item_twice_is_one_row(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    answer = assistant_message(t.id, "42")
    await store.add_thread_item(t.id, answer, ALICE)
    await store.save_feedback(t.id, [answer.id, answer.id], "positive", ALICE)
    assert [r.item_id for r in await store.load_feedback(thread_id=t.id)] == [answer.id]


async def test_a_failed_feedback_write_records_nothing(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    answer = assistant_message(t.id, "42")
    await store.add_thread_item(t.id, answer, ALICE)
    with pytest.raises(NotFoundError):
        await store.save_feedback(t.id, [answer.id, "msg_missing"], "negative", ALICE)
    assert await store.load_feedback(thread_id=t.id) == []


async def test_items_of_a_thread_stay_in_order_across_many_pages(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    ids = []
    for n in range(30):
        item = user_message(t.id, str(n), T0 + timedelta(milliseconds=n // 3))
        ids.append(item.id)
        await store.add_thread_item(t.id, item, ALICE)
    assert await all_pages(store, t.id, "asc", 7) == ids
    assert await all_pages(store, t.id, "desc", 4) == list(reversed(ids))


async def test_feedback_filters_by_time(store: ChatStore) -> None:
    t = thread()
    await store.save_thread(t, ALICE)
    answer = assistant_message(t.id, "42")
    await store.add_thread_item(t.id, answer, ALICE)
    await store.save_feedback(t.id, [answer.id], "positive", ALICE)
    assert len(await store.load_feedback(since=datetime.now(UTC) - timedelta(minutes=1))) == 1
    assert await store.load_feedback(since=datetime.now(UTC) + timedelta(minutes=1)) == []
