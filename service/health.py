"""Probes: `/healthz` says the process is alive; `/readyz` says it can serve conversations."""

from __future__ import annotations

import asyncio
import logging

from quart import Blueprint, Response, jsonify
from quart.typing import ResponseReturnValue

from service.chatkit.store import ChatStore

logger = logging.getLogger(__name__)


def health_blueprint(store: ChatStore, *, check_timeout: float = 2.0) -> Blueprint:
    blueprint = Blueprint("health", __name__)

    @blueprint.get("/healthz")
    async def healthz() -> ResponseReturnValue:
        return jsonify({"status": "ok"})

    @blueprint.get("/readyz")
    async def readyz() -> ResponseReturnValue:
        causes: dict[str, str] = {}
        try:
            await asyncio.wait_for(store.ping(), check_timeout)
        except Exception as exc:
            causes["store"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if causes:
            response: Response = jsonify({"status": "not ready", "causes": causes})
            response.status_code = 503
            return response
        return jsonify({"status": "ready"})

    return blueprint
