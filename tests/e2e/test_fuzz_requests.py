"""Property-based: arbitrary bodies over every ChatKit request type (deep nesting, huge numbers,
lone surrogates, NULs, oversized strings, wrong types) never make a 500, an ERROR log line or a
server-error count. Runs against the real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerFactory, provider_env
from tests.e2e.test_hostile_input import assert_clean_log, error_count
from tests.support.mock_llm import MockLLM
from tests.support.server import ServerProcess

REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    "threads.create": ("input",),
    "threads.add_user_message": ("thread_id", "input"),
    "threads.add_client_tool_output": ("thread_id", "result"),
    "threads.add_structured_input": ("thread_id", "item_id", "submission"),
    "threads.retry_after_item": ("thread_id", "item_id"),
    "threads.custom_action": ("thread_id", "item_id", "action"),
    "threads.sync_custom_action": ("thread_id", "item_id", "action"),
    "threads.get_by_id": ("thread_id",),
    "threads.list": ("limit", "order", "after"),
    "items.list": ("thread_id", "limit", "order", "after"),
    "items.feedback": ("thread_id", "item_ids", "kind"),
    "threads.update": ("thread_id", "title"),
    "threads.delete": ("thread_id",),
    "attachments.create": ("name", "size", "mime_type"),
    "attachments.delete": ("attachment_id",),
    "input.transcribe": ("audio_base64", "mime_type"),
}
HUGE_NUMBER = "__huge_number__"


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(["\ud800", "a\udc00b", "x\x00y", "\ufeff", "thr_" + "9" * 300]),
        st.integers(10_000, 300_000).map(lambda n: "x" * n),
    )


NESTED = "__nested__"


def nested(value: Any, depth: int) -> str:
    """A placeholder for `value` inside `depth` lists, written out by `bodies()`: encoding it
    with json.dumps recurses once per level and can hit the recursion limit in the test."""
    return f"{NESTED}{depth}:{json.dumps(value).encode().hex()}"


def _write_nested(body: str) -> str:
    prefix = json.dumps(NESTED)[:-1]
    while (start := body.find(prefix)) != -1:
        end = body.index('"', start + len(prefix))  # the placeholder's text is hex: no quote
        depth, encoded = body[start + len(prefix) : end].split(":", 1)
        value = bytes.fromhex(encoded).decode()
        body = body[:start] + "[" * int(depth) + value + "]" * int(depth) + body[end + 1 :]
    return body


scalar = st.one_of(
    hostile_text(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.just(HUGE_NUMBER),
)
value = st.one_of(
    scalar,
    st.lists(scalar, max_size=3),
    st.dictionaries(st.sampled_from(["content", "type", "text", "attachments"]), scalar),
    st.builds(
        lambda text: {"content": [{"type": "input_text", "text": text}], "attachments": []},
        hostile_text(),
    ),
    st.tuples(scalar, st.integers(150, 3000)).map(lambda pair: nested(*pair)),
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    request_type = draw(st.sampled_from([*REQUEST_FIELDS, "threads.unknown", ""]))
    fields = REQUEST_FIELDS.get(request_type, ("thread_id",))
    params = {name: draw(value) for name in draw(st.lists(st.sampled_from(fields), unique=True))}
    body = _write_nested(json.dumps({"type": request_type, "params": params}))
    return body.replace(json.dumps(HUGE_NUMBER), "9" * draw(st.integers(4301, 6000))).encode()


@pytest.fixture(scope="module")
def server(server_factory: ServerFactory, mock_llm: MockLLM) -> ServerProcess:
    return server_factory({**provider_env("openai", mock_llm), "TITLE_GENERATION": "false"})


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    headers = {"X-User-Id": "fuzzer", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        yield client


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies())
def test_no_body_makes_a_server_error(http: httpx.Client, body: bytes) -> None:
    response = http.post("/chatkit/api", content=body)
    assert response.status_code < 500, (body[:300], response.text[:300])
    if response.status_code >= 400:
        message = response.json()["error"]["message"]
        assert "\n" not in message and len(message) <= 500


def test_and_nothing_was_logged_or_counted_as_a_server_error(server: ServerProcess) -> None:
    assert_clean_log(server)
    assert error_count(server) == 0
