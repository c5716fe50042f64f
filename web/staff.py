"""Staff web console: login, the operator console, the officer's phone page and the
supervisor's alerts and statistics (Jinja2 + HTMX, Vietnamese first).

The pages call the same services as the JSON API (api.services.*, api.auth) so that
rules, scoping and errors are the API's; they never call route handlers. Partials are
blocks of the page templates (jinja2-fragments). HTMX actions answer with the updated
block and an `HX-Trigger` toast; a refusal (409, 403, 422) answers a toast block
retargeted at `#toasts`.
Live updates come from the API's SSE stream (/api/v1/events) via web/static/js/staff.js.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import re
import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlmodel import col

from api import auth
from api.auth import Principal
from api.cases import Cases
from api.deps import CasesDep, DbDep, HtmxDep, SettingsDep, is_htmx
from api.errors import ApiError
from api.services.actions import take_action
from api.services.alerts import list_alerts
from api.services.detail import allowed_actions, incident_detail
from api.services.incidents import list_page
from api.services.stats import incident_stats
from core.db import Database
from core.settings import HCMC_TZ, Settings
from schema.actions import STAFF_ACTIONS
from schema.incidents import IncidentFilters
from schema.states import OPEN_STATES, Action, Category, Outcome, State
from schema.stats import GroupBy
from schema.tables import Report, Unit, Ward, utcnow
from web import i18n
from web.templating import render, templates

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

PRE_COOKIE = "canhbao_pre"  # pre-login id that the login form's CSRF token is bound to
CONSOLE_ROLES = ("operator", "supervisor", "admin")
SUPERVISOR_ROLES = ("supervisor", "admin")
HOME = {"operator": "/console", "supervisor": "/console", "admin": "/console",
        "officer": "/officer"}
CATEGORIES = [c.value for c in Category]
STATES = [s.value for s in State]
OPEN = [s.value for s in OPEN_STATES]
OUTCOMES = [o.value for o in Outcome]
CATEGORY_COLOURS = {"crime": "#c62828", "traffic_accident": "#ef6c00",
                    "fire_explosion": "#6a1b9a", "other": "#1565c0"}
LIST_LIMIT = 100
JS_KEYS = ("staff.err.network", "staff.err.upload", "staff.new", "staff.updated",
           "staff.reload", "staff.officer.away", "staff.officer.uploading",
           "staff.officer.uploaded", "report.remove", "staff.overdue", "staff.left")


# --- helpers -------------------------------------------------------------------------------


def _lang(request: Request) -> str:
    return i18n.negotiate(request)[0]


def _home(role: str) -> str:
    return HOME.get(role, "/login")


def _safe_next(value: str | None) -> str | None:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


async def _page_user(request: Request, roles: tuple[str, ...]) -> Principal | Response:
    """The signed-in staff member, or the response to send instead (login or own home)."""
    try:
        user = await auth.principal_from_request(request)
    except ApiError:
        user = None
    if user is None:
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(nxt, safe='/')}", status_code=303)
    if user.role not in roles:
        return RedirectResponse(_home(user.role), status_code=303)
    return user


def _staff_ctx(request: Request, user: Principal, page: str) -> dict[str, Any]:
    lang = _lang(request)
    return {"user": user, "csrf": auth.csrf_token(request), "page": page,
            "colours": CATEGORY_COLOURS, "is_supervisor": user.role in SUPERVISOR_ROLES,
            "staff_js": {k: i18n.t(lang, k) for k in JS_KEYS}}


def _trigger(lang: str, key: str, kind: str = "ok", **extra: Any) -> str:
    """HX-Trigger header value (ASCII-escaped JSON so that Vietnamese survives latin-1)."""
    payload: dict[str, Any] = {"staff-toast": {"text": i18n.t(lang, key), "kind": kind}}
    payload.update(extra)
    return json.dumps(payload, ensure_ascii=True)


def _toast(request: Request, text: str, status: int, kind: str = "error") -> Response:
    """An error toast block aimed at #toasts (HTMX), or a short page for a plain form post."""
    if not is_htmx(request):
        back = request.headers.get("referer", "")
        back = back if back.startswith(str(request.base_url)) else "/login"
        return render(request, "staff/message.html", {"text": text, "back": back},
                      status_code=status)
    response = render(request, "staff/base.html", {"toast": {"text": text, "kind": kind}},
                      status_code=status, block="toast")
    response.headers["HX-Retarget"] = "#toasts"
    response.headers["HX-Reswap"] = "beforeend"
    return response


