"""`create_app(settings)`: builds the pieces and wires them together. No business logic here."""

from __future__ import annotations

import logging
from dataclasses import replace

from agents import set_tracing_disabled
from chatkit.store import NotFoundError
from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from service import __version__
from service.agents.errors import describe_model_failure
from service.agents.factory import ModelHandle, create_model
from service.agents.support_agent import build_support_agent
from service.agents.titles import TitleWriter
from service.agents.tools import DEFAULT_TOOLS
from service.auth import AuthenticationError, create_authenticator
from service.chatkit.errors import ClientError
from service.chatkit.routes import chatkit_blueprint
from service.chatkit.server import ChatServer
from service.chatkit.store import create_store
from service.chatkit.store.base import StoreUnavailableError
from service.chatkit.store.startup import StoreStartup
from service.chatkit.streaming import RelayOptions
from service.health import health_blueprint
from service.lifecycle import Lifecycle
from service.observability.http import observe_requests
from service.observability.metrics import Metrics
from service.observability.metrics_route import metrics_blueprint
from service.observability.model_calls import MeteredModel
from service.observability.store_calls import meter_store
from service.observability.tool_calls import metered_tools
from service.playground import playground_blueprint
from service.settings import Settings

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def metered_model(handle: ModelHandle, metrics: Metrics) -> ModelHandle:
    if handle.model is None:
        return handle
    model = MeteredModel(
        handle.model,
        metrics,
        provider=handle.system,
        model=handle.name,
        classify_failure=lambda exc: describe_model_failure(exc, handle).kind,
    )
    return replace(handle, model=model)


def create_app(settings: Settings, *, lifecycle: Lifecycle | None = None) -> Quart:
    """`lifecycle`: the process's shutdown state, when the caller drives a drain (serving)."""
    set_tracing_disabled(not settings.llm_tracing_enabled)
    lifecycle = lifecycle or Lifecycle()
    metrics = Metrics(multiprocess_dir=settings.prometheus_multiproc_dir)

    store = meter_store(create_store(settings), metrics)
    model = metered_model(create_model(settings), metrics)
    metrics.build_info.labels(__version__, model.system, model.name).set(1)
    lifecycle.on_drain(lambda: metrics.draining.set(1))
    if model.unavailable_reason:
        logger.warning("model provider not ready: %s", model.unavailable_reason)
    server = ChatServer(
        store,
        model,
        build_support_agent(
            model,
            instructions=settings.agent_instructions,
            tools=metered_tools(DEFAULT_TOOLS, metrics),
        )
        if model.model is not None
        else None,
        titles=TitleWriter(model, timeout=settings.title_timeout_seconds)
        if settings.title_generation
        else None,
        history_limit=settings.history_max_items,
        max_turns=settings.max_agent_turns,
    )

    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.register_blueprint(health_blueprint({"store": store.ping}, lifecycle))
    relay_options = RelayOptions(metrics, lifecycle, settings.heartbeat_interval_seconds)
    app.register_blueprint(chatkit_blueprint(server, create_authenticator(settings), relay_options))
    if settings.metrics_enabled:
        app.register_blueprint(metrics_blueprint(metrics, port=settings.metrics_port))
    observe_requests(app, metrics)
    if settings.playground_on:
        app.register_blueprint(playground_blueprint(settings))

    startup = StoreStartup(
        store,
        migrate=settings.database_auto_migrate,
        retry_max_seconds=settings.database_startup_retry_max_seconds,
    )

    @app.before_serving
    async def open_store() -> None:
        await startup.start()  # an unreachable database: not ready, retried in the background

    @app.after_serving
    async def close_store() -> None:
        await startup.stop()

    @app.errorhandler(StoreUnavailableError)
    async def store_unavailable(error: StoreUnavailableError) -> Response:
        logger.warning("request failed, database unavailable: %s", error)
        response = error_response(
            503, "store_unavailable", "The database is unavailable. Try again in a moment."
        )
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(ClientError)
    async def client_error(error: ClientError) -> Response:
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(NotFoundError)
    async def not_found(error: NotFoundError) -> Response:
        return error_response(404, "not_found", str(error) or "not found")

    @app.errorhandler(AuthenticationError)
    async def unauthenticated(error: AuthenticationError) -> Response:
        return error_response(401, "unauthenticated", str(error))

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or error.name)

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        logger.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", "internal server error")

    return app
