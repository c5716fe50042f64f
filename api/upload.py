"""Streaming multipart/form-data: read a request body part by part as it arrives.

Starlette's `request.form()` parses (and spools to disk) the whole body before a route
runs, so a size limit could only be checked afterwards. `MultipartReader` instead feeds
`request.stream()` chunk by chunk into python-multipart's push parser and hands out one
part at a time; the bytes of a part are an async iterator that pulls more of the body only
when asked. A consumer that stops early (a size limit) stops the reading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from api.errors import ApiError
from schema import words
from schema.text import clean_line

# Fields other than the file (there should be none) may take at most this much in all.
MAX_OTHER_BYTES = 64 * 1024
# Multipart framing around one file: boundaries, part headers, a few small fields.
ENVELOPE_BYTES = 64 * 1024

# The request body schema for OpenAPI (the route reads the body itself, so FastAPI cannot
# derive it): schemathesis and the docs see a multipart body with a binary `file`.
FILE_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                },
            },
        },
    },
}


class MalformedUpload(ApiError):
    def __init__(self, en: str | None = None) -> None:
        vi, malformed = words.both("error.bad_request.upload")
        super().__init__(400, "bad_request", vi, en or malformed)


class FieldsTooLarge(ApiError):
    def __init__(self) -> None:
        super().__init__(413, "too_large", *words.both("error.too_large.fields"),
                         headers={"Connection": "close"})


def missing_file_error() -> ApiError:
    vi, en = words.both("field.file.missing")
    return ApiError(422, "validation_error", *words.both("error.validation_error"),
                    fields=[{"field": "file", "message": vi, "message_en": en}])


def multipart_boundary(content_type: str | None) -> bytes | None:
    """The boundary of a multipart/form-data Content-Type, or None when it is not one."""
    ctype, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        return None
    return boundary


def _filename(raw: bytes) -> str:
    """A part's file name cleaned like any text; "" only for an empty file input (a name of
    nothing but control characters becomes "file")."""
    if not raw:
        return ""
    return clean_line(raw.decode("utf-8", "replace")) or "file"


@dataclass
class Part:
    """One part's headers: form field `name`, `filename` and declared `content_type`."""

    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    content_type: str | None = None


class MultipartReader:
    """Pull-based reader over a multipart/form-data body.

    `await next_part()` gives the next part's headers (skipping what is left of the current
    one) or None at the end; `data()` iterates the current part's bytes. Raises
    MalformedUpload on a broken or truncated body."""

    def __init__(self, stream: AsyncIterable[bytes], boundary: bytes) -> None:
        self._stream = stream.__aiter__()
        self._events: deque[tuple[str, Any]] = deque()
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, bytes] = {}
        self._finished = False  # the closing boundary was seen
        self._exhausted = False  # the body has no more bytes
        self._in_part = False
        self.consumed = 0  # body bytes read so far
        try:
            self._parser = MultipartParser(boundary, callbacks={
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            })
        except FormParserError as exc:  # e.g. an absurdly long boundary
            raise MalformedUpload(str(exc)) from None

    # --- parser callbacks (synchronous, during write) ---------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.strip()
        self._header_field = self._header_value = b""

    def _on_headers_finished(self) -> None:
        # Raw bytes in: parse_options_header reads them as latin-1 and gives bytes back,
        # which browsers send as UTF-8.
        _, options = parse_options_header(self._headers.get("content-disposition", b""))
        filename = options.get(b"filename")
        headers = {k: v.decode("utf-8", "replace") for k, v in self._headers.items()}
        self._events.append(("part", Part(
            headers=headers,
            name=options.get(b"name", b"").decode("utf-8", "replace"),
            filename=_filename(filename) if filename is not None else None,
            content_type=headers.get("content-type") or None,
        )))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", data[start:end]))

    def _on_part_end(self) -> None:
        self._events.append(("end_part", None))

    def _on_end(self) -> None:
        self._finished = True

    # --- pulling ------------------------------------------------------------------------------
    async def _pull(self) -> None:
        """Read one more chunk of the body into the parser. MalformedUpload at the end of a
        body that did not close properly."""
        if self._exhausted:
            raise MalformedUpload("Truncated multipart body")
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._exhausted = True
            if not self._finished:
                raise MalformedUpload("Truncated multipart body") from None
            return
        except ClientDisconnect:
            self._exhausted = True
            raise
        if not chunk:
            return
        self.consumed += len(chunk)
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise MalformedUpload(f"Malformed multipart body: {exc}") from None

    async def _event(self) -> tuple[str, Any] | None:
        """The next parser event; None once the closing boundary has been seen."""
        while not self._events:
            if self._finished:
                return None
            await self._pull()
        return self._events.popleft()

    async def next_part(self, skip_limit: int = MAX_OTHER_BYTES) -> Part | None:
        """Skip the rest of the current part (at most `skip_limit` bytes; FieldsTooLarge
        beyond) and return the next part's headers, or None at the end of the body."""
        skipped = 0
        while (event := await self._event()) is not None:
            kind, value = event
            if kind == "part":
                self._in_part = True
                return value
            if kind == "data":
                skipped += len(value)
                if skipped > skip_limit:
                    raise FieldsTooLarge()
            elif kind == "end_part":
                self._in_part = False
        return None

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes as they arrive; ends with the part."""
        while self._in_part:
            event = await self._event()
            if event is None:
                raise MalformedUpload("Truncated multipart body")
            kind, value = event
            if kind == "data":
                yield value
            elif kind == "end_part":
                self._in_part = False
            else:  # a new part without the end of this one: the parser never does this
                raise MalformedUpload()
