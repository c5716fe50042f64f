"""Files the pages need that are not plain static files: htmx and Leaflet from
node_modules, the service worker at the root, the web manifest, the offline page."""

from __future__ import annotations

import gzip
from functools import lru_cache

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.templating import WEB_DIR, render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

ROOT = WEB_DIR.parent
NODE_MODULES = ROOT / "node_modules"
STATIC = WEB_DIR / "static"

# Third-party files served from node_modules (installed by `npm ci`), never committed.
VENDOR: dict[str, tuple[str, str]] = {
    "htmx.min.js": ("htmx.org/dist/htmx.min.js", "text/javascript"),
    "leaflet/leaflet.js": ("leaflet/dist/leaflet.js", "text/javascript"),
    "leaflet/leaflet.css": ("leaflet/dist/leaflet.css", "text/css"),
    "leaflet/images/marker-icon.png": ("leaflet/dist/images/marker-icon.png", "image/png"),
    "leaflet/images/marker-icon-2x.png": ("leaflet/dist/images/marker-icon-2x.png", "image/png"),
    "leaflet/images/marker-shadow.png": ("leaflet/dist/images/marker-shadow.png", "image/png"),
}

# --- static helpers --------------------------------------------------------------------


@lru_cache(maxsize=32)
def _vendor_bytes(rel: str) -> tuple[bytes, bytes]:
    data = (NODE_MODULES / rel).read_bytes()
    return data, gzip.compress(data, 9)


@router.get("/static/vendor/{name:path}")
async def vendor(name: str, request: Request) -> Response:
    """htmx and Leaflet from node_modules, gzipped when the browser accepts it."""
    entry = VENDOR.get(name)
    if entry is None or not (NODE_MODULES / entry[0]).exists():
        return Response("not found (run `npm ci`)", status_code=404, media_type="text/plain")
    raw, packed = _vendor_bytes(entry[0])
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "") and len(packed) < len(raw):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type=entry[1], headers=headers)
    return Response(raw, media_type=entry[1], headers=headers)


@router.get("/sw.js")
async def service_worker() -> Response:
    """The service worker, at the root so that its scope covers every citizen page."""
    body = (STATIC / "sw.js").read_bytes()
    return Response(
        body,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/manifest.webmanifest")
async def manifest() -> Response:
    body = (STATIC / "manifest.webmanifest").read_bytes()
    return Response(
        body, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/offline")
async def offline_page(request: Request) -> Response:
    """Shown by the service worker when a page is not cached and there is no connection."""
    return render(request, "citizen/offline.html")

