"""HTTP routes of the ChatKit protocol: `POST /chatkit/api`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from chatkit.server import NonStreamingResult, StreamingResult
from chatkit.types import is_streaming_req
from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from service.auth import Authenticator
from service.chatkit.errors import ConversationBusy, ServerDraining
from service.chatkit.failures import error_response
from service.chatkit.limits import AbuseLimits
from service.chatkit.limits.abuse import NO_SLOT
from service.chatkit.outcomes import TYPE_INVALID, TYPE_UNKNOWN, OutcomeRecorder
from service.chatkit.requests import parse_chatkit_request
from service.chatkit.server import ChatServer
from service.chatkit.streaming import SSE_HEADERS, StreamRelay
from service.lifecycle import Lifecycle
from service.observability.context import RequestLog, current_request, user_hash
from service.request_context import Turn


@dataclass(frozen=True, slots=True)
class StreamSettings:
    lifecycle: Lifecycle
    heartbeat_seconds: float


def chatkit_blueprint(
    server: ChatServer,
    authenticate: Authenticator,
    recorder: OutcomeRecorder,
    streams: StreamSettings,
    limits: AbuseLimits,
) -> Blueprint:
    blueprint = Blueprint("chatkit", __name__)

    @blueprint.post("/chatkit/api")
    async def chatkit_api() -> ResponseReturnValue:
        started = time.perf_counter()
        log = current_request()
        request_type = TYPE_UNKNOWN
        turn: Turn | None = None
        slot = NO_SLOT
        try:
            context = await authenticate(request)
            await limits.admit_request(context)
            if log is not None:
                log.tenant_id = context.tenant_id
                log.user_hash = user_hash(context.user_id)
            request_type = TYPE_INVALID
            body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
            body = body if isinstance(body, bytes) else body.encode()
            parsed = parse_chatkit_request(body)
            request_type = parsed.type
            thread_id = getattr(parsed.params, "thread_id", None)
            if log is not None:
                log.request_type = parsed.type
                log.thread_id = thread_id
            if not is_streaming_req(parsed):
                result = await server.handle(parsed, body, context)
                assert isinstance(result, NonStreamingResult)
                recorder.answered(request_type, started)
                return Response(result.json, content_type="application/json")
            if streams.lifecycle.draining:
                raise ServerDraining()
            slot = await limits.open_stream(context)
            turn = new_turn(request_type, thread_id, log)
            context = replace(context, turn=turn)
            source = await server.handle(parsed, body, context)
            assert isinstance(source, StreamingResult)
        except asyncio.CancelledError:  # the client left before the answer began
            slot.release()
            recorder.cancelled(request_type, started)
            raise
        except Exception as exc:
            slot.release()
            return error_response(recorder.failed(request_type, exc, started))
        relay = StreamRelay(
            source,
            observer=slot.observe(recorder.stream(turn)),
            lifecycle=streams.lifecycle,
            heartbeat_seconds=streams.heartbeat_seconds,
        )
        try:
            await relay.start()
        except ConversationBusy as busy:  # the client expects a stream: answer in one
            return sse_response(_single(recorder.error_event(busy)))
        except Exception as exc:
            return error_response(recorder.failures.classify(exc))
        return sse_response(relay.events())

    return blueprint


def new_turn(request_type: str, thread_id: str | None, log: RequestLog | None) -> Turn:
    turn = Turn(
        request_type=request_type,
        request_id=log.request_id if log is not None else "",
        thread_id=thread_id,
    )
    if log is not None:
        turn.on_thread(lambda thread_id: setattr(log, "thread_id", thread_id))
    return turn


def sse_response(events: AsyncIterator[bytes]) -> Response:
    response = Response(events, headers=SSE_HEADERS)
    response.timeout = None  # Quart would otherwise cut the stream at 60 s, silently.
    return response


async def _single(event: bytes) -> AsyncIterator[bytes]:
    yield event
