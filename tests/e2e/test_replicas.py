"""Two real server processes on one database, as two replicas behind a Service (PostgreSQL) or
two workers on one SQLite file: any process serves any request, and turns on one thread never
interleave, whichever processes they land on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import ServerFactory, provider_env
from tests.support.client import ChatKitClient
from tests.support.conversation import WORDS, items, text_of, wait_until_streaming
from tests.support.mock_llm import MockLLM, Reply
from tests.support.postgres import scratch_schema_sync
from tests.support.server import ServerProcess


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    impatient: ServerProcess
    """Shares the database; gives up on a busy thread after half a second."""


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('shared')}/chatkit.db"
        return
    with scratch_schema_sync("replicas") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(database_url: str, server_factory: ServerFactory, mock_llm: MockLLM) -> Cluster:
    env = {**provider_env("openai", mock_llm), "DATABASE_URL": database_url}
    return Cluster(
        a=server_factory(env),
        b=server_factory(env),
        impatient=server_factory({**env, "TURN_LOCK_TIMEOUT_SECONDS": "0.5"}),
    )


async def test_a_thread_started_on_one_process_continues_on_the_other(
    cluster: Cluster, mock_llm: MockLLM, user: str
) -> None:
    async with (
        ChatKitClient(cluster.a.url, user=user) as on_a,
        ChatKitClient(cluster.b.url, user=user) as on_b,
    ):
        mock_llm.enqueue(Reply(text="Noted: ostrich."))
        first = await on_a.create_thread("Remember the word ostrich.")
        assert first.errors == []
        thread_id = first.thread_id

        mock_llm.enqueue(Reply(text="You said ostrich."))
        second = await on_b.add_message(thread_id, "Which word did I say?")
        assert second.errors == []
        assert second.assistant_text() == "You said ostrich."
        sent = json.dumps(mock_llm.conversation_requests()[-1].body)
        assert "Remember the word ostrich." in sent  # B read A's turn from the shared database
        assert "Noted: ostrich." in sent

        seen_by_a, seen_by_b = await items(on_a, thread_id), await items(on_b, thread_id)
        assert seen_by_a == seen_by_b
        assert [i["type"] for i in seen_by_a] == ["user_message", "assistant_message"] * 2
        listed = await on_b.list_threads()
        assert thread_id in [t["id"] for t in listed["data"]]

    async with ChatKitClient(cluster.b.url, user=f"{user}-other") as stranger:
        response = await stranger.call("threads.get_by_id", thread_id=thread_id)
        assert response.status_code == 404


async def test_concurrent_turns_through_both_processes_never_interleave(
    cluster: Cluster, mock_llm: MockLLM, user: str
) -> None:
    async with (
        ChatKitClient(cluster.a.url, user=user) as on_a,
        ChatKitClient(cluster.b.url, user=user) as on_b,
    ):
        mock_llm.enqueue(Reply(text="Ready."))
        thread_id = (await on_a.create_thread("Let us start.")).thread_id
        mock_llm.default = Reply(text=WORDS, token_delay=0.03)  # each turn streams ~0.6 s

        clients = [on_a, on_b, on_a, on_b]
        streams = await asyncio.gather(
            *(c.add_message(thread_id, f"message {n}") for n, c in enumerate(clients))
        )

        for stream in streams:
            assert stream.errors == []
            assert stream.assistant_text() == WORDS
        stored = await items(thread_id=thread_id, client=on_a)
        assert [i["type"] for i in stored] == ["user_message", "assistant_message"] * 5
        ids = [i["id"] for i in stored]
        for stream in streams:  # each question is followed by its own answer, nothing between
            question = stream.done_items("user_message")[0]["id"]
            answer = stream.done_items("assistant_message")[0]["id"]
            assert ids.index(answer) == ids.index(question) + 1
        # Each turn's model call saw every earlier answer: the turns ran one after another.
        answers_seen = [
            json.dumps(r.body).count(WORDS) for r in mock_llm.conversation_requests()[1:]
        ]
        assert answers_seen == [0, 1, 2, 3]


async def test_a_busy_thread_answers_with_a_clear_error_event(
    cluster: Cluster, mock_llm: MockLLM, user: str
) -> None:
    async with (
        ChatKitClient(cluster.a.url, user=user) as on_a,
        ChatKitClient(cluster.impatient.url, user=user) as impatient,
    ):
        mock_llm.enqueue(Reply(text="Ready."))
        thread_id = (await on_a.create_thread("Let us start.")).thread_id
        streams_before = len(mock_llm.streams)
        mock_llm.enqueue(Reply(text=WORDS, token_delay=0.1))  # ~2 s
        slow = asyncio.create_task(on_a.add_message(thread_id, "a long answer please"))
        await wait_until_streaming(mock_llm, streams_before)

        busy = await impatient.add_message(thread_id, "me too")

        assert busy.status == 200
        assert len(busy.errors) == 1
        error = busy.errors[0]
        assert error["allow_retry"] is True
        assert "still answering another message" in error["message"]
        assert busy.done_items() == []
        finished = await slow
        assert finished.errors == []
        assert finished.assistant_text() == WORDS
        texts = [text_of(i) for i in await items(on_a, thread_id) if i["type"] == "user_message"]
        assert texts == ["Let us start.", "a long answer please"]  # the refused turn left nothing
