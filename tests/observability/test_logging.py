"""Log lines: the fixed JSON fields, the request's fields, nothing else, and no secrets."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from agents import _debug

from service.observability.context import RequestLog, bind_request, unbind_request
from service.observability.logging import (
    PROMPT_BEARING_LOGGERS,
    JsonLineFormatter,
    Redactor,
    RequestFieldsFilter,
    TextLineFormatter,
    _ServiceHandler,
    configure_logging,
    settings_secrets,
)
from service.settings import Settings

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
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in PROMPT_BEARING_LOGGERS}
    flags = (_debug.DONT_LOG_MODEL_DATA, _debug.DONT_LOG_TOOL_DATA)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
    _debug.DONT_LOG_MODEL_DATA, _debug.DONT_LOG_TOOL_DATA = flags
    logging.captureWarnings(False)


@pytest.mark.usefixtures("restore_logging")
def test_debug_level_keeps_prompt_bearing_libraries_at_info_unless_log_prompts() -> None:
    configure_logging(Settings(_env_file=None, log_level="DEBUG"))  # type: ignore[call-arg]
    assert logging.getLogger("service.chatkit").isEnabledFor(logging.DEBUG)
    for name in ("openai.agents", "openai._base_client", "httpcore2.http11", "aiosqlite"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert _debug.DONT_LOG_MODEL_DATA
    assert _debug.DONT_LOG_TOOL_DATA

    configure_logging(Settings(_env_file=None, log_level="DEBUG", log_prompts=True))  # type: ignore[call-arg]
    for name in ("openai.agents", "aiosqlite"):
        assert logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert not _debug.DONT_LOG_MODEL_DATA
    assert len([h for h in logging.getLogger().handlers if isinstance(h, _ServiceHandler)]) == 1


@pytest.mark.usefixtures("restore_logging")
def test_a_quieter_level_is_not_loosened_for_libraries() -> None:
    configure_logging(Settings(_env_file=None, log_level="WARNING"))  # type: ignore[call-arg]
    assert not logging.getLogger("openai").isEnabledFor(logging.INFO)
