"""The API half of the application: the JSON API under /api/v1, Open311, CAP, operations
endpoints and /docs, with the process's connections (one api.infra.Infra) set up by
`lifespan`.

The composition root `app.py` adds the web pages (`uvicorn app:create_app --factory`);
nothing here imports web/.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import FastAPI, Response

from api import sessions
from api.handlers import ErrorPage, install_handlers
from api.infra import Infra
from api.json_guard import JsonBodyGuard
from api.metrics import REQUEST_LATENCY
from api.openapi_links import linked_openapi
from api.routes import (
    actions,
    alerts,
    attachments,
    auth,
    cap,
    events,
    incidents,
    ops,
    places,
    push,
    report_groups,
    reports,
    stats,
)
from api.routes import open311 as open311
from core.logging import configure_logging
from core.outbox import relay_forever
from core.settings import ROOT, Settings, get_settings

log = structlog.get_logger(__name__)


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def _request_id(given: bytes) -> str:
    """The caller's X-Request-ID when it is a plain token (letters, digits, . _ : -; at
    most 64), else a new one: it goes into every log line and back as a response header,
    where invalid UTF-8 or a control character would break both."""
    if _REQUEST_ID.fullmatch(given):
        return given.decode("ascii")
    return uuid.uuid4().hex[:16]


class RequestContext:
    """Pure ASGI middleware (streams stay streams): a request id in the log context, the
    latency histogram by route template, one access log line."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        request_id = _request_id(dict(scope.get("headers") or []).get(b"x-request-id", b""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_wrapper(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            REQUEST_LATENCY.labels(scope.get("method", ""), path, str(status)).observe(elapsed)
            if path not in ("/healthz", "/metrics"):
                log.info("request", method=scope.get("method"), route=path, status=status,
                         ms=round(elapsed * 1000, 1))


def lifespan(settings: Settings, run_relay: bool
             ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The process's connections for the app's life: one Infra (api/infra.py) kept on the
    app (read back with `infra_of`), and the intake relay unless `run_relay` is False."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings)
        sessions.warn_if_forgeable(settings)
        infra = Infra.open(settings)
        app.state.infra = infra
        relay = None
        if run_relay:
            relay = asyncio.create_task(relay_forever(infra.starter), name="intake-relay")
        log.info("api started", database=settings.database_url.split("@")[-1],
                 temporal=settings.temporal_address,
                 storage="s3" if settings.s3_bucket else "local")
        try:
            yield
        finally:
            if relay is not None:
                relay.cancel()
                with suppress(asyncio.CancelledError):
                    await relay
            with suppress(Exception):
                await infra.starter.flush_started()
            await infra.close()

    return run


def create_api(settings: Settings | None = None, *, run_relay: bool = True,
               error_page: ErrorPage | None = None) -> FastAPI:
    """The application with the API routes only. `run_relay=False` leaves starting
    pending workflows to someone else (`canhbao relay-once`, or a test calling
    relay_once). `error_page` answers errors to browsers asking for a page (app.py gives
    web/outage.py's); without it every error is JSON."""
    settings = settings or get_settings()
    app = FastAPI(
        title="CanhBao API",
        version="1.0",
        description="Tin báo ANTT TP.HCM — citizen reports, dispatch and tracking. "
                    "Errors are JSON {error, detail} in Vietnamese or English "
                    "(Accept-Language).",
        lifespan=lifespan(settings, run_relay),
        docs_url=None,
        redoc_url=None,
    )
    install_handlers(app, error_page)
    app.add_middleware(JsonBodyGuard)
    app.add_middleware(RequestContext)
    for module in (ops, auth, reports, push, incidents, actions, attachments, alerts, places,
                   stats, events, open311, cap, report_groups):
        app.include_router(module.router)
    app.openapi = linked_openapi(app.openapi)  # type: ignore[method-assign]
    _mount_docs(app)
    return app


SWAGGER_UI = ROOT / "node_modules" / "swagger-ui-dist"  # npm, see package.json
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI 5 (renders OpenAPI 3.1, which FastAPI produces) at /docs, from the npm
    package swagger-ui-dist installed at set-up (no CDN). Only its three files are served."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import FileResponse, PlainTextResponse

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if not (SWAGGER_UI / SWAGGER_FILES[0]).exists():
            return PlainTextResponse("Swagger UI is not installed: run `npm ci`",
                                     status_code=503)
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title} — docs",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png")

    @app.get("/docs-assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in SWAGGER_FILES or not (SWAGGER_UI / name).exists():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(SWAGGER_UI / name,
                            headers={"Cache-Control": "public, max-age=86400"})
