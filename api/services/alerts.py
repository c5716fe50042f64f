"""Escalation alerts (overdue incidents), in the caller's scope, and the incidents whose
workflow has stopped acting on its deadlines ("stalled")."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from api import scope
from api.auth import Principal
from core.db import Database
from schema.incidents import AlertOut
from schema.tables import Alert, Incident, utcnow

# A healthy workflow acts on a deadline within seconds: it escalates or reminds and moves
# the read model's deadline forward (activities/notify.py, the projection). A deadline
# this far in the past means it did not: the worker is down, the incident's workflow
# task keeps failing, or its writes do not reach the database. Then a supervisor is told
# by the alert list itself, which reads only SQL, so it works when nothing else runs.
STALL_GRACE = timedelta(seconds=60)


async def list_alerts(db: Database, user: Principal, open: bool | None = None,
                      limit: int = 200, now: datetime | None = None) -> list[AlertOut]:
    """Newest first: `open=True` only those not yet resolved, `open=False` only resolved
    ones, all with None. Open lists start with the stalled incidents (`stalled`); `limit`
    applies to each kind, so a backlog of stalled incidents never hides an escalation."""
    stmt = scope.alerts(select(Alert), user).order_by(
        col(Alert.created_at).desc(), col(Alert.id)).limit(limit)
    if open is True:
        stmt = stmt.where(col(Alert.resolved_at).is_(None))
    elif open is False:
        stmt = stmt.where(col(Alert.resolved_at).is_not(None))
    async with db.session() as s:
        rows = (await s.execute(stmt)).scalars().all()
    escalations = [AlertOut(**a.model_dump(), open=a.resolved_at is None) for a in rows]
    if open is False:
        return escalations
    return await stalled(db, user, now=now, limit=limit) + escalations


async def stalled(db: Database, user: Principal, now: datetime | None = None,
                  limit: int = 200) -> list[AlertOut]:
    """Open incidents in `user`'s scope whose deadline passed more than STALL_GRACE
    before `now` (default: the time now), oldest deadline first, as AlertOut of kind
    "stalled" (created_at: when the grace ran out)."""
    now = now or utcnow()
    stmt = scope.incidents(select(Incident), user).where(
        col(Incident.is_open), col(Incident.deadline).is_not(None),
        col(Incident.deadline) < now - STALL_GRACE,
    ).order_by(col(Incident.deadline)).limit(limit)
    async with db.session() as s:
        rows = (await s.execute(stmt)).scalars().all()
    return [AlertOut(
        id=f"stalled:{r.id}", incident_id=r.id, tracking_code=r.tracking_code,
        level=r.escalation_level, state=r.state, priority=r.priority, category=r.category,
        ward_code=r.ward_code, unit_id=r.unit_id, overdue_since=r.deadline,
        created_at=r.deadline + STALL_GRACE, resolved_at=None, open=True, kind="stalled",
    ) for r in rows if r.deadline is not None]
