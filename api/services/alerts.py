"""Escalation alerts (overdue incidents), in the caller's scope."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from api import scope
from api.auth import Principal
from core.db import Database
from schema.incidents import AlertOut
from schema.tables import Alert


async def list_alerts(db: Database, user: Principal, open: bool | None = None,
                      limit: int = 200) -> list[AlertOut]:
    """Newest first: `open=True` only those not yet resolved, `open=False` only resolved
    ones, all with None."""
    stmt = scope.alerts(select(Alert), user).order_by(
        col(Alert.created_at).desc(), col(Alert.id)).limit(limit)
    if open is True:
        stmt = stmt.where(col(Alert.resolved_at).is_(None))
    elif open is False:
        stmt = stmt.where(col(Alert.resolved_at).is_not(None))
    async with db.session() as s:
        rows = (await s.execute(stmt)).scalars().all()
    return [AlertOut(**a.model_dump(), open=a.resolved_at is None) for a in rows]
