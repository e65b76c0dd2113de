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


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
    )

    # --- deployment -------------------------------------------------------------------------
    environment: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    playground_enabled: bool | None = None
    """The dev chat page at `/`. Default: on in development, off in production."""

    # --- model provider ---------------------------------------------------------------------
    llm_provider: LLMProvider = "openai"
    openai_api_key: SecretStr | None = None
    openai_default_model: str = "gpt-4.1-mini"
    openai_base_url: str | None = None
    gemini_api_key: SecretStr | None = None
    gemini_default_model: str = "gemini-2.5-flash"
    gemini_base_url: str = GEMINI_OPENAI_COMPATIBLE_URL
    llm_timeout_seconds: float = Field(default=120.0, gt=0)
    llm_max_retries: int = Field(default=2, ge=0, le=10)
    llm_tracing_enabled: bool = False
    """Agents SDK tracing uploads traces to OpenAI; off unless asked for."""

    # --- conversation -----------------------------------------------------------------------
    agent_instructions: str | None = None
    """Replaces the default assistant instructions when set."""
    history_max_items: int = Field(default=60, ge=2, le=1000)
    """How many of the thread's latest items the model sees on each turn."""
    max_agent_turns: int = Field(default=10, ge=1, le=100)
    title_generation: bool = True
    title_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- HTTP -------------------------------------------------------------------------------
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    auth_mode: Literal["dev"] = "dev"
    dev_user_id: str = "dev-user"
    dev_tenant_id: str = "default"

    # --- storage ----------------------------------------------------------------------------
    database_url: str = "sqlite:///./data/chatkit.db"
    database_auto_migrate: bool = True
    """Create or upgrade the schema at start-up; when off, an old schema stops start-up."""
    turn_lock_timeout_seconds: float = Field(default=30.0, gt=0)
    """How long a turn waits for another turn on the same thread before "busy"."""
    database_pool_min_size: int = Field(default=1, ge=0, le=1000)
    """PostgreSQL: connections each process keeps open (plus one for turn locks)."""
    database_pool_max_size: int = Field(default=10, ge=1, le=1000)
    """PostgreSQL: most connections each process opens (plus one for turn locks)."""
    database_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    database_startup_retry_max_seconds: float = Field(default=30.0, gt=0)
    """Longest wait between two start-up connection attempts (the backoff's cap)."""
    retention_days: int | None = Field(default=None, ge=1)
    """Default age for `chatkit-backend prune`; unset: the command needs --older-than."""

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
    log_format: Literal["json", "text"] = "json"
    """`json`: one object per line (production); `text`: plain lines for local use."""
    log_prompts: bool = False
    """Let library debug logs (LOG_LEVEL=DEBUG) show prompts, answers and tool data. Debug only."""
    metrics_enabled: bool = True
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve /metrics on this port only, instead of the main port."""
    prometheus_multiproc_dir: Path | None = None
    """Where workers share metric values; wiped at start. WORKERS>1 uses a temp dir if unset."""
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
