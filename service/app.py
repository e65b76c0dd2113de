"""`create_app(settings)`: builds the pieces and wires them together. No business logic here."""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx2
from agents import Model, set_tracing_disabled
from quart import Quart, Response

from service import __version__
from service.agents.context import TicketRoles
from service.agents.factory import ModelHandle, create_model, model_http_client
from service.agents.model_choice import ModelChoice, with_default_model
from service.agents.support_agent import build_support_agent
from service.agents.titles import TitleWriter
from service.agents.tools import DEFAULT_TOOLS, available_tools
from service.agents.tools.invoices import invoice_client
from service.agents.tools.mcp_servers import MCPToolbox, mcp_secrets
from service.auth import create_authenticator
from service.auth.cors import allow_cross_origin
from service.auth.refusals import close_connections_after_refusals
from service.chatkit.attachments.factory import create_attachments
from service.chatkit.attachments.fresh import keep_attachments_fresh
from service.chatkit.attachments.store import FileAttachmentStore
from service.chatkit.attachments.transcription import create_transcriber
from service.chatkit.failures import FailureTable, error_response, log_failure
from service.chatkit.limits import TokenBudgetHooks, create_limits
from service.chatkit.outcomes import OutcomeRecorder
from service.chatkit.routes import StreamSettings, chatkit_blueprint
from service.chatkit.server import ChatServer
from service.chatkit.store import create_store
from service.chatkit.store.startup import StoreStartup
from service.chatkit.uploads import body_limited_request, uploads_blueprint
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
from service.settings import Settings, parse_mcp_servers
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


def pickable_models(
    settings: Settings,
    default: str,
    metrics: Metrics,
    failures: FailureTable,
    http_client: httpx2.AsyncClient,
) -> dict[str, Model]:
    """MODEL_ALLOWLIST's models besides the `default` one, metered like it, by name."""
    picked: dict[str, Model] = {}
    for name in settings.allowed_models:
        if name == default:
            continue
        handle = metered_model(
            create_model(with_default_model(settings, name), http_client), metrics, failures
        )
        if handle.model is not None:
            picked[name] = handle.model
    return picked


def create_app(settings: Settings, *, lifecycle: Lifecycle | None = None) -> Quart:
    """`lifecycle`: the process's shutdown state, when the caller drives a drain (serving)."""
    set_tracing_disabled(not settings.llm_tracing_enabled)
    lifecycle = lifecycle or Lifecycle()
    metrics = Metrics(multiprocess_dir=settings.prometheus_multiproc_dir)

    store = meter_store(create_store(settings), metrics)
    http_client = model_http_client(settings)
    model = create_model(settings, http_client)
    failures = FailureTable(model)
    model = metered_model(model, metrics, failures)
    metrics.build_info.labels(__version__, model.system, model.name).set(1)
    lifecycle.on_drain(lambda: metrics.draining.set(1))
    if model.unavailable_reason:
        logger.warning("model provider not ready: %s", model.unavailable_reason)
    limits = create_limits(settings, metrics)
    attachments = create_attachments(settings)
    attachment_store = FileAttachmentStore(attachments) if attachments is not None else None
    if attachments is not None:  # previews re-signed, bucket uploads settled, on every load
        store = keep_attachments_fresh(
            store, attachments, metrics.upload_counter(attachments.backend)
        )
    authenticate = create_authenticator(settings, metrics=metrics)
    invoices = invoice_client(settings)
    mcp = MCPToolbox(parse_mcp_servers(settings.mcp_servers), mcp_secrets(settings))
    server = ChatServer(
        store,
        model,
        build_support_agent(
            model,
            instructions=settings.agent_instructions,
            tools=metered_tools(available_tools(invoices), metrics),
        )
        if model.model is not None
        else None,
        failures=failures,
        titles=TitleWriter(model, timeout=settings.title_timeout_seconds)
        if settings.title_generation
        else None,
        history_limit=settings.history_max_items,
        max_turns=settings.max_agent_turns,
        run_hooks=TokenBudgetHooks(limits) if limits.budget_enabled else None,
        attachment_store=attachment_store,
        transcriber=create_transcriber(settings),
        ticket_roles=TicketRoles(*settings.ticket_roles),
        model_choice=ModelChoice(
            model.name, pickable_models(settings, model.name, metrics, failures, http_client)
        ),
    )

    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    allow_cross_origin(app, settings.cors_origins, dev_headers="dev" in settings.auth_modes)
    close_connections_after_refusals(app)
    if attachments is not None and attachment_store is not None:
        app.request_class = body_limited_request(settings.attachments_max_bytes)
        app.register_blueprint(
            uploads_blueprint(
                attachments, attachment_store, store, authenticate, failures, metrics, limits
            )
        )

        @app.before_serving
        async def start_attachments() -> None:
            attachments.blobs.start()  # signing and bucket CORS, in the background

        @app.after_serving
        async def close_attachments() -> None:
            await attachments.blobs.close()

    app.register_blueprint(health_blueprint({"store": store.ping}, lifecycle))
    app.register_blueprint(
        chatkit_blueprint(
            server,
            authenticate,
            OutcomeRecorder(metrics, failures),
            StreamSettings(lifecycle, settings.heartbeat_interval_seconds),
            limits,
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
        # Lazy validators built now, on the same HTTP stack; the provider is not called.
        await warm_up(model.api, DEFAULT_TOOLS, model_http_client(settings))

    @app.after_serving
    async def close_store() -> None:
        await startup.stop()

    @app.after_serving
    async def close_model_connections() -> None:
        await http_client.aclose()

    if invoices is not None:

        @app.after_serving
        async def close_invoices() -> None:
            await invoices.aclose()

    if mcp.servers:

        @app.before_serving
        async def connect_mcp_servers() -> None:
            tools = metered_tools(await mcp.start(), metrics)
            if server.agent is not None:  # offered from the first turn on
                server.agent.tools.extend(tools)

        @app.after_serving
        async def disconnect_mcp_servers() -> None:
            await mcp.stop()

    @app.errorhandler(Exception)
    async def failed(error: Exception) -> Response:
        """Failures outside the ChatKit route (an unknown URL, a wrong method, ...)."""
        failure = failures.classify(error)
        log_failure(failure, error)
        return error_response(failure)

    return app