def _api_error_text(exc: Exception, lang: str) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        text = exc.en if lang == "en" else exc.vi
        if exc.fields:
            parts = [f.get("message_en", f["message"]) if lang == "en" else f["message"]
                     for f in exc.fields]
            text = f"{text}: {'; '.join(parts)}"
        return exc.status, text
    if isinstance(exc, RequestValidationError):
        fields = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err.get("loc", ())[1:]) or "body"
            fields.append(f"{i18n.t(lang, 'staff.field.' + name)}")
        return 422, i18n.t(lang, "staff.err.invalid") + ": " + ", ".join(fields)
    return 500, i18n.t(lang, "err.generic")


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


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


async def _units(db: Database) -> list[Unit]:
    async with db.session() as s:
        rows = (await s.execute(select(Unit).where(col(Unit.active)))).scalars().all()
    city = sorted((u for u in rows if u.kind != "ward_police"), key=lambda u: u.name)
    wards = sorted((u for u in rows if u.kind == "ward_police"), key=lambda u: u.name)
    return city + wards


async def _wards(db: Database) -> list[Any]:
    """(code, name) rows of all wards, by name, for the selects."""
    stmt = select(col(Ward.code), col(Ward.name)).order_by(col(Ward.name))
    async with db.session() as s:
        return list((await s.execute(stmt)).all())


# --- login / logout ------------------------------------------------------------------------


def _login_page(request: Request, settings: Settings, *, next_path: str | None,
                error: str | None = None, username: str = "",
                status_code: int = 200) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(16)
    response = render(request, "staff/login.html", {
        "csrf": auth.csrf_token_for(settings, pre), "next": next_path or "",
        "error": error, "username": username,
    }, status_code=status_code)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, path="/login")
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/login")
async def login_page(request: Request, settings: SettingsDep) -> Response:
    user = None
    try:
        user = await auth.principal_from_request(request)
    except ApiError:
        pass
    if user is not None and user.via == "session":
        return RedirectResponse(_home(user.role), status_code=303)
    return _login_page(request, settings,
                       next_path=_safe_next(request.query_params.get("next")))


@router.post("/login")
async def login_submit(request: Request, settings: SettingsDep, db: DbDep) -> Response:
    """Check the login CSRF token, then the API's throttled password check; on success set
    the session cookie and go to the role's home page."""
    lang = _lang(request)
    form = await request.form()
    username = str(form.get("username") or "").strip()[:200]
    password = str(form.get("password") or "")[:1000]
    next_path = _safe_next(str(form.get("next") or ""))
    pre = request.cookies.get(PRE_COOKIE, "")
    if not pre or not auth.csrf_valid(settings, pre, str(form.get(auth.CSRF_FIELD) or "")):
        return _login_page(request, settings, next_path=next_path, username=username,
                           error=i18n.t(lang, "staff.login.expired"), status_code=403)
    if not username or not password:
        return _login_page(request, settings, next_path=next_path, username=username,
                           error=i18n.t(lang, "staff.login.missing"), status_code=422)
    try:
        user = await auth.authenticate(db, username, password,
                                       auth.client_address(request))
    except auth.LoginThrottled as exc:
        return _login_page(request, settings, next_path=next_path, username=username,
                           error=exc.en if lang == "en" else exc.vi, status_code=429)
    except auth.BadCredentials:
        return _login_page(request, settings, next_path=next_path, username=username,
                           error=i18n.t(lang, "staff.login.bad"), status_code=401)
    target = _home(user.role)
    if next_path and (user.role != "officer" or next_path.startswith("/officer")) \
            and not next_path.startswith("/login"):
        target = next_path
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, settings, user)
    response.delete_cookie(PRE_COOKIE, path="/login")
    log.info("staff login", username=user.username, role=user.role)
    return response


