"""Probes: `/healthz` says the process is alive; `/readyz` says it can serve conversations.

Readiness checks the service's own dependencies (the store, attachment storage) and whether the
process is draining; never the model provider, whose outage would pull every pod at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from quart import Blueprint, Response, jsonify
from quart.typing import ResponseReturnValue

from service.lifecycle import Lifecycle

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises otherwise."""


def health_blueprint(
    checks: Mapping[str, ReadinessCheck], lifecycle: Lifecycle, *, check_timeout: float = 2.0
) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    async def healthz() -> ResponseReturnValue:
        return jsonify({"status": "ok"})

    async def failure(check: ReadinessCheck) -> str | None:
        try:
            await asyncio.wait_for(check(), check_timeout)
        except TimeoutError:
            return f"no answer within {check_timeout:g}s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return None

    @blueprint.get("/readyz")
    async def readyz() -> ResponseReturnValue:
        causes: dict[str, str] = {}
        if lifecycle.draining:
            causes["draining"] = "the server is shutting down"
        else:
            names = list(checks)
            results = await asyncio.gather(*(failure(checks[name]) for name in names))
            causes = {name: cause for name, cause in zip(names, results, strict=True) if cause}
        if causes:
            response: Response = jsonify({"status": "not ready", "causes": causes})
            response.status_code = 503
            return response
        return jsonify({"status": "ready"})

    return blueprint
