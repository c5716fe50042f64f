"""Staff accounts: password check with throttling, signed bearer tokens, browser sessions
and CSRF tokens.

- Bearer tokens and the session cookie are itsdangerous-signed with settings.secret_key and
  expire after settings.session_hours. Both carry the user id and a session id (`sid`).
- CSRF: a browser session (cookie) must send `X-CSRF-Token` (or a `csrf_token` form field)
  on unsafe methods; the token is the session id signed with another salt, so it cannot be
  made without the secret and is bound to the session. Bearer callers need none.
- Throttling: `MAX_FAILURES` failed logins for one username (or `MAX_ADDRESS_FAILURES`
  from one address) within `WINDOW` answer 429 until the window passes.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, func, select
from sqlmodel import col

from api.errors import ApiError
from core.db import Database
from core.security import DUMMY_HASH, verify_password
from core.settings import Settings
from schema.states import STAFF_ROLES, Role
from schema.tables import LoginAttempt, Unit, User, utcnow

SESSION_COOKIE = "canhbao_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 30
WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Principal:
    """The authenticated staff member of a request."""

    id: str
    username: str
    role: Role
    unit_id: str | None
    full_name: str
    sid: str
    via: str  # bearer | session
    unit_name: str | None = None

    @property
    def is_officer(self) -> bool:
        return self.role is Role.OFFICER

    def actor(self) -> Any:
        from schema.payloads import Actor

        return Actor(username=self.username, role=self.role, user_id=self.id,
                     unit_id=self.unit_id, display_name=self.full_name or None)


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=f"canhbao.{salt}")


def make_token(settings: Settings, user: User, sid: str | None = None) -> str:
    return _serializer(settings, "access").dumps(
        {"uid": user.id, "sid": sid or secrets.token_urlsafe(16)})


def read_token(settings: Settings, token: str, salt: str = "access") -> dict | None:
    try:
        data = _serializer(settings, salt).loads(token, max_age=settings.session_hours * 3600)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and "uid" in data else None


def csrf_token_for(settings: Settings, sid: str) -> str:
    return _serializer(settings, "csrf").dumps(sid)


def csrf_valid(settings: Settings, sid: str, token: str | None) -> bool:
    if not token:
        return False
    try:
        value = _serializer(settings, "csrf").loads(token,
                                                    max_age=settings.session_hours * 3600)
    except BadSignature:
        return False
    return secrets.compare_digest(str(value), sid)


def csrf_token(request: Request) -> str:
    """The CSRF token for the browser session of `request` (for forms and HTMX headers).
    Without a session, one bound to a pre-login cookie id is made (see `login_csrf`)."""
    settings: Settings = request.app.state.settings
    principal = request.scope.get("canhbao.principal")
    if principal is not None:
        return csrf_token_for(settings, principal.sid)
    data = _session_data(request)
    if data:
        return csrf_token_for(settings, data["sid"])
    return csrf_token_for(settings, request.cookies.get("canhbao_pre", "") or "anonymous")


def _session_data(request: Request) -> dict | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    return read_token(request.app.state.settings, raw, "session")


def set_session_cookie(response: Response, settings: Settings, user: User) -> str:
    """Log `user` in on this browser; returns the session's CSRF token."""
    sid = secrets.token_urlsafe(16)
    value = _serializer(settings, "session").dumps({"uid": user.id, "sid": sid})
    response.set_cookie(SESSION_COOKIE, value, max_age=settings.session_hours * 3600,
                        httponly=True, samesite="lax", secure=settings.secure_cookies,
                        path="/")
    return csrf_token_for(settings, sid)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


async def _load_principal(db: Database, uid: str, sid: str, via: str) -> Principal | None:
    async with db.session() as s:
        row = (await s.execute(
            select(User, col(Unit.name)).outerjoin(Unit, col(Unit.id) == col(User.unit_id))
            .where(col(User.id) == uid))).first()
    if row is None:
        return None
    user, unit_name = row
    if not user.active or user.role not in STAFF_ROLES:
        return None
    return Principal(id=user.id, username=user.username, role=Role(user.role),
                     unit_id=user.unit_id, full_name=user.full_name, sid=sid, via=via,
                     unit_name=unit_name)


async def principal_from_request(request: Request, read_form: bool = True) -> Principal | None:
    """Bearer token first, then the session cookie (which also needs CSRF on unsafe
    methods). None when neither is valid. With `read_form=False` the body is never read
    for a CSRF form field (routes that stream the body): a session without the CSRF header
    then counts as no principal instead of a 403."""
    cached = request.scope.get("canhbao.principal")
    if cached is not None:
        return cached
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    principal = None
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        data = read_token(settings, auth[7:].strip())
        if data is None:
            return None
        principal = await _load_principal(db, data["uid"], data.get("sid", ""), "bearer")
    else:
        data = _session_data(request)
        if data is not None:
            principal = await _load_principal(db, data["uid"], data.get("sid", ""), "session")
            if principal is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
                token = request.headers.get(CSRF_HEADER)
                if not token and not read_form:
                    return None
                if not token and request.headers.get("content-type", "").startswith(
                        ("application/x-www-form-urlencoded", "multipart/form-data")):
                    form = await request.form()
                    value = form.get(CSRF_FIELD)
                    token = value if isinstance(value, str) else None
                if not csrf_valid(settings, principal.sid, token):
                    raise ApiError(403, "csrf_failed",
                                   "Phiên làm việc không hợp lệ, vui lòng tải lại trang",
                                   "Missing or invalid CSRF token; reload the page")
    if principal is not None:
        request.scope["canhbao.principal"] = principal
    return principal


# --- password login with throttling ------------------------------------------------------
class LoginThrottled(ApiError):
    def __init__(self, minutes: int) -> None:
        super().__init__(
            429, "too_many_attempts",
            f"Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút.",
            f"Too many failed logins. Try again in {minutes} minutes.",
            headers={"Retry-After": str(minutes * 60)},
        )


class BadCredentials(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", "Sai tên đăng nhập hoặc mật khẩu",
                         "Wrong username or password", headers={"WWW-Authenticate": "Bearer"})


async def authenticate(db: Database, username: str, password: str, address: str = "") -> User:
    """The user for these credentials; raises LoginThrottled (429) or BadCredentials (401).
    Every failure is recorded; a success clears the username's failures."""
    username = username.strip()
    since = utcnow() - WINDOW
    async with db.session() as s:
        by_user = (await s.execute(
            select(func.count(), func.min(col(LoginAttempt.at)))
            .where(col(LoginAttempt.username) == username, col(LoginAttempt.at) >= since))).one()
        by_addr = 0
        if address:
            by_addr = (await s.execute(
                select(func.count()).where(col(LoginAttempt.address) == address,
                                           col(LoginAttempt.at) >= since))).scalar_one()
        if by_user[0] >= MAX_FAILURES or by_addr >= MAX_ADDRESS_FAILURES:
            oldest = by_user[1] or utcnow()
            left = (oldest + WINDOW - utcnow()).total_seconds() if by_user[0] else 900
            raise LoginThrottled(max(1, int(left // 60) + 1))
        user = (await s.execute(select(User).where(col(User.username) == username))
                ).scalar_one_or_none()
        hashed = user.password_hash if user is not None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, hashed, password)
        if user is None or not ok or not user.active or user.role not in STAFF_ROLES:
            s.add(LoginAttempt(username=username, address=address))
            await s.commit()
            raise BadCredentials()
        await s.execute(delete(LoginAttempt).where(col(LoginAttempt.username) == username))
        await s.commit()
        return user


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""
