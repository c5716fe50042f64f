"""Staff sign-in and sign-out pages (the login form has its own pre-session CSRF token)."""

from __future__ import annotations

import secrets

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import auth, origin, sessions, throttle
from api.deps import DbDep, SettingsDep
from api.errors import ApiError
from core.settings import Settings
from schema.states import Role
from schema.text import clean_line
from web import i18n
from web.staffkit import (
    PRE_COOKIE,
    home_of,
    page_lang,
)
from web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)

def _login_page(request: Request, settings: Settings, *, next_path: str | None,
                error: str | None = None, username: str = "",
                status_code: int = 200) -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(16)
    response = render(request, "staff/login.html", {
        "csrf": auth.csrf_token_for(settings, pre), "next": next_path or "",
        "error": error, "username": username,
    }, status_code=status_code)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict",
                        secure=settings.cookies_secure, path="/login")
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
        return RedirectResponse(home_of(user.role), status_code=303)
    return _login_page(request, settings,
                       next_path=origin.safe_next(request.query_params.get("next")))


@router.post("/login")
async def login_submit(request: Request, settings: SettingsDep, db: DbDep) -> Response:
    """Check the login CSRF token, then the API's throttled password check; on success set
    the session cookie and go to the role's home page."""
    lang = page_lang(request)
    form = await request.form()
    username = clean_line(str(form.get("username") or ""))[:200]
    password = str(form.get("password") or "")[:1000]
    next_path = origin.safe_next(str(form.get("next") or ""))
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
    except throttle.LoginThrottled as exc:
        page = _login_page(request, settings, next_path=next_path, username=username,
                           error=exc.en if lang == "en" else exc.vi, status_code=429)
        page.headers["Retry-After"] = str(exc.seconds)
        return page
    except auth.BadCredentials:
        return _login_page(request, settings, next_path=next_path, username=username,
                           error=i18n.t(lang, "staff.login.bad"), status_code=401)
    target = home_of(Role(user.role))
    if next_path and (user.role != Role.OFFICER or next_path.startswith("/officer")) \
            and not next_path.startswith("/login"):
        target = next_path
    response = RedirectResponse(target, status_code=303)
    auth.set_session_cookie(response, settings, user)
    response.delete_cookie(PRE_COOKIE, path="/login")
    log.info("staff login", username=user.username, role=user.role)
    return response


def _logout_refused(request: Request) -> Response:
    return render(request, "staff/message.html", {
        "text": i18n.t(page_lang(request), "staff.logout_refused"), "back": "/login",
    }, status_code=403)


@router.api_route("/logout", methods=["GET", "POST"])
async def logout(request: Request, settings: SettingsDep, db: DbDep) -> Response:
    """Sign out: the session is revoked server-side (a copied cookie stops working too).
    Another site's page cannot sign anybody out: a request it made (Sec-Fetch-Site or
    Origin say so) gets 403 and the session stays, and so does a POST that carries neither
    the session's CSRF token nor a same-origin Origin/Sec-Fetch-Site (an auto-submitted
    form from a browser that sends no such header)."""
    if origin.is_cross_site(request):
        return _logout_refused(request)
    try:
        user = await auth.principal_from_request(request)
    except ApiError:  # the session's form without its CSRF token
        if not origin.is_same_origin(request):
            return _logout_refused(request)
        user = None  # our own page, an old form: the cookie goes
    if request.method == "POST" and user is None and not origin.is_same_origin(request):
        return _logout_refused(request)  # no session sent: nothing proves who asks
    if user is not None and user.via == "session":
        await sessions.revoke(db, settings, user.id, user.sid)
    response = RedirectResponse("/login", status_code=303)
    auth.clear_session_cookie(response, settings)
    return response

