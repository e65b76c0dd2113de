"""`GET /metrics`: a plain Quart route (mounting prometheus-client's ASGI app beside Quart would
disable the app's lifespan). With METRICS_PORT, only that port serves it, and nothing else."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, abort, request
from quart.typing import ResponseReturnValue

from service.observability.metrics import Metrics

METRICS_PATH = "/metrics"


def metrics_blueprint(metrics: Metrics, *, port: int | None = None) -> Blueprint:
    blueprint = Blueprint("metrics", __name__)

    @blueprint.get(METRICS_PATH)
    async def scrape() -> ResponseReturnValue:
        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    if port is not None:

        @blueprint.before_app_request
        async def keep_ports_apart() -> None:
            server = request.scope.get("server")
            on_metrics_port = server is not None and server[1] == port
            if on_metrics_port != (request.path == METRICS_PATH):
                abort(404)

    return blueprint
