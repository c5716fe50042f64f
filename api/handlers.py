"""The exception handlers of the app: every error answers as JSON `{error, detail}` (422
adds `fields`) in the caller's language (api.errors), or as a web page where the
composition root gave one (`error_page`: web/outage.py answers 503s to browsers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import (
    ApiError,
    DatabaseUnavailable,
    Overloaded,
    pydantic_messages,
    request_lang,
)
from api.infra import infra_of
from core.db import overloaded, unreachable
from schema import words

log = structlog.get_logger(__name__)

# Standard answers for HTTP statuses raised without a domain error.
_STATUS: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", *words.both("error.bad_request")),
    401: ("unauthorized", *words.both("error.unauthorized")),
    403: ("forbidden", *words.both("error.forbidden")),
    404: ("not_found", *words.both("error.not_found")),
    405: ("method_not_allowed", *words.both("error.method_not_allowed")),
    406: ("not_acceptable", *words.both("error.not_acceptable")),
    409: ("conflict", *words.both("error.conflict")),
    413: ("too_large", *words.both("error.too_large")),
    415: ("unsupported_media_type", *words.both("error.unsupported_media_type")),
    429: ("too_many_requests", *words.both("error.too_many_requests")),
    503: ("unavailable", *words.both("error.unavailable")),
}
_OTHER = ("error", *words.both("error.error"))


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_fields(exc: RequestValidationError, lang: str) -> list[dict[str, str]]:
    fields = []
    for err in exc.errors():
        msg_vi, msg_en = pydantic_messages(err)
        fields.append({"field": _field_name(err.get("loc", ())),
                       "message": msg_en if lang == "en" else msg_vi,
                       "type": str(err.get("type"))})
    return fields


# The web pages' answer for an error (web/outage.py, given by the composition root
# app.py), or None for JSON.
ErrorPage = Callable[[Request, ApiError], Response | None]


def install_handlers(app: FastAPI, error_page: ErrorPage | None = None) -> None:
    """JSON errors for `app`, or `error_page`'s answer where it gives one."""

    def _page(request: Request, exc: ApiError) -> Response | None:
        return error_page(request, exc) if error_page is not None else None

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        page = _page(request, exc)
        if page is not None:
            return page
        lang = request_lang(request)
        body = exc.body(lang)
        if exc.fields is not None:
            body["fields"] = [
                {"field": f["field"],
                 "message": f.get("message_en", f["message"]) if lang == "en" else f["message"]}
                for f in exc.fields
            ]
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = request_lang(request)
        detail = words.t(lang, "error.validation_error")
        return JSONResponse(
            {"error": "validation_error", "detail": detail,
             "fields": _validation_fields(exc, lang)},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        lang = request_lang(request)
        code, vi, en = _STATUS.get(exc.status_code, _OTHER)
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail not in (
            "Not Found", "Method Not Allowed", "Unauthorized", "Forbidden"
        ) and lang == "en" else (en if lang == "en" else vi)
        return JSONResponse({"error": code, "detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> Response:
        # Any endpoint hit while the database is unreachable, or while every connection of
        # the pool is busy, answers 503, never 500. Only the first counts as an outage.
        error: ApiError
        if overloaded(exc):
            log.warning("database pool busy: request shed", path=request.url.path)
            error = Overloaded(infra_of(request.app).settings.db_retry_s)
        elif unreachable(exc):
            infra = infra_of(request.app)
            infra.db.note_unreachable()
            log.warning("database unreachable", path=request.url.path,
                        error=f"{exc.__class__.__name__}: {str(exc)[:300]}")
            error = DatabaseUnavailable(infra.settings.db_retry_s)
        else:
            return await _unexpected(request, exc)
        page = _page(request, error)
        if page is not None:
            return page
        return JSONResponse(error.body(request_lang(request)), status_code=503,
                            headers=error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        lang = request_lang(request)
        return JSONResponse(
            {"error": "internal_error",
             "detail": words.t(lang, "error.internal_error")},
            status_code=500,
        )
