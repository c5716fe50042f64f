"""Citizen pages (Jinja2 + HTMX), mounted by the composition root (app.py).

`/` is the report page, `/t/{token}` the tracking page. Both work without JavaScript: the
plain forms post here (multipart, files included) and these routes call the same intake
service functions as the JSON API (api.services). With JavaScript the report page talks to
the JSON API itself so that it can upload with progress and keep reports while offline.
"""

from __future__ import annotations

import gzip
import json
import math
import uuid
from functools import lru_cache
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from shapely.geometry import mapping, shape
from sqlmodel import select

from api.deps import DbDep, InfraDep, SettingsDep
from api.errors import ApiError, FieldError
from api.infra import Infra
from api.services.submission import submit_report
from api.services.tracking import (
    TrackingConflict,
    add_info,
    cancel_report,
    get_tracking,
    report_by_token,
)
from api.upload import FieldsTooLarge
from core.settings import Settings
from schema.reports import ReportCreate, normalise_phone
from schema.states import Category, State
from schema.tables import Ward
from web import i18n
from web.formstream import StreamedForm, read_form
from web.templating import WEB_DIR, render

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)

ROOT = WEB_DIR.parent
NODE_MODULES = ROOT / "node_modules"
STATIC = WEB_DIR / "static"
HCMC_CENTRE = (10.7769, 106.7009)
# When only an address is given, the report still needs a point: the city centre with an
# accuracy that says "unknown", so the operator goes by the address.
ADDRESS_ONLY_ACCURACY_M = 50_000.0
DESCRIPTION_MAX = 5000
CATEGORIES = [c.value for c in Category]

# Third-party files served from node_modules (installed by `npm ci`), never committed.
VENDOR: dict[str, tuple[str, str]] = {
    "htmx.min.js": ("htmx.org/dist/htmx.min.js", "text/javascript"),
    "leaflet/leaflet.js": ("leaflet/dist/leaflet.js", "text/javascript"),
    "leaflet/leaflet.css": ("leaflet/dist/leaflet.css", "text/css"),
    "leaflet/images/marker-icon.png": ("leaflet/dist/images/marker-icon.png", "image/png"),
    "leaflet/images/marker-icon-2x.png": ("leaflet/dist/images/marker-icon-2x.png", "image/png"),
    "leaflet/images/marker-shadow.png": ("leaflet/dist/images/marker-shadow.png", "image/png"),
}

# Steps of the citizen's progress bar and the state each state reaches.
STEPS = ["received", "verified", "dispatched", "on_the_way", "closed"]
STEP_OF_STATE = {
    State.RECEIVED: 0, State.VERIFIED: 1, State.CLASSIFIED: 1, State.ROUTED: 2,
    State.ACKNOWLEDGED: 3, State.ON_SCENE: 3, State.CLOSED: 4,
}
CANCELLABLE = {State.RECEIVED, State.VERIFIED, State.CLASSIFIED, State.ROUTED}


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


# --- ward boundary for the map -----------------------------------------------------------


@lru_cache(maxsize=256)
def _simplified(geometry: str) -> dict[str, Any]:
    """A lighter copy of a ward polygon for the phone's map (about 5 m tolerance)."""
    geom = shape(json.loads(geometry)).simplify(5e-5, preserve_topology=True)
    return json.loads(json.dumps(mapping(geom)), parse_float=lambda s: round(float(s), 5))


def _locate(settings: Any, lat: float, lon: float) -> Any:
    from activities.geo import get_ward_index  # the workflow helper's shared index

    return get_ward_index(settings.wards_geojson).locate(lat, lon, settings.outside_city_m)


