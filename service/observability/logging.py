"""Log configuration: one JSON object per line on stdout (or plain text for local use).

Every record gets the current request's fields (request id, ChatKit type, thread, tenant, user
hash). Only the fields in `LOG_FIELDS` are written, never a record's `args` or arbitrary extras,
and every line passes through the redactor. Library loggers whose debug output can carry
prompts, completions or stored items are held at INFO unless `LOG_PROMPTS` is on.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from service.observability.context import current_request
from service.observability.redaction import Redactor
from service.settings import Settings

LOG_FIELDS: tuple[str, ...] = (
    "request_id",
    "request_type",
    "thread_id",
    "tenant_id",
    "user_hash",
    "outcome",
    "error_type",
    "duration_ms",
    "http_method",
    "path",
    "status",
    "user_agent",
)
"""The only record attributes written besides timestamp, level, logger, message, exc_info.
A new field is added here (and in docs/metrics.md)."""

PROMPT_BEARING_LOGGERS: tuple[str, ...] = (
    "openai",  # the OpenAI client and the Agents SDK ("openai.agents")
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "aiosqlite",  # debug lines show each call's SQL parameters: stored messages
    "asyncpg",
    "psycopg",
)


class RequestFieldsFilter(logging.Filter):
    """Adds the current request's fields to each record (without overwriting explicit ones)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request()
        if request is not None:
            for key, value in request.log_fields().items():
                if not hasattr(record, key):
                    setattr(record, key, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key in LOG_FIELDS if (value := record.__dict__.get(key)) is not None}


class JsonLineFormatter(JsonFormatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.message
        log_data.update(_fields(record))
        for key in ("exc_info", "stack_info"):
            if message_dict.get(key):
                log_data[key] = message_dict[key]

    def serialize_log_record(self, log_data: dict[str, Any]) -> str:
        return self._redact(super().serialize_log_record(log_data))


class TextLineFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if fields:
            head, newline, rest = line.partition("\n")
            line = f"{head} [{fields}]{newline}{rest}"
        return self._redact(line)


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our stdout handler, recognisable so that configuring twice replaces it."""


def configure_logging(settings: Settings) -> None:
    redact = Redactor.for_settings(settings)
    handler = _ServiceHandler(sys.stdout)
    formatter: logging.Formatter = (
        JsonLineFormatter(redact) if settings.log_format == "json" else TextLineFormatter(redact)
    )
    handler.setFormatter(formatter)
    handler.addFilter(RequestFieldsFilter())

    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    level = logging.getLevelName(settings.log_level)
    root.setLevel(level)
    logging.captureWarnings(True)

    library_level = level if settings.log_prompts else max(level, logging.INFO)
    for name in PROMPT_BEARING_LOGGERS:
        logging.getLogger(name).setLevel(library_level)
    _agents_sdk_data_logging(settings.log_prompts)
    _adopt_chatkit_logger(level)
    if settings.log_prompts:
        logging.getLogger(__name__).warning(
            "LOG_PROMPTS=true: debug logs may contain prompts, answers and tool data"
        )


AGENTS_SDK_DATA_SWITCHES: tuple[str, ...] = (
    "OPENAI_AGENTS_DONT_LOG_MODEL_DATA",
    "OPENAI_AGENTS_DONT_LOG_TOOL_DATA",
)
"""The Agents SDK's documented switches for prompts, answers and tool data in its debug logs."""


def _agents_sdk_data_logging(enabled: bool) -> None:
    # The SDK reads these once, when `agents` is first imported: the CLI and each worker configure
    # logging before importing the app. Should `agents` already be loaded (tests, embedding), the
    # logger levels above still keep its data-bearing debug lines out unless LOG_PROMPTS is on.
    for name in AGENTS_SDK_DATA_SWITCHES:
        os.environ[name] = "0" if enabled else "1"  # noqa: TID251 (a write, for the SDK)


def _adopt_chatkit_logger(level: int) -> None:
    # With LOG_LEVEL set, chatkit gives its logger a stderr handler of its own when first
    # imported: plain lines that bypass our format and the redactor (its error lines can quote a
    # provider's answer). Import it now and send its records through our handler instead, from
    # WARNING up: it logs every request at INFO, which our own request log line already says.
    import chatkit.logger  # noqa: F401

    sdk_logger = logging.getLogger("chatkit")
    for handler in list(sdk_logger.handlers):
        sdk_logger.removeHandler(handler)
    sdk_logger.setLevel(max(level, logging.WARNING))
