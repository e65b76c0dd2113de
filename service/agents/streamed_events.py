"""Streamed model output, read with one pydantic validation per event.

The openai client turns each streamed event into a model with its loose `construct_type`: a
Responses event by trying the ~60 members of the `ResponseStreamEvent` union in turn (about
75 µs an event), a Chat Completions chunk field by field in Python (about 200 µs): together the
largest single cost of a turn under load. Here a Responses event is validated from its JSON
bytes by pydantic with the union's `type` tag as discriminator (about 2 µs), a chunk with
`ChatCompletionChunk.model_validate_json` (about 5 µs).

`StreamParsingOpenAI` is an `AsyncOpenAI` whose streamed calls, as the Agents SDK makes them
(`responses.with_streaming_response.create(stream=True)`, `chat.completions.create(stream=True)`),
yield these events; everything else is the stock client. Errors are the client's own: an
`error` payload raises `APIError`, a timeout `APITimeoutError`, a broken connection
`APIConnectionError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from functools import cached_property
from types import TracebackType
from typing import Annotated, Any, Generic, TypeVar, Union, get_args

import httpx2
import pydantic
from openai import APIConnectionError, APIError, APITimeoutError, AsyncOpenAI, AsyncStream
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.resources.responses import AsyncResponses
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

logger = logging.getLogger(__name__)

T = TypeVar("T")

_VARIANTS: tuple[type[pydantic.BaseModel], ...] = get_args(get_args(ResponseStreamEvent)[0])
_BY_TYPE: dict[str, type[pydantic.BaseModel]] = {
    get_args(variant.model_fields["type"].annotation)[0]: variant for variant in _VARIANTS
}
_EVENT: pydantic.TypeAdapter[ResponseStreamEvent] = pydantic.TypeAdapter(
    Annotated[Union[_VARIANTS], pydantic.Field(discriminator="type")]  # type: ignore[arg-type]  # noqa: UP007
)


def parse_event(data: str) -> ResponseStreamEvent | None:
    """A Responses event from its JSON; None for a type this client does not know (the Agents
    SDK would pass it over too). A known type whose fields do not validate is built loosely,
    as the openai client does."""
    try:
        return _EVENT.validate_json(data)
    except pydantic.ValidationError:
        payload = json.loads(data)
        kind = payload.get("type") if isinstance(payload, dict) else None
        variant = _BY_TYPE.get(kind) if isinstance(kind, str) else None
        if variant is None:
            logger.debug("skipping a model stream event of unknown type")
            return None
        event: ResponseStreamEvent = variant.model_construct(**payload)  # type: ignore[assignment]
        return event


def parse_chunk(data: str) -> ChatCompletionChunk | None:
    """A Chat Completions chunk from its JSON; built loosely, as the openai client does, when
    a provider leaves out or bends a field."""
    try:
        return ChatCompletionChunk.model_validate_json(data)
    except pydantic.ValidationError:
        payload = json.loads(data)
        if not isinstance(payload, dict):
            return None
        return ChatCompletionChunk.model_construct(**payload)


class StreamedEvents(Generic[T]):
    """The events of one streamed response, from its server-sent events."""

    def __init__(self, response: httpx2.Response, parse: Callable[[str], T | None]) -> None:
        self.response = response
        self._parse = parse
        self._events = self._read()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._events

    async def __anext__(self) -> T:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()
        await self.response.aclose()

    async def _read(self) -> AsyncGenerator[T, None]:
        async for data in self._data():
            if data.startswith("[DONE]"):
                return
            if '"error"' in data:
                _raise_if_error(data, self.response.request)
            event = self._parse(data)
            if event is not None:
                yield event

    async def _data(self) -> AsyncIterator[str]:
        """The `data` of each server-sent event (its lines joined by newlines)."""
        lines: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                if not line:
                    if lines:
                        yield "\n".join(lines)
                        lines.clear()
                elif line.startswith("data:"):
                    value = line[5:]
                    lines.append(value[1:] if value.startswith(" ") else value)
            if lines:
                yield "\n".join(lines)
        except httpx2.TimeoutException as exc:
            raise APITimeoutError(request=self.response.request) from exc
        except httpx2.RequestError as exc:
            raise APIConnectionError(request=self.response.request) from exc


def _raise_if_error(data: str, request: httpx2.Request) -> None:
    payload = json.loads(data)
    error = payload.get("error") if isinstance(payload, dict) else None
    if not error:
        return
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = "An error occurred during streaming"
    raise APIError(message=message, request=request, body=error)


# --- Responses: the Agents SDK streams through `with_streaming_response` ----------------------

_PASSED_AS_GIVEN = ("input", "tools")


class _EventsResponse:
    """`AsyncAPIResponse` as the Agents SDK uses it, parsing a stream into `StreamedEvents`."""

    def __init__(self, api_response: Any, streamed: bool) -> None:
        self._api_response = api_response
        self._streamed = streamed

    @property
    def request_id(self) -> str | None:
        request_id: str | None = self._api_response.request_id
        return request_id

    async def parse(self) -> Any:
        if self._streamed:
            return StreamedEvents(self._api_response.http_response, parse_event)
        return await self._api_response.parse()


class _EventsResponseContext:
    def __init__(self, opened: Any, streamed: bool) -> None:
        self._opened = opened
        self._streamed = streamed

    async def __aenter__(self) -> _EventsResponse:
        return _EventsResponse(await self._opened.__aenter__(), self._streamed)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._opened.__aexit__(exc_type, exc, traceback)


class _StreamingResponses:
    """`responses.with_streaming_response`, with `create` reading streams as `StreamedEvents`."""

    def __init__(self, stock: Any) -> None:
        self._stock = stock

    def create(self, **kwargs: Any) -> _EventsResponseContext:
        return _EventsResponseContext(self._stock.create(**kwargs), bool(kwargs.get("stream")))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stock, name)


class _Responses(AsyncResponses):
    async def create(self, **kwargs: Any) -> Any:
        """`input` and `tools` go out as given. The client's transform of them (a recursive walk
        of their TypedDict annotations, about 8 % of a turn's CPU under load) leaves them as
        they are: the Responses params declare no aliases or formats, and the client's JSON
        encoder dumps a pydantic item exactly as the transform would."""
        given = {
            key: kwargs.pop(key) for key in _PASSED_AS_GIVEN if isinstance(kwargs.get(key), list)
        }
        if given:
            kwargs["extra_body"] = {**given, **(kwargs.get("extra_body") or {})}
        return await super().create(**kwargs)

    @cached_property
    def with_streaming_response(self) -> Any:
        return _StreamingResponses(super().with_streaming_response)


# --- Chat Completions: the Agents SDK streams through `create(stream=True)` -------------------


class _Completions(AsyncCompletions):
    async def create(self, **kwargs: Any) -> Any:
        result = await super().create(**kwargs)
        if isinstance(result, AsyncStream):  # not iterated: its response body is still unread
            return StreamedEvents(result.response, parse_chunk)
        return result


class _Chat(AsyncChat):
    def __init__(self, client: AsyncOpenAI) -> None:
        super().__init__(client)
        self.openai_client = client

    @cached_property
    def completions(self) -> AsyncCompletions:
        return _Completions(self.openai_client)


class StreamParsingOpenAI(AsyncOpenAI):
    """`AsyncOpenAI` whose streamed calls parse events with `parse_event` / `parse_chunk`."""

    @cached_property
    def responses(self) -> AsyncResponses:
        return _Responses(self)

    @cached_property
    def chat(self) -> AsyncChat:
        return _Chat(self)
