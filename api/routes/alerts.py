"""Escalation alerts (overdue incidents) for staff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import false, select
from sqlmodel import col

from api.deps import CurrentUser
from schema.tables import Alert

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


class AlertOut(BaseModel):
    id: str
    incident_id: str
    tracking_code: str
    level: int
    state: str
    priority: int
    category: str
    ward_code: int | None
    unit_id: str | None
    overdue_since: datetime
    created_at: datetime
    resolved_at: datetime | None
    open: bool


@router.get("/alerts", response_model=list[AlertOut], responses={401: _ERR})
async def list_alerts(request: Request, user: CurrentUser, open: bool | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertOut]:
    """Escalations, newest first: `open=true` only those not yet resolved, `open=false`
    only resolved ones, all without it. An officer sees the own unit's."""
    stmt = select(Alert).order_by(col(Alert.created_at).desc(), col(Alert.id)).limit(limit)
    if open is True:
        stmt = stmt.where(col(Alert.resolved_at).is_(None))
    elif open is False:
        stmt = stmt.where(col(Alert.resolved_at).is_not(None))
    if user.is_officer:
        stmt = (stmt.where(col(Alert.unit_id) == user.unit_id) if user.unit_id
                else stmt.where(false()))
    async with request.app.state.db.session() as s:
        rows = (await s.execute(stmt)).scalars().all()
    return [AlertOut(**a.model_dump(), open=a.resolved_at is None) for a in rows]
