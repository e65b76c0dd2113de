"""Running an authenticator on a request with given headers, as the routes do."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart, request

from service.auth import AuthenticationError, Authenticator, create_authenticator
from service.auth.fetch import JsonFetcher, fetch_json
from service.observability.metrics import Metrics
from service.request_context import RequestContext
from service.settings import load_settings


def authenticator(
    *, metrics: Metrics | None = None, fetch: JsonFetcher = fetch_json, **settings: Any
) -> Authenticator:
    return create_authenticator(
        load_settings(_env_file=None, **settings), metrics=metrics, fetch=fetch
    )


async def identify(authenticate: Authenticator, headers: dict[str, str]) -> RequestContext:
    app = Quart(__name__)
    async with app.test_request_context("/chatkit/api", method="POST", headers=headers):
        return await authenticate(request)


async def refusal(
    authenticate: Authenticator, headers: dict[str, str], *, secret: str | None = None
) -> AuthenticationError:
    """The refusal of a request; its message is one line and never quotes `secret` (the
    token)."""
    with pytest.raises(AuthenticationError) as refused:
        await identify(authenticate, headers)
    message = str(refused.value)
    assert message and "\n" not in message
    if secret:
        assert secret not in message
        assert not [part for part in secret.split(".") if part and part in message]
    return refused.value


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
