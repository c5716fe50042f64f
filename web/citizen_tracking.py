"""The citizen's tracking page (`/t/{token}`): the code, the steps passed, the story from
the read model, and the plain forms to add information or cancel."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from api import limits
from api.deps import HtmxDep, InfraDep
from api.errors import ApiError, FieldError
from api.infra import Infra
from api.services.tracking import (
    TrackingConflict,
    add_info,
    cancel_report,
    get_tracking,
    report_by_token,
)
from core.settings import Settings
from core.vapid import cached_vapid
from schema import words
from schema.states import Action, Role, State, may_take
from schema.text import clean_text
from web import i18n
from web.formstream import StreamedForm, read_form
from web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

# Steps of the citizen's progress bar and the state each state reaches.
STEPS = ["received", "verified", "dispatched", "on_the_way", "closed"]
STEP_OF_STATE = {
    State.RECEIVED: 0, State.VERIFIED: 1, State.CLASSIFIED: 1, State.ROUTED: 2,
    State.ACKNOWLEDGED: 3, State.ON_SCENE: 3, State.CLOSED: 4,
}

# --- tracking page ---------------------------------------------------------------------


def _state(view: Any) -> State:
    return State(str(getattr(view, "state", "received")))


def _track_context(view: Any, token: str, request: Request, settings: Settings,
                   story: dict[str, Any] | None) -> dict[str, Any]:
    """The tracking page's context: the live state from `view`, the story from SQL
    (web.tracking_story.build_story). A merged report shows the primary's progress."""
    state = _state(view)
    lang, _ = i18n.negotiate(request)
    story = story or {}
    primary_state = story.get("primary_state")
    shown = primary_state if state is State.MERGED and primary_state is not None else state
    base = str(request.base_url).rstrip("/")
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
        "can_cancel": may_take(Action.CANCEL, Role.CITIZEN, state),
        "is_open": not state.is_terminal,
        # A merged report follows its primary until that one ends.
        "refresh": not shown.is_terminal,
        "share_url": f"{public}/t/{token}",
        # The notifications offer only where the server sends Web Push (core/vapid.py).
        "push_enabled": cached_vapid(settings)[0] is not None,
        "attachment_count": story.get("own_count"),
        "msg": request.query_params.get("msg", ""),
        # Staff messages not answered yet, highlighted at the top with an answer box.
        "questions": story.get("questions", []) if not state.is_terminal else [],
    }


