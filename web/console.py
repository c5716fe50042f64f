"""The operator's console: the live list with filters and map, one incident's detail,
its actions, and the ward outlines for the map."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from shapely.geometry import mapping, shape
from sqlalchemy import select
from sqlmodel import col

from api.auth import Principal, principal_from_request
from api.cases import Cases
from api.deps import CasesDep, DbDep, SettingsDep, is_htmx
from api.errors import ApiError
from api.services.detail import incident_detail
from api.services.dispatch import dispatch
from api.services.incidents import list_page, state_counts
from api.services.report_groups import clear_group, reject_group
from core import jsonbound
from core.db import Database
from schema.abuse import GroupRejectIn
from schema.incidents import IncidentDetail, IncidentFilters, ListOrder
from schema.places import WARD_CODE_MAX
from schema.states import OPEN_STATES, Category, State
from schema.tables import Ward, utcnow
from schema.text import ascii_int
from web import console_groups as groups
from web import console_queue as queue
from web import i18n
from web.staffkit import (
    CATEGORIES,
    CATEGORY_COLOURS,
    CONSOLE_ROLES,
    LIST_LIMIT,
    OPEN,
    OUTCOMES,
    STATES,
    ActionPage,
    action_answer,
    active_units,
    error_text,
    form_body,
    page_lang,
    page_user,
    staff_ctx,
    thread_marks,
    to_login,
    toast,
    trigger,
    ward_options,
)
from web.templating import render

log = structlog.get_logger(__name__)

# The "versions" field of a group rejection: {incident id: version}, ~50 bytes a report.
VERSIONS_MAX_BYTES = 256 * 1024
router = APIRouter(include_in_schema=False)

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
    user = await page_user(request, CONSOLE_ROLES)
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
    ward = ascii_int(f["ward"], 0, WARD_CODE_MAX)
    category = Category(f["category"]) if f["category"] in CATEGORIES else None
    overdue = True if f["overdue"] == "1" else None
    filters = IncidentFilters(state=states, ward=ward, category=category,
                              overdue=overdue, q=f["q"][:200] or None,
                              outside_groups=groups.collapses(f))
    order = queue.order_of(request, user)
    limit = ascii_int(request.query_params.get("rows", ""), 1, queue.MAX_ROWS) or LIST_LIMIT
    cursor = request.query_params.get("cursor") or None
    page = await list_page(db, user, filters, limit, cursor[:500] if cursor else None, order)
    lang = page_lang(request)
    queue_groups = [] if cursor else [groups.group_view(lang, g)
                                      for g in await groups.queue_groups(db, user, f)]
    marks = await groups.spam_marks(db, [str(i.id) for i in page.items])
    counts, late = await state_counts(db, user, filters)
    markers = [{"id": i.id, "lat": i.location.lat, "lon": i.location.lon,
                "cat": i.category.value, "code": i.tracking_code, "state": i.state.value,
                "colour": CATEGORY_COLOURS[i.category.value], "overdue": i.overdue}
               for i in page.items if not i.state.is_terminal]
    # The list's own filters and order, carried by the group forms so that the list a
    # group action answers with is the one the operator was looking at.
    list_query = urlencode({**{k: v for k, v in f.items() if v}, "sort": order.value})
    return {"items": page.items, "markers": markers, "filters": f, "now": utcnow(),
            "list_query": list_query,
            "more": page.next_cursor is not None, "next_cursor": page.next_cursor,
            "limit": limit, "order": order.value, "orders": [o.value for o in ListOrder],
            "view": urlencode({**f, "sort": order.value}),
            "counts": [(s.value, counts.get(s, 0)) for s in OPEN_STATES], "late": late,
            "groups": queue_groups, "form_key": str(uuid.uuid4()),
            "rows": queue.rows(page.items, queue_groups, order),
            "spam": {iid: [groups.reason_text(lang, r) for r in rs] for iid, rs in marks.items()}}


@router.get("/console")
async def console_page(request: Request, db: DbDep, cases: CasesDep,
                       settings: SettingsDep) -> Response:
    user = await page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    ctx = staff_ctx(request, user, "console")
    ctx.update(await _list_context(request, db, user))
    ctx.update({"categories": CATEGORIES, "states": STATES, "wards": await ward_options(db),
                "selected": request.query_params.get("selected", ""),
                "tile_url": settings.map_tile_url})
    selected = ctx["selected"]
    ctx["detail"] = None
    if selected:
        ctx.update(await _detail_context(db, cases, user, selected))
    return queue.remember(request, render(request, "staff/console.html", ctx), user,
                     ListOrder(ctx["order"]))


@router.get("/console/incidents")
async def console_list(request: Request, db: DbDep) -> Response:
    user = await page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    ctx = staff_ctx(request, user, "console")
    ctx.update(await _list_context(request, db, user))
    ctx["selected"] = request.query_params.get("selected", "")
    # A "more" button asks for the rows after its cursor only.
    block = "rows" if request.query_params.get("cursor") else "list"
    return queue.remember(request, render(request, "staff/console.html", ctx, block=block), user,
                     ListOrder(ctx["order"]))


async def _detail_context(db: Database, cases: Cases, user: Principal, incident_id: str,
                          detail: Any = None) -> dict[str, Any]:
    if detail is None:
        try:
            detail = await incident_detail(db, cases, user, str(uuid.UUID(incident_id)))
        except (ApiError, ValueError):
            return {"detail": None, "detail_missing": True}
    actions = {a.value for a in detail.allowed_actions}
    marks = await groups.spam_marks(db, [str(detail.id)])
    units = await active_units(db) if actions & {"route", "reassign"} else []
    wards = await ward_options(db) if actions & {"route", "reassign"} else []
    return {"detail": detail, "actions": actions, "units": units, "ward_options": wards,
            "outcomes": OUTCOMES, "categories": CATEGORIES, "form_key": str(uuid.uuid4()),
            "thread": thread_marks(detail.timeline),
            "detail_spam": marks.get(str(detail.id))}


@router.get("/console/incidents/{incident_id}")
async def console_detail(request: Request, incident_id: str, db: DbDep,
                         cases: CasesDep) -> Response:
    user = await page_user(request, CONSOLE_ROLES)
    if isinstance(user, Response):
        return user
    if not is_htmx(request):
        return RedirectResponse(f"/console?selected={incident_id}", status_code=303)
    ctx = staff_ctx(request, user, "console")
    ctx.update(await _detail_context(db, cases, user, incident_id))
    return render(request, "staff/console.html", ctx, block="detail")


@router.post("/console/incidents/{incident_id}/actions/{action}")
async def console_action(request: Request, incident_id: str, action: str, db: DbDep,
                         cases: CasesDep) -> Response:
    async def detail(user: Principal, after: IncidentDetail) -> dict[str, Any]:
        return await _detail_context(db, cases, user, incident_id, after)

    return await action_answer(
        request, db, cases, incident_id, action,
        ActionPage("console", "staff/console.html", "detail",
                   f"/console?selected={incident_id}", detail, CONSOLE_ROLES),
        **{"incident-changed": incident_id})



@router.post("/console/incidents/{incident_id}/dispatch")
async def console_dispatch(request: Request, incident_id: str, db: DbDep,
                           cases: CasesDep) -> Response:
    """"Điều phối": verify, classify and route from one form, sent as those actions in
    turn (api/services/dispatch.py), so the timeline records each."""
    user = await _group_user(request)
    if isinstance(user, Response):
        return user
    lang = page_lang(request)
    if user.role not in CONSOLE_ROLES:
        return toast(request, i18n.t(lang, "staff.err.forbidden"), 403)
    form = await request.form()
    key, version = form.get("idempotency_key"), form.get("version")
    try:
        iid = str(uuid.UUID(incident_id))
    except ValueError:
        return toast(request, i18n.t(lang, "staff.err.invalid"), 404)
    try:
        detail, _ = await dispatch(
            db, cases, user, iid, form_body("classify", form), form_body("route", form),
            idempotency_key=key if isinstance(key, str) and key else None,
            expected_version=ascii_int(version, 0, 2**62) if isinstance(version, str)
            else None)
    except (ApiError, RequestValidationError) as exc:
        status, text = error_text(exc, lang)
        response = toast(request, text, status)
        if status in (409, 412) and is_htmx(request):
            response.headers["HX-Trigger"] = json.dumps({"incident-stale": incident_id})
        return response
    if not is_htmx(request):
        return RedirectResponse(f"/console?selected={iid}", status_code=303)
    ctx = staff_ctx(request, user, "console")
    ctx.update(await _detail_context(db, cases, user, iid, detail))
    response = render(request, "staff/console.html", ctx, block="detail")
    response.headers["HX-Trigger"] = trigger(lang, "staff.done.dispatch",
                                             **{"incident-changed": iid})
    return response


async def _group_answer(request: Request, db: Database, user: Principal, text: str,
                        kind: str) -> Response:
    """The queue after a group action, with a toast saying what happened."""
    if not is_htmx(request):
        return RedirectResponse("/console", status_code=303)
    ctx = staff_ctx(request, user, "console")
    ctx.update(await _list_context(request, db, user))
    ctx["selected"] = request.query_params.get("selected", "")
    response = render(request, "staff/console.html", ctx, block="list")
    response.headers["HX-Trigger"] = json.dumps(
        {"staff-toast": {"text": text, "kind": kind}}, ensure_ascii=True)
    return response


async def _group_user(request: Request) -> Principal | Response:
    lang = page_lang(request)
    try:
        user = await principal_from_request(request)
    except ApiError as exc:  # CSRF refused
        return toast(request, exc.en if lang == "en" else exc.vi, exc.status)
    if user is None:
        return to_login(request, "/console")
    return user


@router.post("/console/report-groups/{group_id}/reject")
async def console_group_reject(request: Request, group_id: str, db: DbDep,
                               cases: CasesDep) -> Response:
    """"Từ chối cả nhóm": every report of the group the operator saw, in one action."""
    user = await _group_user(request)
    if isinstance(user, Response):
        return user
    lang = page_lang(request)
    form = await request.form()
    raw_versions = form.get("versions")
    try:
        versions = jsonbound.loads(raw_versions, max_bytes=VERSIONS_MAX_BYTES, max_depth=1) \
            if isinstance(raw_versions, str) else None
    except ValueError:  # over its bounds, or not JSON
        return toast(request, i18n.t(lang, "staff.group.bad_versions"), 422)
    try:
        body = GroupRejectIn(reason=str(form.get("reason") or ""), versions=versions)
        result = await reject_group(db, cases, user, group_id, body, lang)
    except ApiError as exc:
        status, text = error_text(exc, lang)
        return toast(request, text, status)
    except ValidationError as exc:  # no reason, or versions of the wrong shape
        key = "need_reason" if any(e["loc"][:1] == ("reason",) for e in exc.errors()) \
            else "bad_versions"
        return toast(request, i18n.t(lang, f"staff.group.{key}"), 422)
    text, kind = groups.reject_summary(lang, result)
    return await _group_answer(request, db, user, text, kind)


@router.post("/console/report-groups/{group_id}/not-spam")
async def console_group_clear(request: Request, group_id: str, db: DbDep) -> Response:
    """"Không phải spam": the group's reports go back to the queue one by one, unmarked."""
    user = await _group_user(request)
    if isinstance(user, Response):
        return user
    lang = page_lang(request)
    try:
        group = await clear_group(db, user, group_id)
    except ApiError as exc:
        status, text = error_text(exc, lang)
        return toast(request, text, status)
    return await _group_answer(request, db, user,
                               i18n.t(lang, "staff.group.cleared", n=group.size), "ok")