@router.get("/geo/ward")
async def ward_boundary(db: DbDep, settings: SettingsDep, lat: float, lon: float) -> Response:
    """GeoJSON Feature of the ward that contains (lat, lon), or the nearest one.

    Always 200 for a valid point, so a phone outside the city logs no failed request:
    `properties` = {code, name, exact, outside_city, distance_m}; `geometry` is the ward's
    simplified polygon, or null outside the city (more than settings.outside_city_m from
    every ward) or when the ward has no boundary. 422 when lat/lon are not finite."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return JSONResponse({"error": "invalid", "detail": "lat/lon"}, status_code=422)
    info = _locate(settings, lat, lon)
    if info is None:  # no ward boundaries loaded at all
        return JSONResponse({"type": "Feature", "geometry": None, "properties": {
            "code": None, "name": None, "exact": False, "outside_city": False}})
    outside = bool(getattr(info, "outside_city", False))
    async with db.session() as session:
        ward = (await session.exec(select(Ward).where(Ward.code == info.code))).first()
    geometry = None
    if ward is not None and ward.geometry and not outside:
        geometry = _simplified(ward.geometry)
    feature = {
        "type": "Feature",
        "properties": {"code": info.code, "name": ward.name if ward else info.name,
                       "exact": info.exact, "outside_city": outside,
                       "distance_m": getattr(info, "distance_m", None)},
        "geometry": geometry,
    }
    return JSONResponse(feature, headers={"Cache-Control": "public, max-age=3600"})


# --- report page -----------------------------------------------------------------------


def _blank_values() -> dict[str, str]:
    return {
        "report_id": str(uuid.uuid4()), "category": "", "description": "", "lat": "", "lon": "",
        "accuracy_m": "", "address": "", "name": "", "phone": "",
    }


def _report_page(
    request: Request,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    settings: Settings = request.app.state.settings
    return render(
        request,
        "citizen/report.html",
        {
            "values": values,
            "errors": errors or {},
            "attachments": attachments or [],
            "categories": CATEGORIES,
            "tile_url": settings.map_tile_url,
            "max_image": settings.max_image_bytes,
            "max_video": settings.max_video_bytes,
            "centre": HCMC_CENTRE,
            "description_max": DESCRIPTION_MAX,
        },
        status_code=status_code,
    )


@router.get("/")
async def report_page(request: Request) -> Response:
    return _report_page(request, _blank_values())


def _float(text: str) -> float | None:
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


FIELD_OF_LOC = {
    "category": "category", "description": "description", "location": "location",
    "lat": "location", "lon": "location", "accuracy_m": "location", "address": "address",
    "reporter": "phone", "name": "name", "phone": "phone", "attachments": "media",
    "report_id": "category",
}


def _field_of(loc: tuple[Any, ...]) -> str:
    """The form field that shows an error found at pydantic location `loc` ("a.b.0" too)."""
    parts = [p for part in loc for p in str(part).split(".")]
    for part in reversed(parts):
        if part in FIELD_OF_LOC:
            return FIELD_OF_LOC[part]
    return "category"


def _pydantic_message(err: Any, lang: str) -> str:
    ctx = err.get("ctx") or {}
    if lang == "vi" and isinstance(ctx.get("vi"), str):
        return ctx["vi"]
    return i18n.t(lang, "err.generic") if lang == "vi" else str(err.get("msg", ""))


@router.post("/report")
async def report_submit(request: Request, infra: InfraDep) -> Response:
    """The plain form (no JavaScript): read it as it arrives (files go to storage part by
    part, within their size limits), validate, submit, go to tracking. Any problem, a
    too-large file included, gives the form back with the typed values kept."""
    lang, _ = i18n.negotiate(request)
    form = await read_form(request, lang)
    response = await _report_result(request, infra, form, lang)
    return form.finish(response)


async def _report_result(request: Request, infra: Infra, form: StreamedForm,
                         lang: str) -> Response:
    values = _blank_values()
    for key in values:
        raw = form.get(key)
        if isinstance(raw, str):
            values[key] = raw.strip()
    try:
        values["report_id"] = str(uuid.UUID(values["report_id"]))
    except ValueError:
        values["report_id"] = str(uuid.uuid4())
    attachments = [
        {"attachment_id": a, "filename": a[:8]}
        for a in form.getlist("attachment_ids") if isinstance(a, str) and a
    ]
    errors: dict[str, str] = {}

    if values["category"] not in CATEGORIES:
        errors["category"] = i18n.t(lang, "err.category")
        values["category"] = ""
    if not values["description"]:
        errors["description"] = i18n.t(lang, "err.description")
    elif len(values["description"]) > DESCRIPTION_MAX:
        errors["description"] = i18n.t(lang, "err.description_long", max=DESCRIPTION_MAX)
    lat, lon = _float(values["lat"]), _float(values["lon"])
    accuracy = _float(values["accuracy_m"]) if values["accuracy_m"] else None
    if values["lat"] or values["lon"]:
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            errors["location"] = i18n.t(lang, "err.latlon")
    elif not values["address"]:
        errors["location"] = i18n.t(lang, "err.location")
    if values["phone"]:
        try:
            normalise_phone(values["phone"])
        except ValueError:
            errors["phone"] = i18n.t(lang, "err.phone")

    attachments += form.stored
    if form.file_error:
        errors["media"] = form.file_error
    if form.fields_too_large:
        errors["description"] = FieldsTooLarge().en if lang == "en" else FieldsTooLarge().vi
    if form.broken:
        errors.setdefault("media", i18n.t(lang, "err.generic"))
    if errors:
        status = form.status if form.file_error or form.fields_too_large or form.broken else 422
        return _report_page(request, values, errors, attachments, status_code=status)

    if lat is None or lon is None:
        lat, lon = HCMC_CENTRE
        accuracy = ADDRESS_ONLY_ACCURACY_M
    reporter = {k: values[k] for k in ("name", "phone") if values[k]}
    payload: dict[str, Any] = {
        "report_id": values["report_id"],
        "category": values["category"],
        "description": values["description"],
        "location": {"lat": lat, "lon": lon, "accuracy_m": accuracy},
        "address": values["address"] or None,
        "reporter": reporter or None,
        "attachments": [a["attachment_id"] for a in attachments],
    }
    try:
        body = ReportCreate.model_validate(payload)
        accepted = await submit_report(infra, body, source="web")
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(_field_of(tuple(err.get("loc", ()))), _pydantic_message(err, lang))
        return _report_page(request, values, errors, attachments, status_code=422)
    except FieldError as exc:
        field = _field_of((exc.field,))
        errors[field] = exc.message_en if lang == "en" else exc.message_vi
        if field == "media":  # unknown or used files: let the person pick them again
            attachments = []
        return _report_page(request, values, errors, attachments, status_code=422)
    log.info("web report accepted", tracking_code=accepted.tracking_code)
    return RedirectResponse(f"/t/{accepted.tracking_token}", status_code=303)


# --- tracking page ---------------------------------------------------------------------


def _state(view: Any) -> State:
    return State(str(getattr(view, "state", "received")))


def _track_context(view: Any, token: str, request: Request,
                   story: dict[str, Any] | None) -> dict[str, Any]:
    """The tracking page's context: the live state from `view`, the story from SQL
    (web.tracking_story.build_story). A merged report shows the primary's progress."""
    state = _state(view)
    lang, _ = i18n.negotiate(request)
    story = story or {}
    primary_state = story.get("primary_state")
    shown = primary_state if state is State.MERGED and primary_state is not None else state
    base = str(request.base_url).rstrip("/")
    settings = request.app.state.settings
    public = (settings.public_url or base).rstrip("/")
    return {
        "view": view,
        "token": token,
        "state": state.value,
        "primary_state": primary_state.value if primary_state is not None else None,
        "step": STEP_OF_STATE.get(shown),
        "steps": STEPS,
        "story": story.get("story", []),
        "own_files": story.get("own_files", []),
        "closing": story.get("closing"),
        "merged": story.get("merged", False),
        "silent": story.get("silent", False),
        "can_cancel": state in CANCELLABLE,
        "is_open": not state.is_terminal,
        # A merged report follows its primary until that one ends.
        "refresh": not shown.is_terminal,
        "share_url": f"{public}/t/{token}",
        "attachment_count": story.get("own_count"),
        "msg": request.query_params.get("msg", ""),
    }


