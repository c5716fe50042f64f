"""Revocable sign-ins: what a bearer token or session cookie carries and what ends it.

Every token and session cookie is a signed `{uid, sid, ver}`:
- `sid` names this one sign-in; signing out (`POST /api/v1/auth/logout`, the staff page's
  "Đăng xuất") writes it to `revoked_sessions` until it would have expired anyway;
- `ver` is the user's `token_version` when it was issued; a password change or an admin's
  "sign out everywhere" (`canhbao sign-out USER`, `canhbao set-password USER`;
  core.security.end_all_sessions) raises the version, so every earlier
  token and cookie of that user stops working at once, on every API process.

The check costs nothing extra: it rides on the query that loads the user for the request.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import delete, exists, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import Database
from core.security import end_all_sessions
from core.settings import DEMO_SECRET, Settings
from schema.tables import RevokedSession, User, utcnow

log = structlog.get_logger(__name__)


def claims(user: User, sid: str | None = None) -> dict[str, Any]:
    """What a new token or session cookie of `user` signs: `{uid, sid, ver}`."""
    return {"uid": user.id, "sid": sid or secrets.token_urlsafe(16),
            "ver": user.token_version or 0}


def revoked_clause(sid: str) -> ColumnElement[bool]:
    """`EXISTS` a revocation of `sid`: select it beside the user to check both at once."""
    return exists().where(col(RevokedSession.sid) == sid)


def still_valid(user: User, data: dict[str, Any], revoked: bool) -> bool:
    """A signed token's claims hold for `user` (loaded fresh): not signed out, and issued
    at the user's current token version."""
    return not revoked and data.get("ver") == (user.token_version or 0)


async def revoke(db: Database, settings: Settings, user_id: str, sid: str) -> None:
    """Sign out one token or session (idempotent). Purges revocations that expired."""
    now = utcnow()
    async with db.session() as s:
        await s.execute(delete(RevokedSession).where(col(RevokedSession.expires_at) < now))
        if await s.get(RevokedSession, sid) is None:
            s.add(RevokedSession(sid=sid, user_id=user_id, revoked_at=now,
                                 expires_at=now + timedelta(hours=settings.session_hours)))
        await s.commit()
    log.info("signed out", user_id=user_id)


async def end_all(session: AsyncSession, user_id: str) -> None:
    """Sign `user_id` out everywhere (the caller commits)."""
    await session.execute(end_all_sessions(user_id))
    log.info("signed out everywhere", user_id=user_id)


async def still_signed_in(db: Database, user_id: str, sid: str, token_version: int) -> bool:
    """Whether a sign-in checked earlier still holds (for long requests such as the event
    stream, which must end when their session is signed out)."""
    async with db.session() as s:
        row = (await s.execute(
            select(col(User.active), col(User.token_version), revoked_clause(sid))
            .where(col(User.id) == user_id))).first()
    if row is None:
        return False
    active, version, revoked = row
    return bool(active) and not revoked and (version or 0) == token_version


def warn_if_forgeable(settings: Settings) -> None:
    """Say loudly, at start-up, that demo-mode tokens can be forged by anyone."""
    if settings.secret_key == DEMO_SECRET:
        log.warning(
            "DEMO MODE: sessions and tokens are signed with the published demo key; anyone "
            "can forge a sign-in as any account. Never expose this instance; set "
            "CANHBAO_SECRET_KEY and CANHBAO_DEMO=0 for real use.")
