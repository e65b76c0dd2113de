"""`create_app(settings)`: builds the pieces and wires them together. No business logic here."""

from __future__ import annotations

import logging

from agents import set_tracing_disabled
from chatkit.store import NotFoundError
from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from service.agents.factory import create_model
from service.agents.support_agent import build_support_agent
from service.agents.titles import TitleWriter
from service.agents.tools import DEFAULT_TOOLS
from service.auth import AuthenticationError, create_authenticator
from service.chatkit.errors import ClientError
from service.chatkit.routes import chatkit_blueprint
from service.chatkit.server import ChatServer
from service.chatkit.store import create_store
from service.health import health_blueprint
from service.playground import playground_blueprint
from service.settings import Settings

logger = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> Response:
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def create_app(settings: Settings) -> Quart:
    set_tracing_disabled(not settings.llm_tracing_enabled)

    store = create_store(settings)
    model = create_model(settings)
    if model.unavailable_reason:
        logger.warning("model provider not ready: %s", model.unavailable_reason)
    server = ChatServer(
        store,
        model,
        build_support_agent(model, instructions=settings.agent_instructions, tools=DEFAULT_TOOLS)
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
    app.register_blueprint(health_blueprint(store))
    app.register_blueprint(chatkit_blueprint(server, create_authenticator(settings)))
    if settings.playground_on:
        app.register_blueprint(playground_blueprint(settings))

    @app.before_serving
    async def open_store() -> None:
        status = await store.open(migrate=settings.database_auto_migrate)
        if status.applied:
            logger.info("database schema migrated to version %s", status.current)

    @app.after_serving
    async def close_store() -> None:
        await store.close()

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