@router.api_route("/logout", methods=["GET", "POST"])
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    auth.clear_session_cookie(response)
    return response


# --- operator console ------------------------------------------------------------------

_ward_outlines: dict[str, bytes] = {}


def _outlines_geojson(rows: list[Any]) -> bytes:
    """All ward boundaries, simplified to about 20 m, as one small FeatureCollection."""
    features = []
    for code, name, geometry in rows:
        if not geometry:
            continue
        geom = shape(json.loads(geometry)).simplify(2e-4, preserve_topology=True)
        features.append({"type": "Feature", "properties": {"code": code, "name": name},
                         "geometry": mapping(geom)})
    text = json.dumps({"type": "FeatureCollection", "features": features},
                      separators=(",", ":"), ensure_ascii=False)
    # Five decimals (about 1 m) are plenty for outlines.
    text = re.sub(r"(\d+\.\d{5})\d+", r"\1", text)
    return gzip.compress(text.encode(), 6)


@router.get("/console/wards.geojson")
async def ward_outlines(request: Request, db: DbDep) -> Response:
    """Ward outlines for the console map (the map has no tiles of its own)."""
    user = await _page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    if "all" not in _ward_outlines:
        async with db.session() as s:
            stmt = select(col(Ward.code), col(Ward.name), col(Ward.geometry))
            rows = (await s.execute(stmt)).all()
        _ward_outlines["all"] = await asyncio.to_thread(_outlines_geojson, list(rows))
    packed = _ward_outlines["all"]
    headers = {"Cache-Control": "private, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(packed, media_type="application/geo+json", headers=headers)
    return Response(gzip.decompress(packed), media_type="application/geo+json", headers=headers)



def _filters(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: q.get(k, "").strip() for k in ("state", "category", "ward", "overdue", "q")}


async def _list_context(request: Request, db: Database, user: Principal) -> dict[str, Any]:
    f = _filters(request)
    states = [State(f["state"])] if f["state"] in STATES else (
        [State(s) for s in OPEN] if f["state"] == "" else [])
    ward = int(f["ward"]) if f["ward"].isdigit() else None
    category = Category(f["category"]) if f["category"] in CATEGORIES else None
    overdue = True if f["overdue"] == "1" else None
    filters = IncidentFilters(state=states, ward=ward, category=category,
                              overdue=overdue, q=f["q"][:200] or None)
    page = await list_page(db, user, filters, LIST_LIMIT)
    markers = [{"id": i.id, "lat": i.location.lat, "lon": i.location.lon,
                "cat": i.category.value, "code": i.tracking_code, "state": i.state.value,
                "colour": CATEGORY_COLOURS[i.category.value], "overdue": i.overdue}
               for i in page.items if not i.state.is_terminal]
    return {"items": page.items, "markers": markers, "filters": f, "now": utcnow(),
            "more": page.next_cursor is not None, "limit": LIST_LIMIT,
            "silent_ids": await _silent_ids(db, [str(i.id) for i in page.items])}


async def _silent_ids(db: Database, ids: list[str]) -> set[str]:
    """Which of `ids` came in as a silent SOS (marked in the report as accepted)."""
    if not ids:
        return set()
    async with db.session() as s:
        rows = (await s.execute(select(col(Report.id), col(Report.payload))
                                .where(col(Report.id).in_(ids)))).all()
    return {r[0] for r in rows if isinstance(r[1], dict) and r[1].get("silent")}


@router.get("/console")
async def console_page(request: Request, db: DbDep, cases: CasesDep,
                       settings: SettingsDep) -> Response:
    user = await _page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    ctx = _staff_ctx(request, user, "console")
    ctx.update(await _list_context(request, db, user))
    ctx.update({"categories": CATEGORIES, "states": STATES, "wards": await _wards(db),
                "selected": request.query_params.get("selected", ""),
                "tile_url": settings.map_tile_url})
    selected = ctx["selected"]
    ctx["detail"] = None
    if selected:
        ctx.update(await _detail_context(db, cases, user, selected))
    return render(request, "staff/console.html", ctx)


@router.get("/console/incidents")
async def console_list(request: Request, db: DbDep) -> Response:
    user = await _page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    ctx = _staff_ctx(request, user, "console")
    ctx.update(await _list_context(request, db, user))
    ctx["selected"] = request.query_params.get("selected", "")
    return render(request, "staff/console.html", ctx, block="list")


async def _detail_context(db: Database, cases: Cases, user: Principal, incident_id: str,
                          detail: Any = None) -> dict[str, Any]:
    if detail is None:
        try:
            detail = await incident_detail(db, cases, user, str(uuid.UUID(incident_id)))
        except (ApiError, ValueError):
            return {"detail": None, "detail_missing": True}
    actions = {a.value for a in detail.allowed_actions}
    units = await _units(db) if actions & {"route", "reassign"} else []
    wards = await _wards(db) if actions & {"route", "reassign"} else []
    return {"detail": detail, "actions": actions, "units": units, "ward_options": wards,
            "outcomes": OUTCOMES, "categories": CATEGORIES, "form_key": str(uuid.uuid4()),
            "detail_silent": bool(await _silent_ids(db, [str(detail.id)]))}


@router.get("/console/incidents/{incident_id}")
async def console_detail(request: Request, incident_id: str, db: DbDep,
                         cases: CasesDep) -> Response:
    user = await _page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    if not is_htmx(request):
        return RedirectResponse(f"/console?selected={incident_id}", status_code=303)
    ctx = _staff_ctx(request, user, "console")
    ctx.update(await _detail_context(db, cases, user, incident_id))
    return render(request, "staff/console.html", ctx, block="detail")


def _form_body(action: str, form: Any) -> dict[str, Any]:
    """The API action body from the submitted form fields."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def integer(name: str) -> int | str:
        raw = text(name)
        return int(raw) if raw.lstrip("-").isdigit() else raw

    match action:
        case "reject":
            return {"reason": text("reason")}
        case "merge":
            return {"into_incident_id": text("into_incident_id")}
        case "classify":
            return {"category": text("category"), "priority": integer("priority")}
        case "route" | "reassign":
            body: dict[str, Any] = (
                {"ward_code": integer("ward_code")} if text("ward_code")
                else {"unit_id": text("unit_id")})
            if action == "reassign":
                body["reason"] = text("reason")
            return body
        case "note":
            return {"text": text("text"),
                    "attachments": [a for a in form.getlist("attachment_ids")
                                    if isinstance(a, str) and a],
                    "public": text("public") in ("1", "on", "true")}
        case "close":
            return {"outcome": text("outcome"), "summary": text("summary")}
        case "publish_alert":
            return {"headline": text("headline"), "instruction": text("instruction"),
                    "radius_m": integer("radius_m")}
    return {}


async def _act(request: Request, db: Database, cases: Cases, incident_id: str, action: str,
               roles: tuple[str, ...]) -> tuple[Principal, Any] | Response:
    """Run one API action for the signed-in user; the case after it, or an error toast."""
    lang = _lang(request)
    try:
        user = await auth.principal_from_request(request)
    except ApiError as exc:  # CSRF refused
        return _toast(request, exc.en if lang == "en" else exc.vi, exc.status)
    if user is None:
        return Response(status_code=204, headers={"HX-Redirect": "/login"})
    if user.role not in roles:
        return _toast(request, i18n.t(lang, "staff.err.forbidden"), 403)
    try:
        staff_action = Action(action)
        iid = str(uuid.UUID(incident_id))
    except ValueError:
        staff_action = None
    if staff_action not in STAFF_ACTIONS:
        return _toast(request, i18n.t(lang, "staff.err.invalid"), 404)
    form = await request.form()
    key = form.get("idempotency_key")
    try:
        detail = await take_action(
            db, cases, user, iid, Action(action), _form_body(action, form),
            idempotency_key=key if isinstance(key, str) and key else None)
    except (ApiError, RequestValidationError) as exc:
        status, text = _api_error_text(exc, lang)
        log.info("staff action refused", action=action, status=status, user=user.username)
        return _toast(request, text, status)
    return user, detail


@router.post("/console/incidents/{incident_id}/actions/{action}")
async def console_action(request: Request, incident_id: str, action: str, db: DbDep,
                         cases: CasesDep) -> Response:
    result = await _act(request, db, cases, incident_id, action, CONSOLE_ROLES)
    if isinstance(result, Response):
        return result
    user, detail = result
    if not is_htmx(request):
        return RedirectResponse(f"/console?selected={incident_id}", status_code=303)
    ctx = _staff_ctx(request, user, "console")
    ctx.update(await _detail_context(db, cases, user, incident_id, detail))
    response = render(request, "staff/console.html", ctx, block="detail")
    response.headers["HX-Trigger"] = _trigger(_lang(request), f"staff.done.{action}",
                                              **{"incident-changed": incident_id})
    return response


# --- officer -------------------------------------------------------------------------------


def _officer_cards(user: Principal, items: list[Any]) -> list[dict[str, Any]]:
    return [{"i": i, "actions": {a.value for a in allowed_actions(
        user, i.state, i.unit.id if i.unit else None)}} for i in items]


async def _officer_context(db: Database, user: Principal) -> dict[str, Any]:
    page = await list_page(db, user, IncidentFilters(state=list(OPEN_STATES)), LIST_LIMIT)
    return {"cards": _officer_cards(user, page.items), "outcomes": OUTCOMES,
            "form_key": str(uuid.uuid4())}


@router.get("/officer")
async def officer_page(request: Request, db: DbDep, htmx: HtmxDep) -> Response:
    user = await _page_user(request, ("officer",))
    if isinstance(user, Response):
        return user
    ctx = _staff_ctx(request, user, "officer")
    ctx.update(await _officer_context(db, user))
    block = "cards" if htmx else None
    return render(request, "staff/officer.html", ctx, block=block)


@router.get("/officer/incidents/{incident_id}")
async def officer_detail(request: Request, incident_id: str, db: DbDep,
                         cases: CasesDep) -> Response:
    """Photos and the notes so far, opened on demand inside the officer's card."""
    user = await _page_user(request, ("officer",))
    if isinstance(user, Response):
        return user
    ctx = _staff_ctx(request, user, "officer")
    try:
        ctx["d"] = await incident_detail(db, cases, user, str(uuid.UUID(incident_id)))
    except (ApiError, ValueError):
        ctx["d"] = None
    return render(request, "staff/officer.html", ctx, block="more",
                  status_code=200 if ctx["d"] else 404)


@router.post("/officer/incidents/{incident_id}/actions/{action}")
async def officer_action(request: Request, incident_id: str, action: str, db: DbDep,
                         cases: CasesDep) -> Response:
    result = await _act(request, db, cases, incident_id, action, ("officer",))
    if isinstance(result, Response):
        return result
    user, _detail = result
    if not is_htmx(request):
        return RedirectResponse("/officer", status_code=303)
    ctx = _staff_ctx(request, user, "officer")
    ctx.update(await _officer_context(db, user))
    response = render(request, "staff/officer.html", ctx, block="cards")
    response.headers["HX-Trigger"] = _trigger(_lang(request), f"staff.done.{action}")
    return response


# --- supervisor ----------------------------------------------------------------------------


def _day(text: str | None, default: date) -> date:
    try:
        return date.fromisoformat(text) if text else default
    except ValueError:
        return default


def bars(groups: list[Any], label_of: Any, top: int | None = None,
         width: int = 560, row: int = 24) -> dict[str, Any]:
    """Geometry of a horizontal SVG bar chart (server-side, no chart library)."""
    rows = sorted(groups, key=lambda g: -g.count)[:top] if top else list(groups)
    peak = max((g.count for g in rows), default=0) or 1
    label_w, plot_w = 190, width - 190 - 50
    out = []
    for n, g in enumerate(rows):
        w = round(plot_w * g.count / peak, 1)
        out.append({"y": n * row, "w": max(w, 1.0), "count": g.count, "label": label_of(g),
                    "key": g.key,
                    "tx": label_w + max(w, 1.0) + 6})
    return {"rows": out, "height": max(len(out), 1) * row, "width": width,
            "label_w": label_w, "row": row}


def hour_columns(groups: list[Any], width: int = 600, height: int = 170) -> dict[str, Any]:
    """Geometry of a 24-column SVG chart of incidents by hour of day (16 px on top for the
    value labels, 20 px below for the hours)."""
    counts = {int(g.key): g.count for g in groups if g.key is not None}
    peak = max(counts.values(), default=0) or 1
    col = width / 24
    cols = []
    for hour in range(24):
        c = counts.get(hour, 0)
        h = round((height - 36) * c / peak, 1)
        cols.append({"x": round(hour * col + 2, 1), "w": round(col - 4, 1),
                     "y": round(height - 20 - h, 1), "h": h, "count": c, "hour": hour,
                     "lx": round(hour * col + col / 2, 1)})
    return {"cols": cols, "width": width, "height": height}


async def _alerts_context(db: Database, user: Principal) -> dict[str, Any]:
    rows = await list_alerts(db, user, open=True, limit=200)
    best: dict[str, Any] = {}
    for a in rows:
        if a.incident_id not in best or a.level > best[a.incident_id].level:
            best[a.incident_id] = a
    now = utcnow()
    async with db.session() as s:
        names = dict((await s.execute(select(col(Ward.code), col(Ward.name)))).all())
    alerts = [{"a": a, "ward_name": names.get(a.ward_code, ""),
               "overdue_s": (now - a.overdue_since).total_seconds()}
              for a in sorted(best.values(), key=lambda a: (-a.level, a.overdue_since))]
    return {"alerts": alerts, "units": await _units(db) if alerts else [],
            "outcomes": OUTCOMES, "form_key": str(uuid.uuid4())}


async def _stats_context(request: Request, db: Database, user: Principal,
                         lang: str) -> dict[str, Any]:
    today = datetime.now(HCMC_TZ).date()
    day_to = _day(request.query_params.get("to"), today)
    day_from = _day(request.query_params.get("from"), day_to - timedelta(days=6))
    if day_from > day_to:
        day_from, day_to = day_to, day_from
    start = datetime.combine(day_from, time(), HCMC_TZ).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(), HCMC_TZ).astimezone(UTC)
    results = {}
    for group in (GroupBy.WARD, GroupBy.CATEGORY, GroupBy.HOUR):
        results[group.value] = await incident_stats(db, user, start, end, group)
    total = results["ward"].total
    return {
        "day_from": day_from.isoformat(), "day_to": day_to.isoformat(), "total": total,
        "by_ward": bars(results["ward"].groups, lambda g: g.label or i18n.t(lang, "staff.none"),
                        top=15),
        "by_category": bars(results["category"].groups,
                            lambda g: i18n.t(lang, f"cat.{g.key}")),
        "by_hour": hour_columns(results["hour"].groups),
        "truncated": results["ward"].truncated,
    }


