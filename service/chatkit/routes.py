"""HTTP routes of the ChatKit protocol: `POST /chatkit/api`."""

from __future__ import annotations

from chatkit.server import NonStreamingResult
from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from service.auth import Authenticator
from service.chatkit.requests import parse_chatkit_request
from service.chatkit.server import ChatServer
from service.chatkit.streaming import SSE_HEADERS, StreamRelay


def chatkit_blueprint(server: ChatServer, authenticate: Authenticator) -> Blueprint:
    blueprint = Blueprint("chatkit", __name__)

    @blueprint.post("/chatkit/api")
    async def chatkit_api() -> ResponseReturnValue:
        context = await authenticate(request)
        body = await request.get_data(cache=False, as_text=False, parse_form_data=False)
        parsed = parse_chatkit_request(body if isinstance(body, bytes) else body.encode())
        result = await server.handle(parsed, context)
        if isinstance(result, NonStreamingResult):
            return Response(result.json, content_type="application/json")
        relay = StreamRelay(result)
        await relay.start()
        response = Response(relay.events(), headers=SSE_HEADERS)
        response.timeout = None  # Quart would otherwise cut the stream at 60 s, silently.
        return response

    return blueprint
