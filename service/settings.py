"""Every setting of the service, read once from the environment (and `.env`) and passed down.

No other module reads the environment: build a `Settings` at the edge (the CLI) and hand it to
`create_app()`. Secrets are `SecretStr` so they never print by accident.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

LLMProvider = Literal["openai", "gemini", "openai-compatible"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

GEMINI_OPENAI_COMPATIBLE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"

# What the validators below accept, for JSON-schema readers (the chart's values.schema.json).
_HTTP_URL = r"^https?://[^/?#]+"
_DATABASE_URL = r"^(sqlite|postgres|postgresql)://"
_REDIS_URL = r"^rediss?://"
_AUTH_MODE = r"^ *(dev|jwt|api-token)( *, *(jwt|api-token))* *$"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"

AUTH_MODES = ("jwt", "api-token", "dev")
_ATTACHMENTS_URL = r"^((file|gs)://.*)?$"

DEFAULT_ALLOWED_TYPES = (
    "image/png,image/jpeg,image/gif,image/webp,application/pdf,text/*,application/json,"
    "application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint,"
    "application/vnd.openxmlformats-officedocument.*,application/vnd.oasis.opendocument.*"
)


class ConfigurationError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


def _none_if_blank(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _unset_when_blank(*fields: str) -> Any:
    """The validator of optional settings for which an empty or blank value (`FOO=` in an env
    file, an empty chart value) means unset."""
    return field_validator(*fields, mode="before")(_none_if_blank)


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
    llm_http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    """The model client's HTTP stack: `aiohttp` (openai's `DefaultAioHttpClient`; ~13 % less CPU
    per turn under load) or `httpx`, the openai client's own default. A base URL with
    `user:password@` in it always uses httpx (aiohttp refuses it)."""
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

    # --- model picker and tools (service/agents/) ------------------------------------------------
    model_allowlist: str = ""
    """Comma-separated models of LLM_PROVIDER that users may pick in the composer besides the
    default model; empty: the default model only."""
    ticket_create_roles: str = "employee,manager,admin"
    """Comma-separated roles that may create support tickets and change their own."""
    ticket_manage_roles: str = "manager,admin"
    """Comma-separated roles that may change any support ticket of their tenant."""
    erp_base_url: str | None = Field(default=None, json_schema_extra={"pattern": _HTTP_URL})
    """The ERP's API (`GET {url}/invoices/{id}?tenant_id=...`); unset: the assistant has no
    invoice tool."""
    erp_api_token: SecretStr | None = None
    """Bearer token sent to the ERP."""
    erp_timeout_seconds: float = Field(default=10.0, gt=0)
    """Timeout of one ERP request."""
    erp_max_attempts: int = Field(default=3, ge=1, le=10)
    """ERP requests tried per invoice lookup (timeouts and 5xx are retried with backoff)."""

    mcp_servers: str = "[]"
    """JSON list of Streamable HTTP MCP servers whose tools the assistant may use, e.g.
    `[{"name": "crm", "url": "https://crm.internal/mcp", "tools": ["find_account"]}]`; each
    may set `read_only` (default true; false: only `roles` may call its tools), `roles`,
    `auth_header` and `timeout_seconds`. See "Connecting an MCP server" in the README."""
    mcp_server_secrets: SecretStr | None = None
    """JSON object: MCP server name -> the value of its auth header (e.g. `Bearer ...`). Not
    valid JSON: logged at start, and the servers are called without it."""

    @field_validator("mcp_servers")
    @classmethod
    def _mcp_servers(cls, value: str) -> str:
        try:
            parse_mcp_servers(value)
        except ValueError as exc:
            raise ValueError(f"not a valid list of MCP servers ({_first_problem(exc)})") from None
        return value

    _empty_erp_option_is_none = _unset_when_blank("erp_base_url", "erp_api_token")

    @field_validator("erp_base_url")
    @classmethod
    def _erp_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def allowed_models(self) -> tuple[str, ...]:
        """MODEL_ALLOWLIST's names, in order, without repeats."""
        names = (part.strip() for part in self.model_allowlist.split(","))
        return tuple(dict.fromkeys(name for name in names if name))

    @property
    def ticket_roles(self) -> tuple[frozenset[str], frozenset[str]]:
        """(TICKET_CREATE_ROLES, TICKET_MANAGE_ROLES) as sets of role names."""
        return parse_roles(self.ticket_create_roles), parse_roles(self.ticket_manage_roles)

    # --- HTTP -------------------------------------------------------------------------------
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Larger request bodies get a 413."""

    # --- authentication and browsers (service/auth/) ------------------------------------------
    auth_mode: str = Field(default="dev", json_schema_extra={"pattern": _AUTH_MODE})
    """`jwt` (bearer JWTs), `api-token` (static tokens listed in `AUTH_API_TOKENS_FILE`), both
    (`jwt,api-token`), or `dev`: the caller names itself with `X-User-Id` / `X-Tenant-Id` /
    `X-User-Role`, logged loudly at start and refused at start-up with `ENVIRONMENT=production`."""
    auth_token_header: str = Field(
        default="Authorization", json_schema_extra={"pattern": _HEADER_NAME}
    )
    """Header carrying the JWT: `Authorization` holds `Bearer <token>`, any other header the bare
    token (Google IAP: `x-goog-iap-jwt-assertion`)."""
    auth_jwt_secret: SecretStr | None = None
    """`jwt` with HS256 tokens: the shared secret (32 bytes or more)."""
    auth_jwks_url: str | None = Field(default=None, json_schema_extra={"pattern": _HTTP_URL})
    """`jwt` with RS256/ES256 tokens: the signing keys' JWKS URL (needs `AUTH_ISSUER` and
    `AUTH_AUDIENCE`)."""
    auth_oidc_issuer: str | None = Field(default=None, json_schema_extra={"pattern": _HTTP_URL})
    """`jwt` with RS256/ES256 tokens of this OpenID Connect issuer, whose discovery document
    names the JWKS (needs `AUTH_AUDIENCE`)."""
    auth_issuer: str | None = None
    """The `iss` tokens must carry; checked when set (with `AUTH_OIDC_ISSUER`: that issuer)."""
    auth_audience: str | None = None
    """The `aud` tokens must carry; checked when set."""
    auth_user_claim: str = Field(default="sub", min_length=1)
    """Token claim holding the user id."""
    auth_tenant_claim: str = Field(default="tenant", min_length=1)
    """Token claim holding the tenant id."""
    auth_role_claim: str = Field(default="role", min_length=1)
    """Token claim holding the role (`employee`, `manager`, `admin`; a list: the highest of
    those); tokens without it are `employee`."""
    auth_default_tenant: str | None = None
    """Tenant of tokens without the tenant claim (single-tenant installs); unset: such tokens
    are refused."""
    auth_jwks_cache_seconds: float = Field(default=600.0, gt=0)
    """How long fetched JWKS keys are used before they are fetched again."""
    auth_jwks_min_refresh_seconds: float = Field(default=30.0, ge=0)
    """A token signed with an unknown key (`kid`) refetches the keys at most once per this
    interval, so a flood of bad tokens cannot hammer the issuer."""
    auth_api_tokens_file: Path | None = None
    """`api-token`: JSON lines `{"sha256", "user", "tenant", "role"}`, one per token (its SHA-256
    hex digest), read at start. The chart sets it when `auth.apiTokensSecret` is set."""
    dev_user_id: str = "dev-user"
    """`AUTH_MODE=dev`: the user when a request has no `X-User-Id`."""
    dev_tenant_id: str = "default"
    """`AUTH_MODE=dev`: the tenant when a request has no `X-Tenant-Id`."""
    dev_role: str = "employee"
    """`AUTH_MODE=dev`: the role when a request has no `X-User-Role`."""
    cors_allowed_origins: str | None = Field(default=None, json_schema_extra={"pattern": _HTTP_URL})
    """Comma-separated browser origins allowed to call the API (`https://app.example.com`; a
    URL counts as its origin); empty: no cross-origin access."""

    _empty_auth_option_is_none = _unset_when_blank(
        "auth_jwt_secret",
        "auth_jwks_url",
        "auth_oidc_issuer",
        "auth_issuer",
        "auth_audience",
        "auth_default_tenant",
        "auth_api_tokens_file",
    )

    @field_validator("auth_mode")
    @classmethod
    def _known_auth_modes(cls, value: str) -> str:
        return ",".join(parse_auth_modes(value))

    @field_validator("auth_jwks_url", "auth_oidc_issuer")
    @classmethod
    def _auth_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value.strip())
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL")
            return value.strip()
        return value

    @field_validator("auth_token_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not re.fullmatch(_HEADER_NAME, value.strip()):
            raise ValueError("must be an HTTP header name, e.g. Authorization")
        return value.strip()

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return ",".join(parse_origins(value)) or None

    @model_validator(mode="after")
    def _jwt_key_source(self) -> Settings:
        # One key source and the secret's length are checked at start-up (service.auth).
        if self.auth_jwks_url is not None and self.auth_issuer is None:
            raise ValueError("AUTH_ISSUER: required with AUTH_JWKS_URL (the tokens' `iss`)")
        if (self.auth_jwks_url or self.auth_oidc_issuer) and self.auth_audience is None:
            which = "AUTH_JWKS_URL" if self.auth_jwks_url else "AUTH_OIDC_ISSUER"
            raise ValueError(f"AUTH_AUDIENCE: required with {which} (the tokens' `aud`)")
        return self

    @property
    def auth_modes(self) -> tuple[str, ...]:
        return parse_auth_modes(self.auth_mode)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return parse_origins(self.cors_allowed_origins or "")

    # --- abuse limits -----------------------------------------------------------------------
    rate_limit_per_minute: int = Field(default=600, ge=0)
    """ChatKit requests a user may send per minute (moving window); more get a 429 with
    `Retry-After`. 0: no limit."""
    max_concurrent_streams_per_user: int = Field(default=5, ge=0)
    """Answers (SSE streams) a user may have open at once; one more gets a 429. 0: no limit."""
    tenant_daily_token_budget: int | None = Field(default=None, ge=1)
    """Model tokens (input + output) a tenant may use per day (a 24-hour window from its first
    charged call); then new turns get a 429 and a running turn ends with an error saying so.
    Unset: no budget."""
    redis_url: SecretStr | None = Field(default=None, json_schema_extra={"pattern": _REDIS_URL})
    """`redis://[:password@]host:6379/0` (or `rediss://`): the limits are shared by every
    replica there. Unset: each process counts for itself. Redis down: limits are not enforced
    (logged once per outage, counted in `chatkit_limit_store_failures_total`)."""
    redis_key_prefix: str = Field(default="chatkit", min_length=1)
    """Prefix of every key the limits write in Redis (to share one Redis between installs)."""

    _empty_limit_option_is_none = _unset_when_blank("tenant_daily_token_budget", "redis_url")

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in (
            "redis",
            "rediss",
        ):
            raise ValueError("must start with redis:// or rediss://")
        return value

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

    # --- attachments ------------------------------------------------------------------------
    attachments_url: str = Field(
        default="file://./data/uploads", json_schema_extra={"pattern": _ATTACHMENTS_URL}
    )
    """Where uploaded files are kept: `file:///path` (local disk, one machine only) or
    `gs://bucket/prefix` (Google Cloud Storage, Application Default Credentials / Workload
    Identity; `STORAGE_EMULATOR_HOST` is honoured). Empty: uploads are turned off."""
    attachments_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    """Largest upload (and recorded voice input); larger ones get a 413."""
    attachments_allowed_types: str | None = None
    """Comma-separated MIME types an upload may have (checked from its bytes); wildcards like
    `image/*`. Others get a 415. Unset: PNG, JPEG, GIF and WebP images, PDF, text, JSON and
    Office / OpenDocument files."""
    attachments_public_url: str | None = Field(
        default=None, json_schema_extra={"pattern": _HTTP_URL}
    )
    """Base URL browsers use to reach this service, for upload and preview links; unset: the
    request's own scheme and host."""
    attachments_signing_key: SecretStr | None = None
    """Key that signs upload and preview links. Unset: a random key per process, so links stop
    working after a restart and across workers/replicas: set it in production."""
    attachments_link_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    """How long upload links and image preview links (this service's or signed GCS URLs) stay
    valid; previews are signed afresh whenever attachments are loaded."""
    attachments_signed_urls: Literal["auto", "off"] = "auto"
    """With a `gs://` `ATTACHMENTS_URL`: `auto` lets browsers PUT two-phase uploads to and GET
    image previews from the bucket through V4 signed URLs when the credentials can sign (a
    service-account key, or Workload Identity through IAM signBlob, which needs
    `roles/iam.serviceAccountTokenCreator` on that service account); otherwise, and with `off`,
    both go through this service. The choice is logged at start-up."""
    attachments_bucket_cors_origins: str | None = None
    """Comma-separated browser origins (e.g. `https://app.example.com`) given a CORS rule on the
    GCS bucket at start-up, for signed PUTs and GETs (needs `storage.buckets.get`/`update`;
    without them a warning, start-up carries on). Unset: the bucket's CORS is left alone."""
    attachment_orphan_hours: int = Field(default=24, ge=1, le=365 * 24)
    """Uploads never attached to a message are deleted by `chatkit-backend prune` once this many
    hours old (never sooner than `ATTACHMENTS_LINK_SECONDS`)."""
    transcribe_model: str | None = None
    """Model for voice input (`input.transcribe`) through the provider's transcription
    endpoint, e.g. `gpt-4o-mini-transcribe`; unset: voice input is turned off."""

    @field_validator("attachments_url")
    @classmethod
    def _attachments_scheme(cls, value: str) -> str:
        value = value.strip()
        if value and urlsplit(value).scheme not in ("file", "gs"):
            raise ValueError("must be file:///path or gs://bucket/prefix (or empty)")
        if value.startswith("gs://") and not urlsplit(value).netloc:
            raise ValueError("gs:// needs a bucket name, e.g. gs://my-bucket/uploads")
        return value

    _empty_attachment_option_is_none = _unset_when_blank(
        "attachments_public_url",
        "attachments_signing_key",
        "attachments_allowed_types",
        "attachments_bucket_cors_origins",
        "transcribe_model",
    )
    _empty_retention_is_none = _unset_when_blank("retention_days")

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

    _empty_is_unset = _unset_when_blank("metrics_port", "prometheus_multiproc_dir")

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

    _empty_key_is_none = _unset_when_blank("openai_api_key", "gemini_api_key")

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


