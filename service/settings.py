"""Every setting of the service, read once from the environment (and `.env`) and passed down.

No other module reads the environment: build a `Settings` at the edge (the CLI) and hand it to
`create_app()`. Secrets are `SecretStr` so they never print by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LLMProvider = Literal["openai", "gemini", "openai-compatible"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

GEMINI_OPENAI_COMPATIBLE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"

# What the validators below accept, for JSON-schema readers (the chart's values.schema.json).
_HTTP_URL = r"^https?://[^/?#]+"
_DATABASE_URL = r"^(sqlite|postgres|postgresql)://"


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Each field is one environment variable (its name in capitals).

    A field's docstring is its documentation: `python -m service.settings_doc` writes it, the
    default and the range into the chart (`config.*` or `secrets.*`, values.schema.json, the
    ConfigMap or Secret) and into the README's table. Add a setting here, then run that.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        use_attribute_docstrings=True,
    )

    # --- deployment -------------------------------------------------------------------------
    environment: Literal["development", "production"] = "development"
    """`production` turns the development page off."""
    host: str = "127.0.0.1"
    """Address the server listens on."""
    port: int = Field(default=8000, ge=0, le=65535)
    """Port the server listens on."""
    workers: int = Field(default=1, ge=1, le=64)
    """Hypercorn worker processes."""
    playground_enabled: bool | None = None
    """The development chat page at `/`. Unset: on in development, off in production."""

    # --- model provider ---------------------------------------------------------------------
    llm_provider: LLMProvider = "openai"
    """`openai` (Responses API), `gemini` (Gemini's OpenAI-compatible endpoint, Chat Completions)
    or `openai-compatible` (any server at `OPENAI_BASE_URL`, Chat Completions)."""
    openai_api_key: SecretStr | None = None
    """Key for `openai`; optional for `openai-compatible`."""
    openai_default_model: str = "gpt-4.1-mini"
    """Model for `openai` and `openai-compatible`."""
    openai_base_url: str | None = Field(default=None, json_schema_extra={"pattern": _HTTP_URL})
    """Redirects `openai` (proxy, gateway); required for `openai-compatible`, e.g.
    `http://localhost:11434/v1`."""
    gemini_api_key: SecretStr | None = None
    """Key for `gemini`."""
    gemini_default_model: str = "gemini-2.5-flash"
    """Model for `gemini`."""
    gemini_base_url: str = Field(
        default=GEMINI_OPENAI_COMPATIBLE_URL, json_schema_extra={"pattern": _HTTP_URL}
    )
    """Gemini's OpenAI-compatible endpoint."""
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    """Timeout of one model request."""
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    """Client retries on connection errors, 429 and 5xx."""
    llm_tracing_enabled: bool = False
    """Agents SDK tracing, which uploads traces to OpenAI; off unless asked for."""

    # --- conversation -----------------------------------------------------------------------
    agent_instructions: str | None = None
    """Replaces the assistant's built-in instructions when set."""
    history_max_items: int = Field(default=60, ge=2, le=1000)
    """How many of the thread's latest items the model sees on each turn."""
    max_agent_turns: int = Field(default=10, ge=1, le=100)
    """Model/tool round trips allowed per answer."""
    title_generation: bool = True
    """Ask the model for a short thread title after the first message (else: its first words)."""
    title_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a title may take before the first words are used instead."""

    # --- HTTP -------------------------------------------------------------------------------
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Larger request bodies get a 413."""
    auth_mode: Literal["dev"] = "dev"
    """`dev`: the caller names itself with `X-User-Id` / `X-Tenant-Id`, logged loudly at start.
    Never expose a `dev` server to untrusted clients: put an authenticating proxy in front."""
    dev_user_id: str = "dev-user"
    """`AUTH_MODE=dev`: the user when a request has no `X-User-Id`."""
    dev_tenant_id: str = "default"
    """`AUTH_MODE=dev`: the tenant when a request has no `X-Tenant-Id`."""

    # --- storage ----------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///./data/chatkit.db", json_schema_extra={"pattern": _DATABASE_URL}
    )
    """`sqlite:///path` or `postgresql://user:password@host:5432/db` (SQLite: one machine only)."""
    database_auto_migrate: bool = True
    """Create or upgrade the schema at start-up; when off, an old schema stops start-up."""
    turn_lock_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a turn waits for another turn on the same thread before answering "busy"."""
    database_pool_min_size: int = Field(default=1, ge=0, le=1000)
    """PostgreSQL: connections each process keeps open (plus one for turn locks)."""
    database_pool_max_size: int = Field(default=10, ge=1, le=1000)
    """PostgreSQL: most connections each process opens (plus one for turn locks)."""
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    """PostgreSQL connect timeout."""
    database_startup_retry_max_seconds: float = Field(default=30.0, gt=0)
    """An unreachable database at start-up is retried with backoff up to this interval; the
    server stays up, not ready."""
    retention_days: int | None = Field(default=None, ge=1)
    """Default age for `chatkit-backend prune`; unset: the command needs `--older-than`."""

    @field_validator("retention_days", mode="before")
    @classmethod
    def _empty_retention_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if self.database_pool_min_size > self.database_pool_max_size:
            raise ValueError(
                "DATABASE_POOL_MIN_SIZE: must not exceed DATABASE_POOL_MAX_SIZE "
                f"({self.database_pool_max_size})"
            )
        return self

    # --- observability and lifecycle (logs, metrics, probes, drain) ---------------------------
    log_level: LogLevel = "INFO"
    """Least severe log level written."""
    log_format: Literal["json", "text"] = "json"
    """`json`: one object per line (production); `text`: plain lines for local use."""
    log_prompts: bool = False
    """Let library debug logs (`LOG_LEVEL=DEBUG`) show prompts, answers and tool data. Debugging
    only, never in production."""
    metrics_enabled: bool = True
    """Prometheus metrics at `/metrics`."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve `/metrics` on this port only, instead of the main port."""
    prometheus_multiproc_dir: Path | None = None
    """Where workers share metric values; wiped at start. `WORKERS`>1 uses a temp dir if unset."""
    shutdown_drain_seconds: float = Field(default=25.0, ge=0)
    """On SIGTERM, how long open streams may continue before they are ended with a retry notice.
    The pod's terminationGracePeriodSeconds should exceed it by about 10 s."""
    heartbeat_interval_seconds: float = Field(default=15.0, gt=0)
    """An SSE comment is sent after this long without an event, so idle-timeout proxies wait."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_port", "prometheus_multiproc_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _metrics_port_differs(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT: must differ from PORT (or be unset)")
        return self

    @field_validator("llm_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("openai_base_url", "gemini_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("openai_api_key", "gemini_api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _provider_needs(self) -> Settings:
        if self.llm_provider == "openai-compatible" and not self.openai_base_url:
            raise ValueError(
                "OPENAI_BASE_URL: required when LLM_PROVIDER=openai-compatible "
                "(the base URL of the server, e.g. http://localhost:11434/v1)"
            )
        return self

    @property
    def playground_on(self) -> bool:
        if self.playground_enabled is not None:
            return self.playground_enabled
        return self.environment == "development"

    def masked(self) -> dict[str, Any]:
        """The effective configuration with secrets masked and URL passwords removed."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "****" if value.get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                value = mask_url_password(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name.upper()] = value
        return out


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return parts._replace(netloc=netloc).geturl()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into a one-line `ConfigurationError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if not location:
        return f"invalid configuration: {message}"
    return f"invalid configuration: {location.upper()}: {message}"
