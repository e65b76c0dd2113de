"""The start-up warm-up: it does the first turn's one-off work without calling the provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.server import ROOT

# In a fresh interpreter: which of the first turn's lazily built validators exist before and
# after `warm_up`, and what it logged. The provider URL points nowhere: it must not be used.
PROBE = """
import asyncio, gc, json, logging, sys
import chatkit.types
from openai.types.chat import ChatCompletionChunk
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails
from service.agents.tools import DEFAULT_TOOLS
from service.warmup import warm_up

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.INFO)
# Responses events are validated by streamed_events' adapter, built when it is imported; the
# Agents SDK builds the usage details it copies on its first run.
models = {
    "responses": [InputTokensDetails, OutputTokensDetails],
    "chat_completions": [ChatCompletionChunk],
}[sys.argv[1]] + [chatkit.types.ThreadItemDoneEvent, chatkit.types.AssistantMessageItem]
before = [m.__pydantic_complete__ for m in models]
frozen_before = gc.get_freeze_count()
asyncio.run(warm_up(sys.argv[1], DEFAULT_TOOLS))
after = [m.__pydantic_complete__ for m in models]
print(json.dumps({
    "before": before,
    "after": after,
    "frozen": [frozen_before, gc.get_freeze_count()],
    "log": [(r.levelname, r.getMessage()) for r in records if r.name == "service.warmup"],
}))
"""


@pytest.mark.parametrize("api", ["responses", "chat_completions"])
def test_warm_up_builds_what_the_first_turn_would(api: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))},
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",  # not used: a call here would fail
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE, api],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not any(report["before"])  # built lazily: the first turn would pay for them
    assert all(report["after"])
    # What start-up built is out of the collector's sight (a full collection walked it all).
    assert report["frozen"][0] == 0
    assert report["frozen"][1] > 100_000
    levels = [level for level, _ in report["log"]]
    assert levels == ["INFO"], report["log"]  # "warmed up in ...", no warning
