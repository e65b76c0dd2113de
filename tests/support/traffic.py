"""A known mix of ChatKit traffic, and the exact series it must leave in /metrics."""

from __future__ import annotations

import json

import httpx

from tests.support.client import ChatKitClient, user_input
from tests.support.mock_llm import MockLLM, Reply
from tests.support.scrape import Labels, Samples, labels, series, without

UNKNOWN_THREAD = "thr_0000000000000000000000000000dead"


async def drive_known_traffic(url: str, mock: MockLLM) -> None:
    """Each request on a fresh connection, so that several workers share the work.

    - a turn answered in three words;
    - a turn the provider fails (HTTP 500);
    - a turn where the model calls `current_datetime`, then answers in three words;
    - a turn the client abandons after a few words (the stop button);
    - items.list; a body that is not JSON; threads.get_by_id of an unknown thread; GET /nope.
    """
    mock.enqueue(Reply(text="one two three"))
    async with ChatKitClient(url, user="metrics-user") as client:
        first = await client.create_thread("Count to three")
    assert first.errors == []
    assert first.assistant_text() == "one two three"

    mock.enqueue(Reply(status=500))
    async with ChatKitClient(url, user="metrics-user") as client:
        failed = await client.add_message(first.thread_id, "Again")
    assert len(failed.errors) == 1

    mock.enqueue(
        Reply(tool_call=("current_datetime", {"timezone": "UTC"})), Reply(text="It is noon.")
    )
    async with ChatKitClient(url, user="metrics-user") as client:
        tooled = await client.create_thread("What time is it?")
    assert tooled.errors == []
    assert tooled.assistant_text() == "It is noon."

    mock.enqueue(Reply(text=" ".join(f"w{n}" for n in range(100)), token_delay=0.05))
    async with ChatKitClient(url, user="metrics-user") as client:
        body = json.dumps({"type": "threads.create", "params": {"input": user_input("Go on")}})
        async with client.http.stream("POST", "/chatkit/api", content=body) as response:
            deltas = 0
            async for line in response.aiter_lines():
                deltas += "text_delta" in line
                if deltas == 3:
                    break  # the connection closes

    async with ChatKitClient(url, user="metrics-user") as client:
        await client.list_items(first.thread_id)
    async with ChatKitClient(url, user="metrics-user") as client:
        assert (await client.post(b"not json")).status_code == 400
    async with ChatKitClient(url, user="metrics-user") as client:
        missing = await client.call("threads.get_by_id", thread_id=UNKNOWN_THREAD)
        assert missing.status_code == 404
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/nope")).status_code == 404


def expected_chatkit_requests(extra_lists: int = 0) -> dict[Labels, float]:
    expected = {
        labels(type="threads.create", outcome="completed", error_type=""): 2.0,
        labels(type="threads.create", outcome="cancelled", error_type=""): 1.0,
        labels(
            type="threads.add_user_message", outcome="error", error_type="provider_unavailable"
        ): 1.0,
        labels(type="items.list", outcome="ok", error_type=""): 1.0,
        labels(type="invalid", outcome="rejected", error_type="invalid_request"): 1.0,
        labels(type="threads.get_by_id", outcome="rejected", error_type="not_found"): 1.0,
    }
    if extra_lists:
        expected[labels(type="threads.list", outcome="ok", error_type="")] = float(extra_lists)
    return expected


def app_http_requests(samples: Samples) -> dict[Labels, float]:
    """HTTP counts of the app's own routes (probes and scrapes vary with timing)."""
    counts = series(samples, "chatkit_http_requests_total")
    return without(without(counts, route="/readyz"), route="/metrics")


def expected_http_requests(extra_lists: int = 0) -> dict[Labels, float]:
    return {
        labels(route="/chatkit/api", method="POST", status="200"): 5.0 + extra_lists,
        labels(route="/chatkit/api", method="POST", status="400"): 1.0,
        labels(route="/chatkit/api", method="POST", status="404"): 1.0,
        labels(route="unmatched", method="GET", status="404"): 1.0,
    }


def assert_known_traffic(samples: Samples, provider: str, model: str, extra_lists: int = 0) -> None:
    assert series(samples, "chatkit_requests_total") == expected_chatkit_requests(extra_lists)
    assert app_http_requests(samples) == expected_http_requests(extra_lists)
    assert series(samples, "chatkit_http_request_duration_seconds_count", route="/chatkit/api") == {
        labels(route="/chatkit/api", method="POST"): 7.0 + extra_lists
    }

    assert series(samples, "chatkit_stream_duration_seconds_count") == {
        labels(type="threads.create", outcome="completed"): 2.0,
        labels(type="threads.create", outcome="cancelled"): 1.0,
        labels(type="threads.add_user_message", outcome="error"): 1.0,
    }
    assert series(samples, "chatkit_streams_in_flight") == {(): 0.0}

    gen_ai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": provider,
        "gen_ai_request_model": model,
    }
    # Three successful calls (plain answer, tool call, answer after the tool), one failure, one
    # stopped when the client left (started streaming, so it has a first chunk; no usage).
    assert series(samples, "gen_ai_client_operation_duration_seconds_count") == {
        labels(**gen_ai, error_type=""): 3.0,
        labels(**gen_ai, error_type="provider_unavailable"): 1.0,
        labels(**gen_ai, error_type="cancelled"): 1.0,
    }
    assert series(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_count") == {
        labels(**gen_ai): 4.0
    }
    # The mock reports 11 input tokens per completed call, and one output token per word:
    # 3 + 5 + 3 (its tool-call reply counts the words of its default text, "Hello from the mock
    # model.").
    assert series(samples, "gen_ai_client_token_usage_count") == {
        labels(**gen_ai, gen_ai_token_type="input"): 3.0,
        labels(**gen_ai, gen_ai_token_type="output"): 3.0,
    }
    assert series(samples, "gen_ai_client_token_usage_sum") == {
        labels(**gen_ai, gen_ai_token_type="input"): 33.0,
        labels(**gen_ai, gen_ai_token_type="output"): 11.0,
    }
    token_buckets = series(samples, "gen_ai_client_token_usage_bucket", gen_ai_token_type="input")
    assert token_buckets[labels(**gen_ai, gen_ai_token_type="input", le="4.0")] == 0.0
    assert token_buckets[labels(**gen_ai, gen_ai_token_type="input", le="16.0")] == 3.0
    assert series(samples, "chatkit_model_errors_total") == {
        labels(
            gen_ai_provider_name=provider,
            gen_ai_request_model=model,
            error_type="provider_unavailable",
        ): 1.0
    }

    assert series(samples, "chatkit_tool_calls_total") == {
        labels(tool="current_datetime", outcome="ok"): 1.0
    }
    durations = series(samples, "chatkit_tool_call_duration_seconds_count")
    # Every offered tool has its series from the start; only the one called has a count.
    assert durations[labels(tool="current_datetime")] == 1.0
    assert {key: value for key, value in durations.items() if value} == {
        labels(tool="current_datetime"): 1.0
    }
    assert labels(tool="create_support_ticket") in durations

    stores = {
        dict(key)["operation"]: value
        for key, value in series(samples, "chatkit_store_operation_duration_seconds_count").items()
    }
    for operation in ("save_thread", "load_thread", "load_thread_items", "add_thread_item"):
        assert stores[operation] >= 1, operation
    assert stores["delete_thread"] == 0

    assert series(samples, "chatkit_build_info") == {
        labels(version="0.1.0", provider=provider, model=model): 1.0
    }
    assert series(samples, "chatkit_draining") == {(): 0.0}
