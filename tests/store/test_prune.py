"""Retention: `prune` deletes exactly the threads inactive since before the cutoff, with their
rows, on every store; batched, idempotent, with the attachment hook after each commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from chatkit.store import NotFoundError
from chatkit.types import FileAttachment, ThreadMetadata

from service.chatkit.store.base import ChatStore, PrunedAttachment
from service.chatkit.store.retention import parse_age
from service.request_context import RequestContext
from tests.support.builders import ALICE, BOB, assistant_message, thread, user_message

CAROL_ELSEWHERE = RequestContext(user_id="carol", tenant_id="globex")


@dataclass
class Seeded:
    thread: ThreadMetadata
    owner: RequestContext
    item_ids: list[str] = field(default_factory=list)
    rated_id: str | None = None
    attachment_id: str | None = None


async def seed(store: ChatStore, owner: RequestContext, label: str, items: int = 3) -> Seeded:
    t = thread(title=label)
    await store.save_thread(t, owner)
    seeded = Seeded(t, owner)
    for n in range(items):
        item = (user_message if n % 2 == 0 else assistant_message)(t.id, f"{label} {n}")
        await store.add_thread_item(t.id, item, owner)
        seeded.item_ids.append(item.id)
    seeded.rated_id = seeded.item_ids[-1]
    await store.save_feedback(t.id, [seeded.rated_id], "positive", owner)
    attachment = FileAttachment(
        id=f"atc_{t.id}", name=f"{label}.pdf", mime_type="application/pdf", thread_id=t.id
    )
    await store.save_attachment(attachment, owner)
    seeded.attachment_id = attachment.id
    return seeded


async def a_moment_later() -> datetime:
    """A cutoff strictly after everything written so far and before everything written next."""
    await asyncio.sleep(0.002)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.002)
    return moment


async def assert_gone(store: ChatStore, seeded: Seeded) -> None:
    with pytest.raises(NotFoundError):
        await store.load_thread(seeded.thread.id, seeded.owner)
    assert seeded.attachment_id is not None
    with pytest.raises(NotFoundError):
        await store.load_attachment(seeded.attachment_id, seeded.owner)
    assert await store.load_feedback(thread_id=seeded.thread.id) == []


async def assert_intact(store: ChatStore, seeded: Seeded) -> None:
    assert await store.load_thread(seeded.thread.id, seeded.owner) == seeded.thread
    page = await store.load_thread_items(seeded.thread.id, None, 100, "asc", seeded.owner)
    assert [item.id for item in page.data] == seeded.item_ids
    assert seeded.attachment_id is not None
    await store.load_attachment(seeded.attachment_id, seeded.owner)
    feedback = await store.load_feedback(thread_id=seeded.thread.id)
    assert [r.item_id for r in feedback] == [seeded.rated_id]


async def test_prune_removes_exactly_the_inactive_threads_and_their_rows(
    store: ChatStore,
) -> None:
    old = [
        await seed(store, ALICE, "alice old 1"),
        await seed(store, ALICE, "alice old 2", items=5),
        await seed(store, BOB, "bob old"),
        await seed(store, CAROL_ELSEWHERE, "carol old", items=1),
    ]
    revived = await seed(store, ALICE, "alice revived")
    unattached_old = FileAttachment(id="atc_unsent_old", name="u.pdf", mime_type="text/plain")
    await store.save_attachment(unattached_old, BOB)
    cutoff = await a_moment_later()
    recent = [await seed(store, ALICE, "alice recent"), await seed(store, BOB, "bob recent")]
    unattached_recent = FileAttachment(id="atc_unsent_new", name="n.pdf", mime_type="text/plain")
    await store.save_attachment(unattached_recent, ALICE)
    # Activity after the cutoff keeps an old thread.
    late = assistant_message(revived.thread.id, "still here")
    await store.add_thread_item(revived.thread.id, late, ALICE)
    revived.item_ids.append(late.id)

    report = await store.prune(cutoff)

    assert report.threads == 4
    assert report.items == 3 + 5 + 3 + 1
    assert report.feedback == 4
    assert sorted(report.attachment_ids) == sorted(
        [s.attachment_id for s in old if s.attachment_id] + ["atc_unsent_old"]
    )
    for seeded in old:
        await assert_gone(store, seeded)
    for seeded in (revived, *recent):
        await assert_intact(store, seeded)
    with pytest.raises(NotFoundError):
        await store.load_attachment("atc_unsent_old", BOB)
    assert await store.load_attachment("atc_unsent_new", ALICE) == unattached_recent
    alice_threads = await store.load_threads(100, None, "desc", ALICE)
    assert [t.id for t in alice_threads.data] == [recent[0].thread.id, revived.thread.id]

    again = await store.prune(cutoff)
    assert (again.threads, again.items, again.feedback, again.attachment_ids) == (0, 0, 0, ())
    assert again.batches == 0


async def test_prune_works_in_batches_and_calls_the_hook_after_each_commit(
    store: ChatStore,
) -> None:
    old = [await seed(store, ALICE, f"old {n}", items=2) for n in range(5)]
    cutoff = await a_moment_later()
    calls: list[list[str]] = []

    async def delete_bytes(attachments: Sequence[PrunedAttachment]) -> None:
        calls.append([a.attachment.id for a in attachments])
        for pruned in attachments:
            assert (pruned.tenant_id, pruned.user_id) == (ALICE.tenant_id, ALICE.user_id)
            # The records are already gone when the bytes are deleted.
            with pytest.raises(NotFoundError):
                await store.load_attachment(pruned.attachment.id, ALICE)

    report = await store.prune(cutoff, batch_size=2, on_attachments=delete_bytes)

    assert report.threads == 5
    assert report.items == 10
    assert report.batches == 3
    assert [len(call) for call in calls] == [2, 2, 1]
    assert sorted(i for call in calls for i in call) == sorted(
        s.attachment_id for s in old if s.attachment_id
    )


async def test_a_failing_hook_stops_the_run_and_a_rerun_finishes_it(store: ChatStore) -> None:
    old = [await seed(store, ALICE, f"old {n}", items=1) for n in range(3)]
    cutoff = await a_moment_later()

    async def broken(attachments: Sequence[PrunedAttachment]) -> None:
        raise RuntimeError("bucket unavailable")

    with pytest.raises(RuntimeError, match="bucket unavailable"):
        await store.prune(cutoff, batch_size=1, on_attachments=broken)
    remaining = await store.load_threads(10, None, "asc", ALICE)
    assert len(remaining.data) == 2  # the first batch was committed, the rest untouched

    report = await store.prune(cutoff, batch_size=1)
    assert report.threads == 2
    for seeded in old:
        await assert_gone(store, seeded)


async def test_prune_with_nothing_old_changes_nothing(store: ChatStore) -> None:
    seeded = await seed(store, ALICE, "fresh")
    report = await store.prune(datetime.now(UTC) - timedelta(days=30))
    assert report.threads == 0
    assert report.batches == 0
    await assert_intact(store, seeded)


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        (" 1.5D ", timedelta(days=1.5)),
    ],
)
def test_ages_parse(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "30s", "1w", "3 days"])
def test_bad_ages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="age"):
        parse_age(text)
