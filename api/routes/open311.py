"""Open311 GeoReport v2 (JSON) under /open311/v2/.

A POSTed request becomes a report like any other (api.services.submission, source
"open311"). Privacy: incidents are police matters, so a request is public only to whoever
holds its `service_request_id` (an unguessable UUID, returned to the submitter); listing
without ids is for signed-in staff. Conformance: `service_code` and `status` filters take
comma-separated lists; `service_name` is always the incident's current category;
`jurisdiction_id` is accepted everywhere (one jurisdiction: it is not needed); times are
ISO 8601 with the Ho Chi Minh City offset; every error, input validation included, is
`[{code, description}]` (GeoReportRoute). `media_url` is not fetched (no server-side
requests to outside URLs); upload through /api/v1/attachments and pass `attachment_ids`
(an extension) instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import scope
from api.abuse import ReportOrigin
from api.auth import client_address, principal_from_request
from api.deps import DbDep, InfraDep, SettingsDep
from api.errors import ApiError, FieldError, pydantic_messages, request_lang
from api.services.submission import status_url, submit_report
from core.settings import HCMC_TZ
from schema import words
from schema.labels import label
from schema.reports import ReportCreate
from schema.states import Category, State
from schema.tables import Incident, IncidentEvent, Report
from schema.text import Line
from schema.times import Moment


class GeoReportError(Exception):
    """An Open311 error answer: `[{code, description}]` with `status`, the description in
    Vietnamese or English by Accept-Language (`api.errors.request_lang`), as every other
    error of the API."""

    def __init__(self, status: int, vi: str, en: str) -> None:
        super().__init__(en)
        self.status, self.vi, self.en = status, vi, en


def _answer(request: Request, status: int, vi: str, en: str) -> JSONResponse:
    description = en if request_lang(request) == "en" else vi
    return JSONResponse([{"code": status, "description": description}], status_code=status)


class GeoReportRoute(APIRoute):
    """Answers every error of an Open311 route in the GeoReport format: input validation
    (400), our domain errors and HTTP errors, never the API's `{error, detail}`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except GeoReportError as exc:
                return _answer(request, exc.status, exc.vi, exc.en)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:])
                vi, en = pydantic_messages(first)
                return _answer(request, 400, f"{where}: {vi}", f"{where}: {en}")
            except ApiError as exc:
                return _answer(request, exc.status, exc.vi, exc.en)
            except StarletteHTTPException as exc:
                return _answer(request, exc.status_code,
                               *words.both("open311.bad_request", detail=exc.detail))
        return route


NO_REQUEST = words.both("open311.no_request")
router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=GeoReportRoute)

SERVICES: dict[str, dict[str, str]] = {
    c.value: {"name": label(c), "description": words.t("vi", f"feed.open311.service.{c}")}
    for c in Category}


def georeport_time(at: datetime) -> str:
    """ISO 8601 with the local offset and no fractions: 2026-11-29T17:05:00+07:00."""
    return at.astimezone(HCMC_TZ).replace(microsecond=0).isoformat()


def _codes(raw: str | None, allowed: Any, name: str) -> list[str]:
    """A comma-separated filter as a list. Raises GeoReportError (400) naming the first
    unknown value."""
    values = [v.strip() for v in (raw or "").split(",") if v.strip()]
    for v in values:
        if v not in allowed:
            expected = ", ".join(sorted(allowed))
            raise GeoReportError(400, *words.both("open311.unknown_value", name=name,
                                                  value=repr(v), expected=expected))
    return values


@router.get("/discovery.json")
async def discovery(request: Request, settings: SettingsDep) -> dict[str, Any]:
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return {
        "changeset": "2026-11-28T00:00:00+07:00",
        "contact": words.t("vi", "feed.open311.contact"),
        "key_service": words.t("vi", "feed.open311.key_service"),
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": f"{base}/open311/v2",
            "changeset": "2026-11-28T00:00:00+07:00",
            "type": "production",
            "formats": ["application/json"],
        }],
    }


