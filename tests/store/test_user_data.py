"""Data rights on every store: `delete_user` removes every row of one user and nothing of
anyone else's (batched, idempotent, attachment hook per batch); `export_user` reads them all.
The CLI commands `delete-user` / `export-user` run them as an operator would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from chatkit.types import FileAttachment

from service.chatkit.store.base import ChatStore, PrunedAttachment
from service.request_context import RequestContext
from tests.store.test_cli import open_store, run
from tests.store.test_prune import Seeded, seed
from tests.support.builders import ALICE, ALICE_ELSEWHERE, BOB
from tests.support.postgres import scratch_schema_sync

BOB_ELSEWHERE = RequestContext(user_id="bob", tenant_id="globex")
NEIGHBOURS = (BOB, ALICE_ELSEWHERE, BOB_ELSEWHERE)
"""Same tenant other user, same user id other tenant, other user other tenant."""


async def exported(store: ChatStore, who: RequestContext) -> list[dict[str, Any]]:
    return [record async for record in store.export_user(who.tenant_id, who.user_id)]


async def seed_everyone(store: ChatStore, threads: int = 3) -> dict[RequestContext, list[Seeded]]:
    seeded: dict[RequestContext, list[Seeded]] = {}
    for who in (ALICE, *NEIGHBOURS):
        seeded[who] = [
            await seed(store, who, f"{who.tenant_id}-{who.user_id}-{n}") for n in range(threads)
        ]
        unattached = FileAttachment(
            id=f"atc_unsent_{who.tenant_id}_{who.user_id}", name="u.txt", mime_type="text/plain"
        )
        await store.save_attachment(unattached, who)
    return seeded


async def test_delete_user_leaves_no_row_of_theirs_and_touches_no_one_else(
    store: ChatStore,
) -> None:
    await seed_everyone(store)
    before = {who: await exported(store, who) for who in NEIGHBOURS}
    assert all(before.values())

    report = await store.delete_user(ALICE.tenant_id, ALICE.user_id)

    assert (report.threads, report.items, report.feedback) == (3, 9, 3)
    assert len(report.attachment_ids) == 4  # three in threads, one never sent
    assert await exported(store, ALICE) == []
    assert (await store.load_threads(100, None, "desc", ALICE)).data == []
    assert [
        r
        for r in await store.load_feedback()
        if r.user_id == ALICE.user_id and r.tenant_id == ALICE.tenant_id
    ] == []
    for who in NEIGHBOURS:
        assert await exported(store, who) == before[who], who


async def test_delete_user_is_batched_and_idempotent_and_hands_over_each_batch_of_attachments(
    store: ChatStore,
) -> None:
    await seed_everyone(store, threads=5)
    handed: list[list[PrunedAttachment]] = []

    async def delete_bytes(attachments: Sequence[PrunedAttachment]) -> None:
        handed.append(list(attachments))

    report = await store.delete_user(
        ALICE.tenant_id, ALICE.user_id, batch_size=2, on_attachments=delete_bytes
    )
    assert report.threads == 5 and report.batches == 4  # 2 + 2 + 1 threads, then 1 upload
    assert [len(batch) for batch in handed] == [2, 2, 1, 1]
    owners = {(p.tenant_id, p.user_id) for batch in handed for p in batch}
    assert owners == {(ALICE.tenant_id, ALICE.user_id)}
    assert sorted(p.attachment.id for batch in handed for p in batch) == sorted(
        report.attachment_ids
    )

    again = await store.delete_user(ALICE.tenant_id, ALICE.user_id, on_attachments=delete_bytes)
    assert again.threads == again.items == again.feedback == again.batches == 0
    assert again.attachment_ids == () and len(handed) == 4


async def test_delete_user_of_someone_unknown_deletes_nothing(store: ChatStore) -> None:
    await seed_everyone(store, threads=1)
    before = {who: await exported(store, who) for who in (ALICE, *NEIGHBOURS)}
    report = await store.delete_user("acme", "nobody")
    assert report.batches == 0
    assert {who: await exported(store, who) for who in before} == before


async def test_export_user_reads_every_row_of_the_user_and_nothing_else(store: ChatStore) -> None:
    seeded = await seed_everyone(store, threads=2)
    records = await exported(store, ALICE)
    json.dumps(records)  # JSON lines as they are

    kinds = [record["type"] for record in records]
    assert kinds == [
        "thread", "item", "item", "item",
        "thread", "item", "item", "item",
        "attachment", "attachment", "attachment",
        "feedback", "feedback",
    ]  # fmt: skip
    threads = [record["thread"]["id"] for record in records if record["type"] == "thread"]
    assert threads == [s.thread.id for s in seeded[ALICE]]
    items = [record["item"]["id"] for record in records if record["type"] == "item"]
    assert items == [item for s in seeded[ALICE] for item in s.item_ids]
    attachments = {
        record["attachment"]["id"] for record in records if record["type"] == "attachment"
    }
    assert attachments == {s.attachment_id for s in seeded[ALICE]} | {"atc_unsent_acme_alice"}
    feedback = {
        (r["thread_id"], r["item_id"], r["kind"]) for r in records if r["type"] == "feedback"
    }
    assert feedback == {(s.thread.id, s.rated_id, "positive") for s in seeded[ALICE]}
    foreign = {s.thread.id for who in NEIGHBOURS for s in seeded[who]}
    assert not foreign & {record.get("thread_id") for record in records}
    assert not foreign & set(threads)


async def test_export_pages_through_long_histories(store: ChatStore) -> None:
    seeded = [await seed(store, ALICE, f"long-{n}", items=7) for n in range(3)]
    records = [r async for r in store.export_user(ALICE.tenant_id, ALICE.user_id, page_size=2)]
    items = [record["item"]["id"] for record in records if record["type"] == "item"]
    assert items == [item for s in seeded for item in s.item_ids]


# --- the commands ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/rights.db"
        return
    with scratch_schema_sync("rights") as url:
        yield url


async def _seed_url(url: str) -> None:
    store = open_store(url)
    await store.open()
    try:
        await seed_everyone(store, threads=2)
    finally:
        await store.close()


async def _export_url(url: str, who: RequestContext) -> list[dict[str, Any]]:
    store = open_store(url)
    await store.open()
    try:
        return await exported(store, who)
    finally:
        await store.close()


def test_export_user_and_delete_user_commands(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    asyncio.run(_seed_url(database_url))
    neighbours = {who: asyncio.run(_export_url(database_url, who)) for who in NEIGHBOURS}
    env = {"DATABASE_URL": database_url}
    who = ("--tenant", ALICE.tenant_id, "--user", ALICE.user_id)

    code, out, err = run(monkeypatch, capsys, tmp_path, "export-user", *who, **env)
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == asyncio.run(_export_url(database_url, ALICE))
    assert len([line for line in lines if line["type"] == "thread"]) == 2

    code, out, err = run(
        monkeypatch, capsys, tmp_path, "delete-user", *who, "--batch-size", "1", **env
    )
    assert code == 0, err
    assert out.strip() == (
        "deleted user 'alice' of tenant 'acme': 2 thread(s), 6 item(s), 2 feedback row(s), "
        "3 attachment record(s), in 3 batch(es)"
    )
    code, out, err = run(monkeypatch, capsys, tmp_path, "delete-user", *who, **env)
    assert code == 0 and "0 thread(s)" in out  # idempotent

    code, out, err = run(monkeypatch, capsys, tmp_path, "export-user", *who, **env)
    assert code == 0 and out == ""
    assert "nothing is stored for that user" in err
    for other, before in neighbours.items():
        assert asyncio.run(_export_url(database_url, other)) == before


def test_the_commands_need_a_tenant_and_a_user(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for command in ("delete-user", "export-user"):
        with pytest.raises(SystemExit) as exit_:
            run(monkeypatch, capsys, tmp_path, command, "--tenant", "acme")
        assert exit_.value.code == 2
        assert "--user" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            run(monkeypatch, capsys, tmp_path, command, "--tenant", " ", "--user", "u")
        assert "must not be empty" in capsys.readouterr().err
