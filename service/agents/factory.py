"""`create_model()`: the only place a model provider and model are chosen.

Each LLM_PROVIDER value is one row of `PROVIDERS`:

- `openai`: the Responses API (OPENAI_BASE_URL redirects it, e.g. to a proxy).
- `gemini`: Google's OpenAI-compatible endpoint through Chat Completions.
- `openai-compatible`: any server at OPENAI_BASE_URL (Ollama, vLLM, LiteLLM, gateways) through
  Chat Completions; the key is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

import httpx2
from agents import Model, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import DefaultAioHttpClient, DefaultAsyncHttpxClient
from pydantic import SecretStr

from service.agents.streamed_events import StreamParsingOpenAI
from service.settings import LLMProvider, Settings

ModelAPI = Literal["responses", "chat_completions"]

# Keyless OpenAI-compatible servers still get an Authorization header from the client.
_PLACEHOLDER_KEY = "not-needed"
# Where the OpenAI client goes when no base URL is configured.
_DEFAULT_ENDPOINT_HOST = "api.openai.com"


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """How one LLM_PROVIDER value is served."""

    api: ModelAPI
    system: str
    """OpenTelemetry `gen_ai.provider.name`."""
    settings_prefix: str
    """Its settings are `<prefix>_BASE_URL`, `<prefix>_API_KEY` and `<prefix>_DEFAULT_MODEL`."""
    key_required: bool

    @property
    def base_url_setting(self) -> str:
        return f"{self.settings_prefix}_BASE_URL"

    @property
    def key_setting(self) -> str:
        return f"{self.settings_prefix}_API_KEY"

    @property
    def model_setting(self) -> str:
        return f"{self.settings_prefix}_DEFAULT_MODEL"


PROVIDERS: dict[LLMProvider, ProviderSpec] = {
    "openai": ProviderSpec("responses", "openai", "OPENAI", key_required=True),
    "gemini": ProviderSpec("chat_completions", "gcp.gemini", "GEMINI", key_required=True),
    "openai-compatible": ProviderSpec(
        "chat_completions", "openai-compatible", "OPENAI", key_required=False
    ),
}


@dataclass(frozen=True, slots=True)
class ModelHandle:
    """A configured model and the facts about it that callers need (labels, messages)."""

    provider: str
    """The LLM_PROVIDER value: openai, gemini or openai-compatible."""
    system: str
    """OpenTelemetry `gen_ai.provider.name`: openai, gcp.gemini, or openai-compatible."""
    name: str
    api: ModelAPI
    key_setting: str
    model_setting: str
    base_url_setting: str
    endpoint_host: str
    """`host[:port]` of the provider, safe to show to users (never the URL's user:password)."""
    model_settings: ModelSettings
    model: Model | None
    unavailable_reason: str | None = None
    """Set when the model cannot be used (e.g. no key): every turn answers with this."""


def create_model(settings: Settings, http_client: httpx2.AsyncClient | None = None) -> ModelHandle:
    """`http_client`: the connections to share with other models (`model_http_client`); the
    caller closes it. Without it, the model gets a client of its own."""
    spec = PROVIDERS[settings.llm_provider]
    name = _text(settings, spec.model_setting) or ""
    base_url = _text(settings, spec.base_url_setting)
    key = _secret(settings, spec.key_setting)
    # Chat Completions servers only report token usage when asked to.
    model_settings = ModelSettings(include_usage=True if spec.api == "chat_completions" else None)
    handle = ModelHandle(
        provider=settings.llm_provider,
        system=spec.system,
        name=name,
        api=spec.api,
        key_setting=spec.key_setting,
        model_setting=spec.model_setting,
        base_url_setting=spec.base_url_setting,
        endpoint_host=endpoint_host(base_url),
        model_settings=model_settings,
        model=None,
    )
    if key is None and spec.key_required:
        reason = (
            f"The assistant is not configured: set {spec.key_setting} "
            f"(LLM_PROVIDER={settings.llm_provider}) and restart the server."
        )
        return replace(handle, unavailable_reason=reason)
    client = StreamParsingOpenAI(
        api_key=key or _PLACEHOLDER_KEY,
        base_url=base_url,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
        http_client=http_client or model_http_client(settings),
    )
    model: Model
    if spec.api == "responses":
        model = OpenAIResponsesModel(model=name, openai_client=client)
    else:
        model = OpenAIChatCompletionsModel(model=name, openai_client=client)
    return replace(handle, model=model)


def model_http_client(settings: Settings) -> httpx2.AsyncClient:
    """openai's own clients (its connection limits and timeouts); aiohttp reads a stream with
    less work per chunk than httpx's anyio stack, which sets up a cancel scope for every read.
    aiohttp refuses a URL with credentials in it next to the client's Authorization header, so
    a base URL with `user:password@` keeps httpx."""
    base_url = _text(settings, PROVIDERS[settings.llm_provider].base_url_setting)
    has_credentials = base_url is not None and "@" in urlsplit(base_url).netloc
    if settings.llm_http_client == "aiohttp" and not has_credentials:
        return DefaultAioHttpClient(timeout=settings.llm_timeout_seconds)
    return DefaultAsyncHttpxClient(timeout=settings.llm_timeout_seconds)


def endpoint_host(base_url: str | None) -> str:
    """`host` or `host:port` of a base URL; IPv6 in brackets; user and password left out."""
    if not base_url:
        return _DEFAULT_ENDPOINT_HOST
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: show the host alone rather than fail the turn
        port = None
    return host if port is None else f"{host}:{port}"


def _text(settings: Settings, variable: str) -> str | None:
    value = getattr(settings, variable.lower())
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{variable} is not a text setting")


def _secret(settings: Settings, variable: str) -> str | None:
    value = getattr(settings, variable.lower())
    if value is None or isinstance(value, SecretStr):
        return value.get_secret_value() if value else None
    raise TypeError(f"{variable} is not a secret setting")