@router.get("/services.json")
async def services(jurisdiction_id: Line | None = None) -> list[dict[str, Any]]:
    return [{"service_code": code, "service_name": s["name"], "description": s["description"],
             "metadata": False, "type": "realtime", "keywords": code.replace("_", ", "),
             "group": words.t("vi", "feed.open311.group")} for code, s in SERVICES.items()]


@router.get("/services/{service_code}.json", responses={404: {"model": list}})
async def service_definition(service_code: str, jurisdiction_id: Line | None = None) -> Any:
    if service_code not in SERVICES:
        raise GeoReportError(404, *words.both("open311.unknown_service", code=repr(service_code)))
    return {"service_code": service_code, "attributes": []}


def _status(state: str) -> str:
    return "closed" if State(state).is_terminal else "open"


@router.post("/requests.json", status_code=201,
             responses={400: {"model": list}, 201: {"model": list}})
async def create_request(request: Request, infra: InfraDep) -> Any:
    """Form fields per GeoReport v2: service_code, lat, long, address_string, description,
    first_name, last_name, phone (jurisdiction_id, email, device_id, account_id and
    media_url are accepted and not used); extension: attachment_ids (comma separated).
    File parts are refused (400) before any of their bytes are stored: upload through
    /api/v1/attachments."""
    try:
        form = await request.form(max_files=0, max_fields=100)
    except StarletteHTTPException as exc:
        raise GeoReportError(400, *words.both("open311.bad_form", detail=exc.detail)) from exc

    def field(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    code = field("service_code")
    if code not in SERVICES:
        raise GeoReportError(400, *words.both("open311.service_code"))
    if field("lat") is None or field("long") is None:
        raise GeoReportError(400, *words.both("open311.position"))
    name = " ".join(p for p in (field("first_name"), field("last_name")) if p) or None
    reporter = {"name": name, "phone": field("phone")} if name or field("phone") else None
    try:
        attachment_ids = [uuid.UUID(a.strip()) for a in (field("attachment_ids") or "").split(",")
                          if a.strip()]
        body = ReportCreate(
            category=code, description=field("description") or "",
            location={"lat": field("lat"), "lon": field("long")},
            address=field("address_string"), reporter=reporter, attachments=attachment_ids,
            device_id=field("device_id"))
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            vi, en = pydantic_messages(first)
            raise GeoReportError(400, f"{where}: {vi}", f"{where}: {en}") from exc
        raise GeoReportError(400, *words.both("open311.attachment_ids")) from exc
    try:
        accepted = await submit_report(infra, body, source="open311",
                                       origin=ReportOrigin(address=client_address(request)))
    except FieldError as exc:
        raise GeoReportError(400, f"{exc.field}: {exc.message_vi}",
                             f"{exc.field}: {exc.message_en}") from exc
    return JSONResponse([{
        "service_request_id": accepted.incident_id,
        "service_notice": _notice(request, status_url(infra.settings, accepted.tracking_token,
                                                      str(request.base_url)),
                                  accepted.tracking_code),
        "account_id": None,
        "token": accepted.tracking_token,
    }], status_code=201)


def _notice(request: Request, link: str, code: str) -> str:
    """The tracking code and the tracking page's absolute address `link`, in the caller's
    language (Accept-Language)."""
    return words.t(request_lang(request), "open311.notice", code=code, link=link)


async def _request_out(db: Any, report: Report, row: Incident | None) -> dict[str, Any]:
    payload = report.payload
    notes = None
    async with db.session() as s:
        last = (await s.execute(select(col(IncidentEvent.public_note)).where(
            col(IncidentEvent.incident_id) == report.id,
            col(IncidentEvent.public_note).is_not(None))
            .order_by(col(IncidentEvent.seq).desc()).limit(1))).scalar_one_or_none()
        notes = last
    state = row.state if row else State.RECEIVED.value
    updated: datetime = row.updated_at if row else report.created_at
    category = row.category if row else payload["category"]  # the current one
    return {
        "service_request_id": report.id,
        "status": _status(state),
        "status_notes": notes,
        "service_name": SERVICES[category]["name"],
        "service_code": category,
        "description": payload.get("description"),
        "agency_responsible": row.unit_name if row and row.unit_name else
        words.t("vi", "feed.open311.agency"),
        "service_notice": None,
        "requested_datetime": georeport_time(report.created_at),
        "updated_datetime": georeport_time(updated),
        "expected_datetime": None,
        "address": payload.get("address"),
        "address_id": None,
        "zipcode": None,
        "lat": payload["location"]["lat"],
        "long": payload["location"]["lon"],
        "media_url": None,
    }


async def _load(db: Any, ids: list[str]) -> list[tuple[Report, Incident | None]]:
    async with db.session() as s:
        reports = (await s.execute(select(Report).where(col(Report.id).in_(ids)))).scalars().all()
        rows = {r.id: r for r in (await s.execute(
            select(Incident).where(col(Incident.id).in_(ids)))).scalars().all()}
    return [(r, rows.get(r.id)) for r in reports]


def _uuids(text: str) -> list[str] | None:
    try:
        return [str(uuid.UUID(p.strip())) for p in text.split(",") if p.strip()][:100]
    except ValueError:
        return None


@router.get("/requests/{service_request_id}.json", responses={404: {"model": list}})
async def get_request(db: DbDep, service_request_id: str,
                      jurisdiction_id: Line | None = None) -> Any:
    ids = _uuids(service_request_id)
    if not ids or len(ids) != 1:
        raise GeoReportError(404, *NO_REQUEST)
    found = await _load(db, ids)
    if not found:
        raise GeoReportError(404, *NO_REQUEST)
    return [await _request_out(db, *found[0])]


@router.get("/requests.json", responses={401: {"model": list}, 400: {"model": list}})
async def list_requests(request: Request, db: DbDep, service_request_id: Line | None = None,
                        service_code: Line | None = None, status: Line | None = None,
                        start_date: Moment | None = None,
                        end_date: Moment | None = None,
                        jurisdiction_id: Line | None = None) -> Any:
    """With `service_request_id` (comma separated): those requests, for anyone who holds
    the ids. Without: the newest 200 matching requests, for signed-in staff (officers see
    their unit's); `service_code` and `status` (open, closed) take comma-separated lists."""
    codes = _codes(service_code, SERVICES, "service_code")
    statuses = _codes(status, {"open", "closed"}, "status")
    if service_request_id:
        ids = _uuids(service_request_id)
        if ids is None:
            raise GeoReportError(400, *words.both("open311.request_ids"))
        return [await _request_out(db, r, row) for r, row in await _load(db, ids)]
    try:
        user = await principal_from_request(request)
    except ApiError as exc:
        raise GeoReportError(exc.status, exc.vi, exc.en) from exc
    if user is None:
        raise GeoReportError(401, *words.both("open311.sign_in"))
    stmt = scope.incidents(select(col(Incident.id)), user).order_by(
        col(Incident.created_at).desc()).limit(200)
    if codes:
        stmt = stmt.where(col(Incident.category).in_(codes))
    if statuses and set(statuses) != {"open", "closed"}:
        stmt = stmt.where(col(Incident.is_open) if statuses[0] == "open"
                          else ~col(Incident.is_open))
    if start_date:
        start_date = start_date if start_date.tzinfo else start_date.replace(tzinfo=UTC)
        stmt = stmt.where(col(Incident.created_at) >= start_date)
    if end_date:
        end_date = end_date if end_date.tzinfo else end_date.replace(tzinfo=UTC)
        stmt = stmt.where(col(Incident.created_at) < end_date)
    async with db.session() as s:
        ids = list((await s.execute(stmt)).scalars().all())
    found = sorted(await _load(db, ids), key=lambda x: x[0].created_at, reverse=True)
    return [await _request_out(db, r, row) for r, row in found]


@router.api_route("/{rest:path}", methods=["GET", "POST"], include_in_schema=False)
async def unknown(rest: str) -> JSONResponse:
    """Anything else under /open311/v2 gets a GeoReport 404, not the API's error shape."""
    raise GeoReportError(404, *words.both("open311.no_resource", rest=repr(rest)))
