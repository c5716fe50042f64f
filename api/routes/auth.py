"""Staff sign-in: OAuth2 password-flow tokens for API clients, a session cookie for
browsers (CSRF-protected, refused when another site's page asks), sign-out that revokes,
password change (which ends every sign-in of the account), and who-am-I."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlmodel import col

from api import auth, origin, sessions, throttle
from api.deps import CurrentUser, DbDep, SettingsDep
from api.metrics import LOGIN_FAILURES
from core.db import Database
from core.security import hash_password
from schema.tables import User
from schema.text import Line

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_ERR = {"model": dict}


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    id: str
    username: str
    role: str
    full_name: str
    unit_id: str | None
    unit_name: str | None
    csrf_token: str | None = None


async def _authenticate(request: Request, db: Database, username: str, password: str) -> User:
    try:
        return await auth.authenticate(db, username, password,
                                       auth.client_address(request))
    except throttle.LoginThrottled:
        LOGIN_FAILURES.labels("throttled").inc()
        raise
    except auth.BadCredentials:
        LOGIN_FAILURES.labels("bad_credentials").inc()
        raise


@router.post("/token", response_model=TokenOut, responses={401: _ERR, 429: _ERR})
async def token(request: Request, db: DbDep, settings: SettingsDep,
                username: Annotated[Line, Form(max_length=200)],
                password: Annotated[str, Form(max_length=1000)],
                grant_type: Annotated[str | None, Form()] = None) -> TokenOut:
    """OAuth2 password flow: form `username`, `password` → bearer token."""
    user = await _authenticate(request, db, username, password)
    return TokenOut(access_token=auth.make_token(settings, user),
                    expires_in=settings.session_hours * 3600)


@router.post("/login", responses={200: {"model": Me}, 303: {}, 401: _ERR, 403: _ERR,
                                  429: _ERR})
async def login(request: Request, db: DbDep, settings: SettingsDep,
                username: Annotated[Line, Form(max_length=200)],
                password: Annotated[str, Form(max_length=1000)],
                next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    """Browser sign-in: sets the session cookie. With a same-origin `next` path, redirects
    there (303); otherwise answers who signed in and the CSRF token for forms. 403 when a
    browser says another site's page sent it (Origin / Sec-Fetch-Site)."""
    origin.refuse_cross_site(request)
    user = await _authenticate(request, db, username, password)
    target = origin.safe_next(next)
    if target:
        response: Response = RedirectResponse(target, status_code=303)
        auth.set_session_cookie(response, settings, user)
        return response
    response = JSONResponse({})
    csrf = auth.set_session_cookie(response, settings, user)
    response.body = response.render(Me(
        id=user.id, username=user.username, role=user.role, full_name=user.full_name,
        unit_id=user.unit_id, unit_name=None, csrf_token=csrf).model_dump())
    response.headers["content-length"] = str(len(response.body))
    return response


@router.post("/logout", status_code=204, responses={403: _ERR})
async def logout(request: Request, db: DbDep, settings: SettingsDep) -> Response:
    """Sign out: the bearer token or session this is called with stops working at once
    (a session needs its CSRF token, like any change). 204 also without one."""
    user = await auth.principal_from_request(request)
    if user is not None:
        await sessions.revoke(db, settings, user.id, user.sid)
    response = Response(status_code=204)
    auth.clear_session_cookie(response, settings)
    return response


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=1000)
    new_password: str = Field(min_length=10, max_length=1000)


@router.post("/password", status_code=204, responses={401: _ERR, 403: _ERR, 422: _ERR,
                                                      429: _ERR})
async def change_password(request: Request, db: DbDep, settings: SettingsDep,
                          user: CurrentUser, body: PasswordChange) -> Response:
    """Change one's own password (the current one is checked, and throttled like a
    sign-in). Every token and session of the account ends, this one too: sign in again."""
    await _authenticate(request, db, user.username, body.current_password)
    hashed = await asyncio.to_thread(hash_password, body.new_password)
    async with db.session() as s:
        await s.execute(update(User).where(col(User.id) == user.id)
                        .values(password_hash=hashed))
        await sessions.end_all(s, user.id)
        await s.commit()
    response = Response(status_code=204)
    auth.clear_session_cookie(response, settings)
    return response


@router.get("/me", response_model=Me, responses={401: _ERR})
async def me(request: Request, user: CurrentUser) -> Me:
    return Me(id=user.id, username=user.username, role=user.role, full_name=user.full_name,
              unit_id=user.unit_id, unit_name=user.unit_name,
              csrf_token=auth.csrf_token(request) if user.via == "session" else None)
