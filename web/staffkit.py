"""Shared by the staff pages: who is signed in (or where to send them), the page context,
HTMX toasts and triggers, the select options, and running an action from a form through
api.services.actions (never through a route handler)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import col

from api import auth, scope
from api.auth import Principal
from api.cases import Cases
from api.deps import is_htmx
from api.errors import ApiError
from api.services.actions import take_action
from core.db import Database
from schema import words
from schema.actions import STAFF_ACTIONS
from schema.incidents import IncidentDetail
from schema.payloads import MAX_MESSAGE
from schema.states import (
    OPEN_STATES,
    REPLY_EVENT,
    STAFF_MESSAGE_EVENTS,
    Action,
    Category,
    Outcome,
    Role,
    State,
)
from schema.tables import Unit, Ward
from schema.text import ascii_int
from web import i18n
from web.templating import render

log = structlog.get_logger(__name__)

PRE_COOKIE = "canhbao_pre"  # pre-login id that the login form's CSRF token is bound to
CONSOLE_ROLES = frozenset({Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN})
SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
OFFICER_ROLES = frozenset({Role.OFFICER})
HOME = {Role.OPERATOR: "/console", Role.SUPERVISOR: "/console", Role.ADMIN: "/console",
        Role.OFFICER: "/officer"}
CATEGORIES = [c.value for c in Category]
STATES = [s.value for s in State]
OPEN = [s.value for s in OPEN_STATES]
OUTCOMES = [o.value for o in Outcome]
CATEGORY_COLOURS = {"crime": "#c62828", "traffic_accident": "#ef6c00",
                    "fire_explosion": "#6a1b9a", "other": "#1565c0"}
LIST_LIMIT = 100
# Ready phrases of the "Hỏi người báo tin" box (the words the reporter reads, in Vietnamese
# whatever the staff page's language).
QUICK_PHRASES = tuple(words.t("vi", key) for key in (
    "phrase.plate", "phrase.safe", "phrase.leave", "phrase.where"))
JS_KEYS = ("staff.err.network", "staff.err.upload", "staff.new", "staff.updated",
           "staff.reload", "staff.officer.away", "staff.officer.uploading",
           "staff.officer.uploaded", "report.remove", "staff.overdue", "staff.left",
           "staff.overdue_min", "staff.officer.gone.moved", "staff.officer.gone.merged",
           "staff.officer.gone.cancelled", "staff.officer.gone.rejected",
           "staff.msg.replied", "staff.msg.unread",
           "staff.d.reporter_location", "staff.d.reporter_location_acc",
           "staff.list.new", "staff.list.reorder", "staff.keys.none", "staff.detail.pick")


# --- helpers -------------------------------------------------------------------------------


def page_lang(request: Request) -> str:
    return i18n.negotiate(request)[0]


def home_of(role: Role) -> str:
    return HOME.get(role, "/login")


def to_login(request: Request, back: str) -> Response:
    """Send a caller without a staff session to the sign-in page, which leads back to the
    page path `back`: HTMX follows an HX-Redirect (204), a plain browser a 303."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": "/login"})
    return RedirectResponse(f"/login?next={quote(back, safe='/')}", status_code=303)


async def page_user(request: Request, roles: frozenset[Role]) -> Principal | Response:
    """The signed-in staff member, or the response to send instead (login or own home)."""
    try:
        user = await auth.principal_from_request(request)
    except ApiError:
        user = None
    if user is None:
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return to_login(request, nxt)
    if user.role not in roles:
        return RedirectResponse(home_of(user.role), status_code=303)
    return user


def staff_ctx(request: Request, user: Principal, page: str) -> dict[str, Any]:
    lang = page_lang(request)
    return {"user": user, "csrf": auth.csrf_token(request), "page": page,
            "colours": CATEGORY_COLOURS, "is_supervisor": user.role in SUPERVISOR_ROLES,
            "quick_phrases": QUICK_PHRASES, "max_message": MAX_MESSAGE,
            "is_triage": scope.triages_report_groups(user),
            "staff_js": {k: i18n.t(lang, k) for k in JS_KEYS}}


def thread_marks(timeline: list[Any]) -> dict[str, Any]:
    """For a staff timeline: the text of each message to the reporter by seq (`asked`)
    and the seqs answered (`answered`), so a reply can say what it answers."""
    asked = {ev.seq: str(ev.data.get("text") or "") for ev in timeline
             if ev.action in STAFF_MESSAGE_EVENTS}
    answered = {ev.data.get("reply_to") for ev in timeline if ev.action == REPLY_EVENT}
    return {"asked": asked, "answered": answered}


