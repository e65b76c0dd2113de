"""Log lines: the fixed JSON fields, the request's fields, nothing else, and no secrets."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from service.observability.context import RequestLog, bind_request, unbind_request
from service.observability.logging import (
    AGENTS_SDK_DATA_SWITCHES,
    PROMPT_BEARING_LOGGERS,
    JsonLineFormatter,
    RequestFieldsFilter,
    TextLineFormatter,
    _ServiceHandler,
    configure_logging,
)
from service.observability.redaction import Redactor, settings_secrets
from service.settings import Settings
from tests.support.server import ROOT

KEY = "sk-proj-abcdefghijklmnop0123"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("service.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def filtered(made: logging.LogRecord) -> logging.LogRecord:
    RequestFieldsFilter().filter(made)
    return made


def test_a_json_line_has_the_fixed_fields_and_the_request_fields() -> None:
    log = RequestLog(
        request_id="req-1", request_type="threads.create", tenant_id="acme", user_hash="ab12"
    )
    token = bind_request(log)
    try:
        made = filtered(record("turn %s ended", "t1", outcome="completed", duration_ms=12.5))
    finally:
        unbind_request(token)
    line = json.loads(JsonLineFormatter(Redactor()).format(made))
    timestamp = line.pop("timestamp")
    assert timestamp.endswith("+00:00")
    assert "T" in timestamp
    assert line == {
        "level": "WARNING",
        "logger": "service.test",
        "message": "turn t1 ended",
        "request_id": "req-1",
        "request_type": "threads.create",
        "tenant_id": "acme",
        "user_hash": "ab12",
        "outcome": "completed",
        "duration_ms": 12.5,
    }


def test_only_known_fields_are_written_never_the_args_or_arbitrary_extras() -> None:
    scope = {"headers": [(b"authorization", b"Bearer abc")], "env": {"OPENAI_API_KEY": KEY}}
    made = record("access", scope, body="the whole prompt", status=200)
    line = json.loads(JsonLineFormatter(Redactor()).format(made))
    assert set(line) == {"timestamp", "level", "logger", "message", "status"}


def test_exceptions_are_kept_with_their_traceback() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        made = logging.LogRecord(
            "service.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    line = json.loads(JsonLineFormatter(Redactor()).format(made))
    assert "ValueError: bad value" in line["exc_info"]


def test_key_like_values_and_configured_secrets_are_redacted_in_every_field() -> None:
    redact = Redactor(["hunter2-db-password", 'pa"ss\\word'])
    made = record(
        "calling with %s and Bearer eyJhbGciOiJIUzI1NiJ9.payload and AIzaSyA0123456789abcdef",
        KEY,
        error_type="hunter2-db-password",
    )
    made.exc_text = 'Traceback: password=pa"ss\\word'
    for formatter in (JsonLineFormatter(redact), TextLineFormatter(redact)):
        text = formatter.format(made)
        for secret in (KEY, "eyJhbGci", "AIzaSyA0123456789", "hunter2", "ss\\word", 'ss\\"word'):
            assert secret not in text
        assert "[redacted]" in text


def test_settings_secrets_cover_keys_and_url_passwords() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_api_key="sk-test-key-123456",
        database_url="postgresql://app:s3cret-pw@db/chat",
    )
    assert set(settings_secrets(settings)) == {"sk-test-key-123456", "s3cret-pw"}


def test_the_text_format_is_one_readable_line_with_the_fields() -> None:
    made = filtered(record("hello %s", "world", request_id="req-9", outcome="ok"))
    text = TextLineFormatter(Redactor()).format(made)
    assert text.endswith("WARNING service.test: hello world [request_id=req-9 outcome=ok]")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 ", text)


@pytest.fixture
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in PROMPT_BEARING_LOGGERS}
    for name in AGENTS_SDK_DATA_SWITCHES:
        monkeypatch.delenv(name, raising=False)  # restored afterwards by monkeypatch
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_logging")
def test_debug_level_keeps_prompt_bearing_libraries_at_info_unless_log_prompts() -> None:
    configure_logging(Settings(_env_file=None, log_level="DEBUG"))  # type: ignore[call-arg]
    assert logging.getLogger("service.chatkit").isEnabledFor(logging.DEBUG)
    for name in ("openai.agents", "openai._base_client", "httpcore2.http11", "aiosqlite"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert [os.environ[name] for name in AGENTS_SDK_DATA_SWITCHES] == ["1", "1"]

    configure_logging(Settings(_env_file=None, log_level="DEBUG", log_prompts=True))  # type: ignore[call-arg]
    for name in ("openai.agents", "aiosqlite"):
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert [os.environ[name] for name in AGENTS_SDK_DATA_SWITCHES] == ["0", "0"]
    assert len([h for h in logging.getLogger().handlers if isinstance(h, _ServiceHandler)]) == 1


@pytest.mark.usefixtures("restore_logging")
def test_a_quieter_level_is_not_loosened_for_libraries() -> None:
    configure_logging(Settings(_env_file=None, log_level="WARNING"))  # type: ignore[call-arg]
    assert not logging.getLogger("openai").isEnabledFor(logging.INFO)


# Configures logging the way the CLI does, then makes the Agents SDK log a model call and a tool
# call at DEBUG. The SDK's loggers are opened to DEBUG by hand so that only the SDK's own switches
# decide whether prompt and tool data appear (LOG_PROMPTS also holds those loggers at INFO).
SDK_DEBUG_PROBE = """
import asyncio, logging
from service.observability.logging import configure_logging
from service.settings import load_settings

