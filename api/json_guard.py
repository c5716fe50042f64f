"""Pure ASGI middleware: a JSON request body is bounded in size and nesting depth before
FastAPI parses it (core/jsonbound.py says why).

Over the size, 413 `body_too_large`; nested too deeply, 422 `json_too_deep`; both in the
caller's language, as `{error, detail}` (Open311 routes: GeoReport's `[{code,
description}]`). Other bodies (forms, uploads) pass untouched and still stream.
"""

from __future__ import annotations

import email.message
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.errors import ApiError, request_lang
from core import jsonbound
from schema import words

OPEN311_PREFIX = "/open311/"


def _is_json(scope: dict) -> bool:
    """Whether FastAPI will parse this body as JSON, decided as it decides
    (fastapi/routing.py): no Content-Type at all, or one whose type, read by
    `email.message` (which strips what Python counts as white space, NBSP included), is
    application/json or application/*+json. A narrower byte-wise reading let
    `application/json\\xa0` past the guard to the parser: a tester's finding."""
    value = Headers(scope=scope).get("content-type")
    if not value:
        return True
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


def refusal(exc: jsonbound.JsonRefused) -> ApiError:
    """The answer for a body over a bound of core/jsonbound.py."""
    if exc.reason == "too_large":
        kib = exc.limit // 1024
        return ApiError(413, "body_too_large", *words.both("error.body_too_large", kib=kib))
    return ApiError(422, "json_too_deep", *words.both("error.json_too_deep", limit=exc.limit))


class JsonBodyGuard:
    """Reads a JSON body (up to `max_bytes` + 1), checks it, and hands the same bytes on."""

    def __init__(self, app: Any, max_bytes: int = jsonbound.MAX_BODY_BYTES,
                 max_depth: int = jsonbound.MAX_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= self.max_bytes:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay(message, receive), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            jsonbound.check(body, max_bytes=self.max_bytes, max_depth=self.max_depth)
        except jsonbound.JsonRefused as exc:
            error = refusal(exc)
            request = Request(scope)
            lang = request_lang(request)
            if request.url.path.startswith(OPEN311_PREFIX):  # GeoReport's own error shape
                response = JSONResponse([{"code": error.status, "description": error.body(
                    lang)["detail"]}], status_code=error.status)
            else:
                response = JSONResponse(error.body(lang), status_code=error.status)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(
            {"type": "http.request", "body": body, "more_body": False}, receive), send)


def _replay(first: dict, receive: Any) -> Any:
    """A `receive` that gives `first` (the whole body, or what ended it), then whatever
    the server's own `receive` says next (a disconnect)."""
    pending = [first]

    async def replayed() -> dict:
        return pending.pop() if pending else await receive()

    return replayed