def trigger(lang: str, key: str, kind: str = "ok", **extra: Any) -> str:
    """HX-Trigger header value (ASCII-escaped JSON so that Vietnamese survives latin-1)."""
    payload: dict[str, Any] = {"staff-toast": {"text": i18n.t(lang, key), "kind": kind}}
    payload.update(extra)
    return json.dumps(payload, ensure_ascii=True)


def toast(request: Request, text: str, status: int, kind: str = "error") -> Response:
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


def error_text(exc: Exception, lang: str) -> tuple[int, str]:
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


async def active_units(db: Database) -> list[Unit]:
    async with db.session() as s:
        rows = (await s.execute(select(Unit).where(col(Unit.active)))).scalars().all()
    city = sorted((u for u in rows if u.kind != "ward_police"), key=lambda u: u.name)
    wards = sorted((u for u in rows if u.kind == "ward_police"), key=lambda u: u.name)
    return city + wards


async def ward_options(db: Database) -> list[Any]:
    """(code, name) rows of all wards, by name, for the selects."""
    stmt = select(col(Ward.code), col(Ward.name)).order_by(col(Ward.name))
    async with db.session() as s:
        return list((await s.execute(stmt)).all())


def form_body(action: str, form: Any) -> dict[str, Any]:
    """The API action body from the submitted form fields."""

    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def integer(name: str) -> int | str:
        raw = text(name)
        number = ascii_int(raw, -2**62, 2**62)
        return raw if number is None else number

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
        case "message":
            # A quick phrase button (no JavaScript) sends its own words.
            return {"text": text("text") or text("quick")}
        case "close":
            return {"outcome": text("outcome"), "summary": text("summary")}
        case "publish_alert":
            return {"headline": text("headline"), "instruction": text("instruction"),
                    "radius_m": integer("radius_m")}
    return {}


async def act_from_form(request: Request, db: Database, cases: Cases, incident_id: str,
                        action: str, roles: frozenset[Role], back: str
                        ) -> tuple[Principal, Any] | Response:
    """Run one API action for the signed-in user; the case after it, an error toast, or
    without a staff session the way to the sign-in page (which then leads to `back`)."""
    lang = page_lang(request)
    try:
        user = await auth.principal_from_request(request)
    except ApiError as exc:  # CSRF refused
        return toast(request, exc.en if lang == "en" else exc.vi, exc.status)
    if user is None:
        return to_login(request, back)
    if user.role not in roles:
        return toast(request, i18n.t(lang, "staff.err.forbidden"), 403)
    try:
        staff_action = Action(action)
        iid = str(uuid.UUID(incident_id))
    except ValueError:
        staff_action = None
    if staff_action not in STAFF_ACTIONS:
        return toast(request, i18n.t(lang, "staff.err.invalid"), 404)
    form = await request.form()
    key = form.get("idempotency_key")
    version = form.get("version")
    try:
        detail = await take_action(
            db, cases, user, iid, Action(action), form_body(action, form),
            idempotency_key=key if isinstance(key, str) and key else None,
            expected_version=ascii_int(version, 0, 2**62) if isinstance(version, str)
            else None)
    except (ApiError, RequestValidationError) as exc:
        status, text = error_text(exc, lang)
        log.info("staff action refused", action=action, status=status, user=user.username)
        response = toast(request, text, status)
        if status in (409, 412) and is_htmx(request):
            # Someone else changed it: show what the page now looks like.
            response.headers["HX-Trigger"] = json.dumps({"incident-stale": iid})
        return response
    return user, detail


PageContext = Callable[[Principal, IncidentDetail], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ActionPage:
    """Where a staff page's action answer goes: the page to go back to without HTMX, the
    template block to re-render with HTMX, and the context that block needs."""

    page: str
    template: str
    block: str
    back: str
    context: PageContext
    roles: frozenset[Role]


async def action_answer(request: Request, db: Database, cases: Cases, incident_id: str,
                        action: str, where: ActionPage, **trigger_extra: Any) -> Response:
    """Run the action from the posted form; answer with the page's block and a toast
    (HTMX), a redirect back (plain form), or the refusal's toast."""
    result = await act_from_form(request, db, cases, incident_id, action, where.roles,
                                 where.back)
    if isinstance(result, Response):
        return result
    user, detail = result
    if not is_htmx(request):
        return RedirectResponse(where.back, status_code=303)
    ctx = staff_ctx(request, user, where.page)
    ctx.update(await where.context(user, detail))
    response = render(request, where.template, ctx, block=where.block)
    response.headers["HX-Trigger"] = trigger(page_lang(request), f"staff.done.{action}",
                                             **trigger_extra)
    return response