@router.get("/t/{token}/files/{attachment_id}")
async def tracking_file(token: str, attachment_id: str, infra: InfraDep) -> Response:
    """A photo or video the citizen sent with this report (never a staff member's)."""
    from web.tracking_story import own_attachment

    att = await own_attachment(infra.db, token, attachment_id)
    if att is None:
        return JSONResponse({"error": "not_found", "detail": "Không tìm thấy tệp / No such file"},
                            status_code=404)
    storage = infra.storage
    url = await storage.url(att.storage_key, infra.settings.s3_presign_seconds,
                            att.content_type)
    if url:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        storage.open(att.storage_key), media_type=att.content_type,
        headers={"Content-Length": str(att.size), "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, max-age=3600"})


@router.get("/t/{token}")
async def tracking_page(token: str, request: Request, infra: InfraDep) -> Response:
    ctx = await _tracking_page_context(request, infra, token)
    if ctx is None:
        return render(request, "citizen/not_found.html", status_code=404)
    if request.headers.get("hx-request") == "true":
        return render(request, "citizen/track.html", ctx, block="status")
    response = render(request, "citizen/track.html", ctx)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _tracking_page_context(request: Request, infra: Infra,
                                 token: str) -> dict[str, Any] | None:
    """Everything the tracking page shows, or None for an unknown token."""
    from web.tracking_story import build_story

    view = await get_tracking(infra, token)
    if view is None:
        return None
    lang, _ = i18n.negotiate(request)
    story = await build_story(infra.db, token, lang)
    return _track_context(view, token, request, story)


