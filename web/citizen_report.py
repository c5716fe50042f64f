"""The citizen's report page (`/`) and its plain form post (no JavaScript needed: files
are streamed to storage part by part), and the ward boundary for its map."""

from __future__ import annotations

import json
import math
import uuid
from functools import lru_cache
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from shapely.geometry import mapping, shape
from sqlmodel import select

from api.abuse import ReportOrigin
from api.auth import client_address
from api.deps import DbDep, InfraDep, SettingsDep
from api.errors import FieldError, ReportOverloaded, StoresUnavailable, pydantic_messages
from api.idempotency import ReportIdReused
from api.infra import Infra
from api.services.submission import submit_report
from api.upload import FieldsTooLarge
from core.geo import get_ward_index
from core.settings import Settings
from schema.reports import ReportCreate
from schema.states import Category
from schema.tables import Ward
from schema.text import clean_line, clean_text
from web import i18n
from web.formstream import StreamedForm, read_form
from web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

HCMC_CENTRE = (10.7769, 106.7009)
# When only an address is given, the report still needs a point: the city centre with an
# accuracy that says "unknown", so the operator goes by the address.
ADDRESS_ONLY_ACCURACY_M = 50_000.0
DESCRIPTION_MAX = 5000
CATEGORIES = [c.value for c in Category]

# --- ward boundary for the map -----------------------------------------------------------


@lru_cache(maxsize=256)
def _simplified(geometry: str) -> dict[str, Any]:
    """A lighter copy of a ward polygon for the phone's map (about 5 m tolerance)."""
    geom = shape(json.loads(geometry)).simplify(5e-5, preserve_topology=True)
    return json.loads(json.dumps(mapping(geom)), parse_float=lambda s: round(float(s), 5))


def _locate(settings: Any, lat: float, lon: float) -> Any:
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
    settings: Settings,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
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
async def report_page(request: Request, settings: SettingsDep) -> Response:
    return _report_page(request, settings, _blank_values())


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
    vi, en = pydantic_messages(err)
    return en if lang == "en" else vi


@router.post("/report")
async def report_submit(request: Request, infra: InfraDep) -> Response:
    """The plain form (no JavaScript): read it as it arrives (files go to storage part by
    part, within their size limits), validate, submit, go to tracking. Any problem, a
    too-large file included, gives the form back with the typed values kept."""
    lang, _ = i18n.negotiate(request)
    form = await read_form(request, infra, lang)
    response = await _report_result(request, infra, form, lang)
    return form.finish(response)


async def _report_result(request: Request, infra: Infra, form: StreamedForm,
                         lang: str) -> Response:
    values = _blank_values()
    for key in values:
        raw = form.get(key)
        if isinstance(raw, str):  # cleaned like the API's (limits count after cleaning)
            values[key] = clean_text(raw) if key == "description" else clean_line(raw)
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

    attachments += form.stored
    if form.file_error:
        errors["media"] = form.file_error
    if form.fields_too_large:
        errors["description"] = FieldsTooLarge().en if lang == "en" else FieldsTooLarge().vi
    if form.broken:
        errors.setdefault("media", i18n.t(lang, "err.generic"))
    if errors:
        status = form.status if form.file_error or form.fields_too_large or form.broken else 422
        return _report_page(request, infra.settings, values, errors, attachments,
                            status_code=status)

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
        accepted = await submit_report(infra, body, source="web",
                                       origin=ReportOrigin(address=client_address(request)))
    except ValidationError as exc:
        for err in exc.errors():
            errors.setdefault(_field_of(tuple(err.get("loc", ()))), _pydantic_message(err, lang))
        return _report_page(request, infra.settings, values, errors, attachments, status_code=422)
    except FieldError as exc:
        field = _field_of((exc.field,))
        errors[field] = exc.message_en if lang == "en" else exc.message_vi
        if field == "media":  # unknown or used files: let the person pick them again
            attachments = []
        return _report_page(request, infra.settings, values, errors, attachments, status_code=422)
    except ReportIdReused as exc:
        # Another report already has this form's id: say so, and give the form a new id
        # so that sending it again makes a report of its own.
        errors["form"] = exc.en if lang == "en" else exc.vi
        values["report_id"] = str(uuid.uuid4())
        return _report_page(request, infra.settings, values, errors, attachments, status_code=409)
    except (StoresUnavailable, ReportOverloaded) as exc:
        # Neither store can take it now, or too busy to: the form comes back as typed, to
        # send again.
        errors["form"] = exc.en if lang == "en" else exc.vi
        page = _report_page(request, infra.settings, values, errors, attachments,
                            status_code=503)
        page.headers.update(exc.headers or {})
        return page
    log.info("web report accepted", tracking_code=accepted.tracking_code)
    return RedirectResponse(f"/t/{accepted.tracking_token}", status_code=303)

