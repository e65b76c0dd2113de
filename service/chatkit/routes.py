"""HTTP routes of the ChatKit protocol: `POST /chatkit/api`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from chatkit.server import NonStreamingResult
from chatkit.types import is_streaming_req
from quart import Blueprint, Response, jsonify, request
from quart.typing import ResponseReturnValue

from service.auth import Authenticator
from service.chatkit.outcomes import (
    CANCELLED,
    OK,
    REJECTED,
    TYPE_INVALID,
    TYPE_UNKNOWN,
    classify_failure,
    report_request,
)
from service.chatkit.requests import parse_chatkit_request
from service.chatkit.server import ChatServer
from service.chatkit.streaming import SSE_HEADERS, RelayOptions, StreamRelay
from service.observability.context import current_request, user_hash

DRAINING_MESSAGE = "This server is shutting down; send the message again in a moment."


def draining_response() -> Response:
    response = jsonify({"error": {"code": "draining", "message": DRAINING_MESSAGE}})
    response.status_code = 503
    response.headers["Retry-After"] = "1"
    return response


def chatkit_blueprint(
    server: ChatServer, authenticate: Authenticator, relay_options: RelayOptions
) -> Blueprint:
    blueprint = Blueprint("chatkit", __name__)
    metrics = relay_options.metrics

    @blueprint.post("/chatkit/api")
    async def chatkit_api() -> ResponseReturnValue:
        started = time.perf_counter()
        log = current_request()
        request_type = TYPE_UNKNOWN

        def report(outcome: str, error_type: str = "") -> None:
            report_request(
                metrics, request_type, outcome, error_type, time.perf_counter() - started
            )

        try:
            context = await authenticate(request)
            if log is not None:
                context = replace(context, request_id=log.request_id)
                log.tenant_id = context.tenant_id
                log.user_hash = user_hash(context.user_id)
            request_type = TYPE_INVALID
            body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
            parsed = parse_chatkit_request(body if isinstance(body, bytes) else body.encode())
            request_type = parsed.type
            if log is not None:
                log.request_type = parsed.type
                log.thread_id = getattr(parsed.params, "thread_id", None)
            if is_streaming_req(parsed) and relay_options.lifecycle.draining:
                report(REJECTED, "draining")
                return draining_response()
            result = await server.handle(parsed, context)
            if isinstance(result, NonStreamingResult):
                report(OK)
                return Response(result.json, content_type="application/json")
            relay = StreamRelay(result, request_type=request_type, options=relay_options)
            await relay.start()
        except asyncio.CancelledError:  # the client left before the answer began
            report(CANCELLED)
            raise
        except Exception as exc:
            report(*classify_failure(exc, log))
            raise
        response = Response(relay.events(), headers=SSE_HEADERS)
        response.timeout = None  # Quart would otherwise cut the stream at 60 s, silently.
        return response

    return blueprint
