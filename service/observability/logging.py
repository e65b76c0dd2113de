"""Log configuration: one JSON object per line on stdout (or plain text for local use).

Every record gets the current request's fields (request id, ChatKit type, thread, tenant, user
hash). Only the fields in `LOG_FIELDS` are written, never a record's `args` or arbitrary extras,
and every line passes through the redactor. Library loggers whose debug output can carry
prompts, completions or stored items are held at INFO unless `LOG_PROMPTS` is on.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from service.observability.context import current_request
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

_SECRET_PATTERNS = (
    r"sk-[A-Za-z0-9_\-]{8,}",
    r"AIza[0-9A-Za-z_\-]{10,}",
    r"(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*",
)
REDACTED = "[redacted]"


class Redactor:
    """Replaces key-like strings and the configured secrets in a finished log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals: set[str] = set()
        for secret in secrets:
            if len(secret) >= 6:
                literals.add(secret)
                literals.add(json.dumps(secret)[1:-1])  # as it appears inside a JSON string
        alternatives = [re.escape(s) for s in sorted(literals, key=len, reverse=True)]
        self._pattern = re.compile("|".join([*alternatives, *_SECRET_PATTERNS]))

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)


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
    redact = Redactor(settings_secrets(settings))
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
    if settings.log_prompts:
        logging.getLogger(__name__).warning(
            "LOG_PROMPTS=true: debug logs may contain prompts, answers and tool data"
        )


def _agents_sdk_data_logging(enabled: bool) -> None:
    from agents import _debug  # the SDK's own switch; its env variables are read at import

    _debug.DONT_LOG_MODEL_DATA = not enabled
    _debug.DONT_LOG_TOOL_DATA = not enabled


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret setting's value and URL password, so that no log line can show them."""
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
        elif name.endswith("_url") and isinstance(value, str):
            password = urlsplit(value).password
            if password:
                values.append(password)
    return values
