"""`create_model()`: the only place a model provider and model are chosen.

- `openai`: the Responses API (OPENAI_BASE_URL redirects it, e.g. to a proxy).
- `gemini`: Google's OpenAI-compatible endpoint through Chat Completions.
- `openai-compatible`: any server at OPENAI_BASE_URL (Ollama, vLLM, LiteLLM, gateways) through
  Chat Completions; the key is optional.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from agents import Model, ModelSettings, OpenAIChatCompletionsModel, OpenAIResponsesModel
from openai import AsyncOpenAI

from service.settings import Settings

ModelAPI = Literal["responses", "chat_completions"]

# Keyless OpenAI-compatible servers still get an Authorization header from the client.
_PLACEHOLDER_KEY = "not-needed"


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
    model_settings: ModelSettings
    model: Model | None
    unavailable_reason: str | None = None
    """Set when the model cannot be used (e.g. no key): every turn answers with this."""


def create_model(settings: Settings) -> ModelHandle:
    if settings.llm_provider == "gemini":
        return _build(
            settings,
            provider="gemini",
            system="gcp.gemini",
            name=settings.gemini_default_model,
            api="chat_completions",
            base_url=settings.gemini_base_url,
            key=settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None,
            key_required=True,
            key_setting="GEMINI_API_KEY",
            model_setting="GEMINI_DEFAULT_MODEL",
            base_url_setting="GEMINI_BASE_URL",
        )
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if settings.llm_provider == "openai-compatible":
        return _build(
            settings,
            provider="openai-compatible",
            system="openai-compatible",
            name=settings.openai_default_model,
            api="chat_completions",
            base_url=settings.openai_base_url,
            key=key,
            key_required=False,
            key_setting="OPENAI_API_KEY",
            model_setting="OPENAI_DEFAULT_MODEL",
            base_url_setting="OPENAI_BASE_URL",
        )
    return _build(
        settings,
        provider="openai",
        system="openai",
        name=settings.openai_default_model,
        api="responses",
        base_url=settings.openai_base_url,
        key=key,
        key_required=True,
        key_setting="OPENAI_API_KEY",
        model_setting="OPENAI_DEFAULT_MODEL",
        base_url_setting="OPENAI_BASE_URL",
    )


def _build(
    settings: Settings,
    *,
    provider: str,
    system: str,
    name: str,
    api: ModelAPI,
    base_url: str | None,
    key: str | None,
    key_required: bool,
    key_setting: str,
    model_setting: str,
    base_url_setting: str,
) -> ModelHandle:
    # Chat Completions servers only report token usage when asked to.
    model_settings = ModelSettings(include_usage=True if api == "chat_completions" else None)
    handle = ModelHandle(
        provider=provider,
        system=system,
        name=name,
        api=api,
        key_setting=key_setting,
        model_setting=model_setting,
        base_url_setting=base_url_setting,
        endpoint_host=urlsplit(base_url).netloc if base_url else "api.openai.com",
        model_settings=model_settings,
        model=None,
    )
    if key is None and key_required:
        reason = (
            f"The assistant is not configured: set {key_setting} "
            f"(LLM_PROVIDER={provider}) and restart the server."
        )
        return replace(handle, unavailable_reason=reason)
    client = AsyncOpenAI(
        api_key=key or _PLACEHOLDER_KEY,
        base_url=base_url,
        timeout=settings.llm_timeout_seconds,
        max_retries=settings.llm_max_retries,
    )
    model: Model
    if api == "responses":
        model = OpenAIResponsesModel(model=name, openai_client=client)
    else:
        model = OpenAIChatCompletionsModel(model=name, openai_client=client)
    return replace(handle, model=model)
