"""What a failed model call means for the person in the chat, without the provider's own text.

Provider error bodies can quote the credential (gateways echo keys and headers, with or without
their prefix, in any casing), so no provider text ever reaches a user-facing message: users get
a classified message, and the provider's explanation goes to the server's log only, where the
log redactor checks it against every configured secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import httpx2
import openai
from agents import MaxTurnsExceeded, ModelBehaviorError

from service.agents.factory import ModelHandle


@dataclass(frozen=True, slots=True)
class ModelFailure:
    kind: str
    """Short class for metrics and logs: auth, permission, model_not_found, rate_limited, ..."""
    message: str
    """For the person in the chat: what happened and what to check."""
    retryable: bool
    status: int | None = None


class ModelNotConfigured(Exception):
    """The model cannot be used (no key, say): every turn answers with the reason."""


def describe_model_failure(exc: BaseException, handle: ModelHandle) -> ModelFailure | None:
    """The failure of a model call, or None when `exc` is not about the model."""
    provider = f"The model provider ({handle.provider})"
    if isinstance(exc, ModelNotConfigured):
        return ModelFailure("not_configured", str(exc), retryable=False)
    connection = _aiohttp_connection_failure(exc)
    if isinstance(connection, aiohttp.ClientConnectorError):
        return _unreachable(handle, provider)
    if connection is not None:
        return _dropped(provider)
    if isinstance(exc, openai.APITimeoutError):
        return ModelFailure(
            "timeout",
            f"{provider} did not answer in time. Try again; if it keeps happening, check the "
            f"provider's status and LLM_TIMEOUT_SECONDS.",
            retryable=True,
        )
    if isinstance(exc, openai.APIConnectionError) and isinstance(
        exc.__cause__, httpx2.ConnectError | None
    ):
        return _unreachable(handle, provider)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return _dropped(provider)
    if isinstance(exc, openai.APIStatusError):
        return _describe_status(exc.status_code, handle, provider)
    if isinstance(exc, MaxTurnsExceeded):
        return ModelFailure(
            "max_turns",
            "The assistant needed too many steps to answer and stopped. Try a simpler request.",
            retryable=True,
        )
    if isinstance(exc, ModelBehaviorError):
        return ModelFailure(
            "invalid_model_output",
            f"{provider} returned a response the assistant could not use. Try again.",
            retryable=True,
        )
    return None


def _describe_status(status: int, handle: ModelHandle, provider: str) -> ModelFailure:
    if status == 401:
        return ModelFailure(
            "auth",
            f"{provider} rejected the API key (HTTP 401). Check {handle.key_setting}.",
            retryable=False,
            status=status,
        )
    if status == 403:
        return ModelFailure(
            "permission",
            f"{provider} refused access to model '{handle.name}' (HTTP 403). Check that the key "
            f"in {handle.key_setting} may use it.",
            retryable=False,
            status=status,
        )
    if status == 404:
        return ModelFailure(
            "model_not_found",
            f"{provider} does not know model '{handle.name}' (HTTP 404). Check "
            f"{handle.model_setting} and {handle.base_url_setting}.",
            retryable=False,
            status=status,
        )
    if status == 429:
        return ModelFailure(
            "rate_limited",
            f"{provider} is rate-limiting requests (HTTP 429). Wait a moment and try again; if it "
            f"keeps happening, check the account's quota.",
            retryable=True,
            status=status,
        )
    if status >= 500:
        return ModelFailure(
            "provider_unavailable",
            f"{provider} had an internal error (HTTP {status}). Try again in a moment.",
            retryable=True,
            status=status,
        )
    return ModelFailure(
        "bad_request",
        f"{provider} rejected the request (HTTP {status}). The server's log has the provider's "
        "explanation.",
        retryable=False,
        status=status,
    )


def _unreachable(handle: ModelHandle, provider: str) -> ModelFailure:
    return ModelFailure(
        "connection",
        f"{provider} could not be reached at {handle.endpoint_host}. Try again; if it keeps "
        f"happening, check {handle.base_url_setting} and the server's network access.",
        retryable=True,
    )


def _dropped(provider: str) -> ModelFailure:
    return ModelFailure(
        "connection",
        f"{provider} dropped the connection before the answer was complete. Try again.",
        retryable=True,
    )


def _aiohttp_connection_failure(exc: BaseException) -> aiohttp.ClientConnectionError | None:
    """The aiohttp connection error (not a timeout) behind `exc`, if any. openai's aiohttp
    transport reports every `ClientConnectionError`, a refused connection or a server that hung
    up included, as httpx's `ConnectTimeout`, which the client raises as a timeout."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; a cycle in one must not hang the turn
        if seen is None:
            break
        if isinstance(seen, aiohttp.ServerTimeoutError | TimeoutError):
            return None
        if isinstance(seen, aiohttp.ClientConnectionError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def provider_explanation(exc: BaseException, limit: int = 500) -> str:
    """The provider's own error text, for the log only (it may quote secrets: the log redacts)."""
    if not isinstance(exc, openai.APIStatusError):
        return ""
    body = exc.body
    text = ""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            text = str(error["message"])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