@router.get("/t/{token}/files/{attachment_id}")
async def tracking_file(token: str, attachment_id: str, infra: InfraDep) -> Response:
    """A photo or video the citizen sent with this report (never a staff member's)."""
    from web.tracking_story import own_attachment

    att = await own_attachment(infra.db, token, attachment_id)
    if att is None:
        return JSONResponse({"error": "not_found",
                             "detail": " / ".join(words.both("error.not_found.file"))},
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
async def tracking_page(token: str, request: Request, infra: InfraDep,
                        htmx: HtmxDep) -> Response:
    ctx = await _tracking_page_context(request, infra, token)
    if ctx is None:
        return render(request, "citizen/not_found.html", status_code=404)
    if htmx:
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
    return _track_context(view, token, request, infra.settings, story)


async def _tracking_with_error(request: Request, infra: Infra, token: str, problem: str,
                               text: str, status_code: int,
                               reply_to: int | None = None) -> Response:
    """The tracking page again, with the add-info (or answer) error and the typed text
    kept beside the form it came from."""
    ctx = await _tracking_page_context(request, infra, token)
    if ctx is None:
        return render(request, "citizen/not_found.html", status_code=404)
    if reply_to is not None:
        ctx.update(msg="err_answer", answer_error=problem, answer_text=text,
                   answer_to=reply_to)
    else:
        ctx.update(msg="err_info", info_error=problem, info_text=text)
    return render(request, "citizen/track.html", ctx, status_code=status_code)


def _reply_to(form: StreamedForm) -> int | None:
    """The answered message's seq from the form (None when absent or not a number)."""
    raw = str(form.get("reply_to") or "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


@router.post("/t/{token}/info")
async def tracking_add_info(token: str, request: Request, infra: InfraDep) -> Response:
    lang, _ = i18n.negotiate(request)
    # The token first: an unknown one gets nothing stored (the body is not read).
    if await report_by_token(infra.db, token) is None:
        response = render(request, "citizen/not_found.html", status_code=404)
        response.headers["Connection"] = "close"
        return response
    form = await read_form(request, infra, lang)
    return form.finish(await _add_info_result(request, infra, token, form))


async def _add_info_result(request: Request, infra: Infra, token: str,
                           form: StreamedForm) -> Response:
    text = clean_text(str(form.get("text") or ""))
    stored = form.stored
    reply_to = _reply_to(form)
    lang, _ = i18n.negotiate(request)
    if form.file_error or form.broken or form.fields_too_large:
        problem = form.file_error or i18n.t(lang, "err.file_type")
        return await _tracking_with_error(request, infra, token, problem, text, form.status,
                                          reply_to)
    if not text and not stored:
        return await _tracking_with_error(request, infra, token, i18n.t(lang, "err.text"),
                                          text, 422, reply_to)
    try:
        limits.check_text(text)
    except ApiError as exc:
        field = (exc.fields or [{}])[0]
        problem = field.get("message_en" if lang == "en" else "message") or exc.vi
        return await _tracking_with_error(request, infra, token, problem, text, 422, reply_to)
    try:
        return await _back_to_tracking(
            token, add_info(infra, token, text or None, [a["attachment_id"] for a in stored],
                            reply_to),
            done="answer" if reply_to is not None else "info",
            busy="busy#answers" if reply_to is not None else "busy#add")
    except FieldError as exc:  # answering a message that is not there
        problem = exc.message_en if lang == "en" else exc.message_vi
        return await _tracking_with_error(request, infra, token, problem, text, 422, reply_to)
    except limits.AdditionLimited as exc:
        # Why, beside the form, with the typed text kept.
        page = await _tracking_with_error(request, infra, token,
                                          exc.en if lang == "en" else exc.vi, text, 429,
                                          reply_to)
        if exc.retry_after_s is not None:
            page.headers["Retry-After"] = str(exc.retry_after_s)
        return page


async def _back_to_tracking(token: str, change: Awaitable[object], done: str,
                            busy: str = "busy") -> Response:
    """Run the citizen's change, then back to the tracking page with what happened."""
    try:
        await change
    except TrackingConflict:
        return RedirectResponse(f"/t/{token}?msg=conflict", status_code=303)
    except (limits.AdditionLimited, FieldError):
        raise  # the page says why beside the form (_add_info_result)
    except ApiError as exc:
        log.info("tracking change refused", error=exc.error)
        return RedirectResponse(f"/t/{token}?msg={busy}", status_code=303)
    return RedirectResponse(f"/t/{token}?msg={done}", status_code=303)


@router.post("/t/{token}/cancel")
async def tracking_cancel(token: str, request: Request, infra: InfraDep) -> Response:
    lang, _ = i18n.negotiate(request)
    form = await read_form(request, infra, lang, max_files=0)  # text only, capped at 64 KB
    reason = str(form.get("reason") or "").strip() or None
    if form.fields_too_large or form.broken:
        return form.finish(RedirectResponse(f"/t/{token}?msg=busy", status_code=303))
    if await report_by_token(infra.db, token) is None:
        return render(request, "citizen/not_found.html", status_code=404)
    try:
        return await _back_to_tracking(token, cancel_report(infra, token, reason),
                                       done="cancelled")
    except FieldError:  # a reason past its limit: refused, the page says so
        return RedirectResponse(f"/t/{token}?msg=busy", status_code=303)