configure_logging(load_settings())
logging.getLogger("openai.agents").setLevel(logging.DEBUG)

from agents import ModelSettings, ModelTracing, OpenAIResponsesModel, function_tool
from agents.tool_context import ToolContext
from openai import AsyncOpenAI

@function_tool
def echo(text: str) -> str:
    \"\"\"Echo.

    Args:
        text: What to echo.
    \"\"\"
    return text

async def main() -> None:
    client = AsyncOpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1", max_retries=0)
    model = OpenAIResponsesModel("probe-model", client)
    try:
        await model.get_response(
            None, "PROMPT-TEXT-4711", ModelSettings(), [], None, [], ModelTracing.DISABLED,
            previous_response_id=None, conversation_id=None, prompt=None,
        )
    except Exception:
        pass
    arguments = '{"text": "TOOL-INPUT-4712"}'
    context = ToolContext(None, tool_name="echo", tool_call_id="c1", tool_arguments=arguments)
    await echo.on_invoke_tool(context, arguments)

asyncio.run(main())
"""


def sdk_debug_output(log_prompts: bool) -> str:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))},
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "text",
        "LOG_PROMPTS": "true" if log_prompts else "false",
        # A user's own setting asking for data logging: LOG_PROMPTS decides, not this.
        "OPENAI_AGENTS_DONT_LOG_MODEL_DATA": "0",
        "OPENAI_AGENTS_DONT_LOG_TOOL_DATA": "0",
    }
    result = subprocess.run(
        [sys.executable, "-c", SDK_DEBUG_PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return result.stdout + result.stderr


def test_without_log_prompts_the_agents_sdk_debug_log_carries_no_prompt_or_tool_data() -> None:
    output = sdk_debug_output(log_prompts=False)
    assert "Calling LLM" in output and "Invoking tool echo" in output  # the SDK did log
    assert "PROMPT-TEXT-4711" not in output
    assert "TOOL-INPUT-4712" not in output


def test_with_log_prompts_the_agents_sdk_debug_log_carries_them() -> None:
    output = sdk_debug_output(log_prompts=True)
    assert "PROMPT-TEXT-4711" in output
    assert "TOOL-INPUT-4712" in output


CHATKIT_PROBE = """
import logging
from service.observability.logging import configure_logging
from service.settings import load_settings

configure_logging(load_settings())
import chatkit.server  # what the app imports after logging is configured

logging.getLogger("chatkit.server").warning("provider said: bad key sk-proj-abcdefghijklmnop0123")
"""


def test_chatkit_sdk_lines_go_through_our_format_and_redaction() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LLM_"))},
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "INFO",  # makes chatkit attach a handler of its own at import
    }
    result = subprocess.run(
        [sys.executable, "-c", CHATKIT_PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert result.stderr == ""
    [line] = [json.loads(line) for line in result.stdout.splitlines() if "provider said" in line]
    assert line["logger"] == "chatkit.server"
    assert "sk-proj" not in line["message"]