@router.get("/supervisor")
async def supervisor_page(request: Request, db: DbDep, htmx: HtmxDep) -> Response:
    user = await _page_user(request, SUPERVISOR_ROLES)
    if isinstance(user, Response):
        return user
    lang = _lang(request)
    ctx = _staff_ctx(request, user, "supervisor")
    ctx.update(await _alerts_context(db, user))
    if htmx and request.query_params.get("part") == "alerts":
        return render(request, "staff/supervisor.html", ctx, block="alerts")
    ctx.update(await _stats_context(request, db, user, lang))
    return render(request, "staff/supervisor.html", ctx)


@router.post("/supervisor/incidents/{incident_id}/actions/{action}")
async def supervisor_action(request: Request, incident_id: str, action: str, db: DbDep,
                            cases: CasesDep) -> Response:
    result = await _act(request, db, cases, incident_id, action, SUPERVISOR_ROLES)
    if isinstance(result, Response):
        return result
    user, _detail = result
    if not is_htmx(request):
        return RedirectResponse("/supervisor", status_code=303)
    ctx = _staff_ctx(request, user, "supervisor")
    ctx.update(await _alerts_context(db, user))
    response = render(request, "staff/supervisor.html", ctx, block="alerts")
    response.headers["HX-Trigger"] = _trigger(_lang(request), f"staff.done.{action}")
    return response


templates.env.filters["duration"] = fmt_duration
templates.env.filters["iso"] = _iso
