"""The one shared templates object, and the headers every page gets (CSP, language cookie)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from api.infra import infra_of
from core.settings import HCMC_TZ
from web import i18n

WEB_DIR = Path(__file__).resolve().parent
templates = Jinja2Blocks(directory=str(WEB_DIR / "templates"))


def _local_time(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(HCMC_TZ)
    return value.strftime("%H:%M %d/%m/%Y")


def fmt_duration(seconds: float | None) -> str:
    """`1:05:09`, `4:20`: language-neutral, for response times and overdue times."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(max(seconds, 0)))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    if h >= 48:
        return f"{h // 24}d {h % 24}h"
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _local_clock(value: datetime | None) -> str:
    """`14:05:09` in the city's time (for "updated at" lines)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(HCMC_TZ)
    return value.strftime("%H:%M:%S")


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


templates.env.filters["local_time"] = _local_time
templates.env.filters["duration"] = fmt_duration
templates.env.filters["iso"] = _iso
templates.env.filters["local_clock"] = _local_clock


def content_security_policy(tile_url: str) -> str:
    """Strict CSP for the pages: scripts only from this origin, no inline scripts; images
    also from the host of the map's `tile_url` (settings.map_tile_url) when it has one."""
    img = "'self' data: blob:"
    if tile_url.startswith(("http://", "https://")):
        parts = tile_url.split("/")
        host = "/".join(parts[:3]).replace("{s}", "*")
        img += f" {host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {img}; media-src 'self' blob:; connect-src 'self'; worker-src 'self'; "
        "manifest-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
) -> Response:
    """Render a page (or one block of it, for HTMX) in the request's language."""
    lang, from_query = i18n.negotiate(request)
    ctx: dict[str, Any] = {
        "lang": lang,
        "t": lambda key, **kw: i18n.t(lang, key, **kw),
        "js_messages": i18n.js_messages(lang),
    }
    ctx.update(context or {})
    if block:
        response = templates.TemplateResponse(
            request, name, ctx, status_code=status_code, block_name=block
        )
    else:
        response = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    settings = infra_of(request.app).settings
    secure_headers(response, settings.map_tile_url)
    if from_query:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax",
                            secure=settings.cookies_secure)
    response.headers["Vary"] = "Cookie, Accept-Language, HX-Request"
    return response


def secure_headers(response: Any, tile_url: str) -> None:
    response.headers["Content-Security-Policy"] = content_security_policy(tile_url)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