def parse_auth_modes(value: str) -> tuple[str, ...]:
    """`AUTH_MODE`'s modes: `jwt`, `api-token`, both, or `dev` alone."""
    modes = tuple(part.strip().lower() for part in value.split(",") if part.strip())
    unknown = [mode for mode in modes if mode not in AUTH_MODES]
    if unknown or not modes:
        raise ValueError(f"must be jwt, api-token, jwt,api-token or dev (got {value.strip()!r})")
    if len(set(modes)) != len(modes) or ("dev" in modes and len(modes) > 1):
        raise ValueError("dev cannot be combined with another mode or repeated")
    return modes


class MCPServerSpec(BaseModel):
    """One entry of `MCP_SERVERS`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    url: str = Field(pattern=r"^https?://")
    tools: tuple[str, ...] = Field(min_length=1)
    """The tools of this server offered to the assistant; others are never listed."""
    read_only: bool = True
    """False: its tools change things, and only `roles` may call them."""
    roles: tuple[str, ...] = ("employee", "manager", "admin")
    auth_header: str = "Authorization"
    """Header that carries the server's secret from `MCP_SERVER_SECRETS`, if it has one."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


MCP_SERVER_LIST = TypeAdapter(list[MCPServerSpec])
MCP_SECRET_MAP = TypeAdapter(dict[str, str])


def parse_mcp_servers(text: str) -> list[MCPServerSpec]:
    """`MCP_SERVERS`: a JSON list of servers (empty: none)."""
    specs = MCP_SERVER_LIST.validate_json(text.strip() or "[]")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError("server names must be unique")
    return specs


def parse_mcp_secrets(text: str) -> dict[str, str]:
    """`MCP_SERVER_SECRETS`: a JSON object, server name -> the auth header's value."""
    return MCP_SECRET_MAP.validate_json(text.strip() or "{}")


def _first_problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)


def parse_roles(value: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in value.split(",") if part.strip())


def parse_origins(value: str) -> tuple[str, ...]:
    """`CORS_ALLOWED_ORIGINS`: `scheme://host[:port]` each, as browsers send `Origin` (a URL's
    path is dropped)."""
    origins = []
    for part in value.split(","):
        if not part.strip():
            continue
        parts = urlsplit(part.strip().lower())
        if parts.scheme not in ("http", "https") or not parts.netloc or "*" in parts.netloc:
            raise ValueError(
                f"{part.strip()!r} is not an origin: write scheme://host[:port], e.g. "
                "https://app.example.com (`*` is not accepted)"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))


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