async def _tracking_with_error(request: Request, infra: Infra, token: str, problem: str,
                               text: str,
                               status_code: int) -> Response:
    """The tracking page again, with the add-info error and the typed text kept."""
    ctx = await _tracking_page_context(request, infra, token)
    if ctx is None:
        return render(request, "citizen/not_found.html", status_code=404)
    ctx.update(msg="err_info", info_error=problem, info_text=text)
    return render(request, "citizen/track.html", ctx, status_code=status_code)


@router.post("/t/{token}/info")
async def tracking_add_info(token: str, request: Request, infra: InfraDep) -> Response:
    lang, _ = i18n.negotiate(request)
    # The token first: an unknown one gets nothing stored (the body is not read).
    if await report_by_token(infra.db, token) is None:
        response = render(request, "citizen/not_found.html", status_code=404)
        response.headers["Connection"] = "close"
        return response
    form = await read_form(request, lang)
    return form.finish(await _add_info_result(request, infra, token, form))


async def _add_info_result(request: Request, infra: Infra, token: str,
                           form: StreamedForm) -> Response:
    text = str(form.get("text") or "").strip()
    stored = form.stored
    lang, _ = i18n.negotiate(request)
    if form.file_error or form.broken or form.fields_too_large:
        problem = form.file_error or i18n.t(lang, "err.file_type")
        return await _tracking_with_error(request, infra, token, problem, text, form.status)
    if not text and not stored:
        return await _tracking_with_error(request, infra, token, i18n.t(lang, "err.text"),
                                          text, 422)
    try:
        await add_info(infra, token, text or None, [a["attachment_id"] for a in stored])
    except TrackingConflict:
        return RedirectResponse(f"/t/{token}?msg=conflict", status_code=303)
    except ApiError as exc:
        log.info("add info refused", error=exc.error)
        return RedirectResponse(f"/t/{token}?msg=busy#add", status_code=303)
    return RedirectResponse(f"/t/{token}?msg=info", status_code=303)


@router.post("/t/{token}/cancel")
async def tracking_cancel(token: str, request: Request, infra: InfraDep) -> Response:
    lang, _ = i18n.negotiate(request)
    form = await read_form(request, lang, max_files=0)  # text only, capped at 64 KB
    reason = str(form.get("reason") or "").strip() or None
    if form.fields_too_large or form.broken:
        return form.finish(RedirectResponse(f"/t/{token}?msg=busy", status_code=303))
    if await report_by_token(infra.db, token) is None:
        return render(request, "citizen/not_found.html", status_code=404)
    try:
        await cancel_report(infra, token, reason)
    except TrackingConflict:
        return RedirectResponse(f"/t/{token}?msg=conflict", status_code=303)
    except ApiError as exc:
        log.info("cancel refused", error=exc.error)
        return RedirectResponse(f"/t/{token}?msg=busy", status_code=303)
    return RedirectResponse(f"/t/{token}?msg=cancelled", status_code=303)


@router.get("/offline")
async def offline_page(request: Request) -> Response:
    """Shown by the service worker when a page is not cached and there is no connection."""
    return render(request, "citizen/offline.html")

