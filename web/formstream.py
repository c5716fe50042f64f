"""The citizen pages' plain (no-JavaScript) forms, read while the body arrives.

`request.form()` would parse and spool the whole body before a size limit could apply.
`read_form` instead runs api.upload.MultipartReader over `request.stream()`: each file
part goes straight to `store_attachment` (size limit by sniffed type), text fields
are capped at the reader's 64 KB in all. After a refused file the rest of the body is still
read, without storing anything, for at most one more file's worth of bytes: the fields
after the file input keep their values and the browser gets the answer instead of a reset
connection. Past that budget reading stops and the answer says `Connection: close`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import Request
from starlette.requests import ClientDisconnect

from api import imagecheck
from api.errors import ApiError
from api.infra import Infra
from api.services.attachments import (
    AttachmentTooLarge,
    AttachmentTypeRejected,
    store_attachment,
)
from api.upload import (
    ENVELOPE_BYTES,
    MAX_OTHER_BYTES,
    FieldsTooLarge,
    MalformedUpload,
    MultipartReader,
    multipart_boundary,
)
from schema import words
from schema.reports import MAX_ATTACHMENTS

log = structlog.get_logger(__name__)

URLENCODED = "application/x-www-form-urlencoded"


class _Stop(Exception):
    """Stop reading the body (a budget is spent)."""


@dataclass
class StreamedForm:
    """What a plain form sent: text fields, the files stored from it, and what went wrong."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    stored: list[dict[str, Any]] = field(default_factory=list)
    file_error: str | None = None  # message for the photo field (first refused file)
    file_status: int | None = None  # 413 (too large) or 415 (not a photo/video)
    fields_too_large: bool = False  # text fields over MAX_OTHER_BYTES
    broken: bool = False  # malformed body or the client went away
    complete: bool = True  # the whole body was read (else the connection must close)

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    @property
    def status(self) -> int:
        """The status for an answer that shows this form's problems."""
        if self.broken:
            return 400
        if self.fields_too_large:
            return 413
        return self.file_status or 422

    def finish(self, response: Any) -> Any:
        """Mark `response` so that the connection closes when the body was not all read."""
        if not self.complete:
            response.headers["Connection"] = "close"
        return response


def _size(limit: int) -> str:
    if limit >= 1024 * 1024:
        return f"{limit / (1024 * 1024):.0f} MB"
    return f"{max(1, round(limit / 1024))} KB"


def _message(exc: ApiError, lang: str, filename: str | None) -> str:
    """The file's error for the photo field, Vietnamese unless English was asked for."""
    limit = exc.extra.get("limit")
    if isinstance(limit, int):
        text = words.t(lang, "field.file.too_large", size=_size(limit))
    else:
        text = exc.en if lang == "en" else exc.vi
    return f"{text}: {filename}" if filename else text


async def _read_urlencoded(request: Request, form: StreamedForm) -> None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_OTHER_BYTES:
            form.fields_too_large = True
            form.complete = False
            return
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        form.fields.setdefault(key, []).append(value)


async def read_form(
    request: Request,
    infra: Infra,
    lang: str,
    file_field: str = "files",
    max_files: int = MAX_ATTACHMENTS,
) -> StreamedForm:
    """Read a plain form post part by part; never raises for a bad or oversized body
    (the result says what happened). At most `max_files` files are stored, with `infra`'s
    storage and database."""
    settings = infra.settings
    per_file = max(settings.max_image_bytes, settings.max_video_bytes)
    form = StreamedForm()
    content_type = request.headers.get("content-type") or ""
    boundary = multipart_boundary(content_type)
    try:
        if boundary is None:
            if content_type.split(";")[0].strip().lower() == URLENCODED:
                await _read_urlencoded(request, form)
            return form
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_files * per_file + ENVELOPE_BYTES:
            # More than any allowed set of files: store none, still read the fields.
            form.file_error = _message(AttachmentTooLarge(per_file), lang, None)
            form.file_status = 413
        await _read_parts(infra, form, MultipartReader(request.stream(), boundary),
                          file_field, max_files, per_file, lang)
    except _Stop:
        form.complete = False
    except FieldsTooLarge:
        form.fields_too_large = True
        form.complete = False
    except (MalformedUpload, ClientDisconnect) as exc:
        log.info("plain form unreadable", error=str(exc) or type(exc).__name__)
        form.broken = True
        form.complete = False
    return form


async def _read_parts(
    infra: Infra, form: StreamedForm, reader: MultipartReader, file_field: str,
    max_files: int, per_file: int, lang: str,
) -> None:
    text_bytes = 0
    drain_from: int | None = None  # body offset where discarding began

    async def drain() -> None:
        """Read and discard the rest of the current part, within the budget."""
        nonlocal drain_from
        if drain_from is None:
            drain_from = reader.consumed
        async for _ in reader.data():
            if reader.consumed - drain_from > per_file + ENVELOPE_BYTES:
                raise _Stop()

    while (part := await reader.next_part()) is not None:
        if part.name == file_field and part.filename is not None:
            if not part.filename:  # a file input left empty
                await drain()
                continue
            if form.file_error is None and len(form.stored) >= max_files:
                form.file_error = words.t(lang, "field.file.too_many", max=max_files)
                log.info("plain form: too many files", max_files=max_files)
            if form.file_error is not None:
                await drain()
                continue
            try:
                out = await store_attachment(infra.settings, infra.db, infra.storage,
                                             reader.data(), part.filename, part.content_type)
            except AttachmentTooLarge as exc:
                form.file_error, form.file_status = _message(exc, lang, part.filename), 413
                await drain()
                continue
            except AttachmentTypeRejected as exc:
                form.file_error, form.file_status = _message(exc, lang, part.filename), 415
                await drain()
                continue
            except (imagecheck.ImageTooLarge, imagecheck.ImageUnreadable) as exc:
                form.file_error, form.file_status = _message(exc, lang, part.filename), 422
                await drain()
                continue
            data = out.model_dump(mode="json")
            data["filename"] = part.filename
            form.stored.append(data)
            continue
        # A text field (or a file under an unexpected name): capped like the API's fields.
        value = b""
        async for chunk in reader.data():
            text_bytes += len(chunk)
            if text_bytes > MAX_OTHER_BYTES:
                raise FieldsTooLarge()
            value += chunk
        if part.filename is None:
            form.fields.setdefault(part.name, []).append(value.decode("utf-8", "replace"))
