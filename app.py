"""The composition root: the FastAPI application built from the API (api/) and the web
pages (web/), so that neither package imports the other's routes.

`uvicorn app:create_app --factory` runs it with settings from the environment.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.main import create_api
from core.settings import ROOT, Settings
from web.outage import error_page
from web.routes import router as pages


def create_app(settings: Settings | None = None, *, run_relay: bool = True) -> FastAPI:
    """The API (api.main.create_api) plus the citizen and staff pages and static files."""
    app = create_api(settings, run_relay=run_relay,
                     error_page=error_page)  # 503s as a page for browsers (api/handlers.py)
    app.include_router(pages)
    static_dir = ROOT / "web" / "static"
    if static_dir.is_dir():
        app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app
