"""Turns a failed model call into a message a person can act on, without secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx2
import openai
from agents import MaxTurnsExceeded, ModelBehaviorError

from service.agents.factory import ModelHandle

# Provider messages can quote parts of keys ("Incorrect API key provided: sk-ab***yz").
_SECRET_LIKE = re.compile(r"(sk-[A-Za-z0-9_\-*]{4,}|AIza[0-9A-Za-z_\-]{10,}|Bearer\s+\S+)")


@dataclass(frozen=True, slots=True)
class ModelFailure:
    kind: str
    """Short class for metrics and logs: auth, permission, model_not_found, rate_limited, ..."""
    message: str
    """For the person in the chat: what happened and what to check."""
    retryable: bool
    status: int | None = None


def not_configured(handle: ModelHandle) -> ModelFailure:
    return ModelFailure("not_configured", handle.unavailable_reason or "", retryable=False)


def describe_model_failure(exc: BaseException, handle: ModelHandle) -> ModelFailure:
    provider = f"The model provider ({handle.provider})"
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
        return ModelFailure(
            "connection",
            f"{provider} could not be reached at {handle.endpoint_host}. Try again; if it keeps "
            f"happening, check {handle.base_url_setting} and the server's network access.",
            retryable=True,
        )
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return ModelFailure(
            "connection",
            f"{provider} dropped the connection before the answer was complete. Try again.",
            retryable=True,
        )
    if isinstance(exc, openai.APIStatusError):
        return _describe_status(exc, handle, provider)
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
    return ModelFailure(
        "internal",
        "The assistant failed to answer because of an internal error. Try again.",
        retryable=True,
    )


def _describe_status(
    exc: openai.APIStatusError, handle: ModelHandle, provider: str
) -> ModelFailure:
    status = exc.status_code
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
    detail = _scrub(_provider_message(exc))
    return ModelFailure(
        "bad_request",
        f"{provider} rejected the request (HTTP {status})" + (f": {detail}" if detail else "."),
        retryable=False,
        status=status,
    )


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return ""


def _scrub(text: str, limit: int = 300) -> str:
    text = _SECRET_LIKE.sub("[redacted]", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
