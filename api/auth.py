"""Staff accounts: password check, signed bearer tokens, browser sessions and CSRF tokens.

- Bearer tokens and the session cookie are itsdangerous-signed with settings.secret_key and
  expire after settings.session_hours. Both carry `{uid, sid, ver}`; api/sessions.py says
  when a signed one no longer counts (signed out, or the user's token version moved on).
- CSRF: a browser session (cookie) must send `X-CSRF-Token` (or a `csrf_token` form field)
  on unsafe methods; the token is the session id signed with another salt, so it cannot be
  made without the secret and is bound to the session. Bearer callers need none.
- Throttling of failed sign-ins: api/throttle.py (growing delays per address and username,
  never a lock-out for everyone).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlmodel import col

from api import sessions, throttle
from api.errors import ApiError
from api.infra import infra_of
from core.db import Database
from core.security import DUMMY_HASH, verify_password
from core.settings import Settings
from schema import words
from schema.states import STAFF_ROLES, Role
from schema.tables import Unit, User

SESSION_COOKIE = "canhbao_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


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
    token_version: int = 0  # the user's version when this request signed in

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
    """A bearer token for `user` (see api/sessions.py for what it carries)."""
    return _serializer(settings, "access").dumps(sessions.claims(user, sid))


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
    settings = infra_of(request.app).settings
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
    return read_token(infra_of(request.app).settings, raw, "session")


def set_session_cookie(response: Response, settings: Settings, user: User) -> str:
    """Log `user` in on this browser; returns the session's CSRF token."""
    data = sessions.claims(user)
    value = _serializer(settings, "session").dumps(data)
    response.set_cookie(SESSION_COOKIE, value, max_age=settings.session_hours * 3600,
                        httponly=True, samesite="lax", secure=settings.cookies_secure,
                        path="/")
    return csrf_token_for(settings, data["sid"])


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=settings.cookies_secure)


async def _load_principal(db: Database, data: dict, via: str) -> Principal | None:
    sid = str(data.get("sid", ""))
    async with db.session() as s:
        row = (await s.execute(
            select(User, col(Unit.name), sessions.revoked_clause(sid))
            .outerjoin(Unit, col(Unit.id) == col(User.unit_id))
            .where(col(User.id) == data["uid"]))).first()
    if row is None:
        return None
    user, unit_name, revoked = row
    if not user.active or user.role not in STAFF_ROLES \
            or not sessions.still_valid(user, data, revoked):
        return None
    return Principal(id=user.id, username=user.username, role=Role(user.role),
                     unit_id=user.unit_id, full_name=user.full_name, sid=sid, via=via,
                     unit_name=unit_name, token_version=user.token_version or 0)


async def principal_from_request(request: Request, read_form: bool = True) -> Principal | None:
    """Bearer token first, then the session cookie (which also needs CSRF on unsafe
    methods). None when neither is valid. With `read_form=False` the body is never read
    for a CSRF form field (routes that stream the body): a session without the CSRF header
    then counts as no principal instead of a 403."""
    cached = request.scope.get("canhbao.principal")
    if cached is not None:
        return cached
    infra = infra_of(request.app)
    settings, db = infra.settings, infra.db
    principal = None
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        data = read_token(settings, auth[7:].strip())
        if data is None:
            return None
        principal = await _load_principal(db, data, "bearer")
    else:
        data = _session_data(request)
        if data is not None:
            principal = await _load_principal(db, data, "session")
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
                    raise ApiError(403, "csrf_failed", *words.both("error.csrf_failed"))
    if principal is not None:
        request.scope["canhbao.principal"] = principal
    return principal


# --- password sign-in ---------------------------------------------------------------------
class BadCredentials(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", *words.both("error.invalid_credentials"),
                         headers={"WWW-Authenticate": "Bearer"})


async def authenticate(db: Database, username: str, password: str, address: str = "") -> User:
    """The user for these credentials; raises throttle.LoginThrottled (429) or
    BadCredentials (401). Failures count per (address, username) and per address."""
    username = username.strip()
    async with db.session() as s:
        await throttle.check(s, address, username)
        user = (await s.execute(select(User).where(col(User.username) == username))
                ).scalar_one_or_none()
        hashed = user.password_hash if user is not None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, hashed, password)
        if user is None or not ok or not user.active or user.role not in STAFF_ROLES:
            throttle.record_failure(s, address, username)
            await s.commit()
            raise BadCredentials()
        await throttle.forget(s, address, username)
        await s.commit()
        return user


def client_address(request: Request) -> str:
    """The client's address: the peer, or what a trusted proxy said (core/serving.py)."""
    return request.client.host if request.client else ""
