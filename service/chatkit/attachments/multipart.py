"""The `file` field of a `multipart/form-data` body, streamed as it arrives (python-multipart),
so memory does not grow with the size of the file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from service.chatkit.attachments.errors import BadUpload

FIELD = "file"


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    content_type: str = ""


class MultipartFile:
    """`await open()` finds the `file` part; `chunks()` then yields its bytes."""

    def __init__(self, body: AsyncIterator[bytes], content_type: str | None) -> None:
        kind, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise BadUpload("send the file as multipart/form-data with a field named 'file'")
        self._body = body
        self._events: list[tuple[str, bytes, _Part]] = []
        self._part = _Part()
        self._field_name = b""
        self._field_value = b""
        self._ended = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_end": self._end,
            },
        )
        self.filename = ""
        self.content_type = ""

    # --- parser callbacks (synchronous) -------------------------------------------------------

    def _part_begin(self) -> None:
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._field_value += data[start:end]

    def _header_end(self) -> None:
        name = self._field_name.decode("latin-1").strip().lower()
        self._part.headers[name] = self._field_value.decode("utf-8", "replace").strip()
        self._field_name = self._field_value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._part.headers.get("content-disposition", ""))
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        self._part.filename = options.get(b"filename", b"").decode("utf-8", "replace")
        self._part.content_type = self._part.headers.get("content-type", "")
        self._events.append(("headers", b"", self._part))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append(("data", bytes(data[start:end]), self._part))

    def _part_end(self) -> None:
        self._events.append(("end", b"", self._part))

    def _end(self) -> None:
        self._ended = True

    # --- async side ---------------------------------------------------------------------------

    async def _events_of_body(self) -> AsyncIterator[tuple[str, bytes, _Part]]:
        async for chunk in self._body:
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise BadUpload("the multipart body is malformed") from exc
            events, self._events = self._events, []
            for event in events:
                yield event
        if not self._ended:
            raise BadUpload("the upload ended before the multipart body was complete")

    async def open(self) -> None:
        self._stream = self._events_of_body()
        # Events are queued per body chunk, so each carries its own part: by the time an event
        # is read here the parser may already be in a later part.
        async for kind, _, part in self._stream:
            if kind == "headers" and part.name == FIELD:
                self._file_part = part
                self.filename = part.filename or "file"
                self.content_type = part.content_type
                return
        raise BadUpload("the form has no field named 'file'")

    async def chunks(self) -> AsyncIterator[bytes]:
        async for kind, data, part in self._stream:
            if part is not self._file_part:
                continue
            if kind == "data":
                yield data
            elif kind == "end":
                break
        else:
            raise BadUpload("the upload ended before the file was complete")
        # Read the rest of the body so a truncated form is refused, not half-accepted.
        async for _ in self._stream:
            pass
