"""`create_app(settings)`: builds the pieces and wires them together. No business logic here."""

from __future__ import annotations

import logging
from dataclasses import replace

from agents import set_tracing_disabled
from quart import Quart, Response

from service import __version__
from service.agents.factory import ModelHandle, create_model
from service.agents.support_agent import build_support_agent
from service.agents.titles import TitleWriter
from service.agents.tools import DEFAULT_TOOLS
from service.auth import create_authenticator
from service.chatkit.failures import FailureTable, error_response, log_failure
from service.chatkit.outcomes import OutcomeRecorder
from service.chatkit.routes import StreamSettings, chatkit_blueprint
from service.chatkit.server import ChatServer
from service.chatkit.store import create_store
from service.chatkit.store.startup import StoreStartup
from service.health import health_blueprint
from service.lifecycle import Lifecycle
from service.observability.http import observe_requests
from service.observability.metrics import Metrics
from service.observability.metrics_route import metrics_blueprint
from service.observability.model_calls import MeteredModel
from service.observability.redaction import Redactor
from service.observability.store_calls import meter_store
from service.observability.tool_calls import metered_tools
from service.playground import playground_blueprint
from service.settings import Settings
from service.warmup import warm_up

logger = logging.getLogger(__name__)


def metered_model(handle: ModelHandle, metrics: Metrics, failures: FailureTable) -> ModelHandle:
    if handle.model is None:
        return handle
    model = MeteredModel(
        handle.model,
        metrics,
        provider=handle.system,
        model=handle.name,
        classify_failure=lambda exc: failures.classify(exc).error_type,
    )
    return replace(handle, model=model)


def create_app(settings: Settings, *, lifecycle: Lifecycle | None = None) -> Quart:
    """`lifecycle`: the process's shutdown state, when the caller drives a drain (serving)."""
    set_tracing_disabled(not settings.llm_tracing_enabled)
    lifecycle = lifecycle or Lifecycle()
    metrics = Metrics(multiprocess_dir=settings.prometheus_multiproc_dir)

    store = meter_store(create_store(settings), metrics)
    model = create_model(settings)
    failures = FailureTable(model)
    model = metered_model(model, metrics, failures)
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
        failures=failures,
        titles=TitleWriter(model, timeout=settings.title_timeout_seconds)
        if settings.title_generation
        else None,
        history_limit=settings.history_max_items,
        max_turns=settings.max_agent_turns,
    )

    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.register_blueprint(health_blueprint({"store": store.ping}, lifecycle))
    app.register_blueprint(
        chatkit_blueprint(
            server,
            create_authenticator(settings),
            OutcomeRecorder(metrics, failures),
            StreamSettings(lifecycle, settings.heartbeat_interval_seconds),
        )
    )
    if settings.metrics_enabled:
        app.register_blueprint(metrics_blueprint(metrics, port=settings.metrics_port))
    observe_requests(app, metrics, Redactor.for_settings(settings))
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

    @app.before_serving
    async def warm_up_first_turn() -> None:
        await warm_up(model.api, DEFAULT_TOOLS)  # lazy validators built now; provider not called

    @app.after_serving
    async def close_store() -> None:
        await startup.stop()

    @app.errorhandler(Exception)
    async def failed(error: Exception) -> Response:
        """Failures outside the ChatKit route (an unknown URL, a wrong method, ...)."""
        failure = failures.classify(error)
        log_failure(failure, error)
        return error_response(failure)

    return app
