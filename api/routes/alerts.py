"""Escalation alerts (overdue incidents) for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DbDep
from api.services.alerts import list_alerts as service_list_alerts
from schema.incidents import AlertOut

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}


@router.get("/alerts", response_model=list[AlertOut], responses={401: _ERR})
async def list_alerts(db: DbDep, user: CurrentUser, open: bool | None = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AlertOut]:
    """Escalations, newest first: `open=true` only those not yet resolved, `open=false`
    only resolved ones, all without it. Unless `open=false`, the list starts with the
    stalled incidents (kind `stalled`: the deadline passed over a minute ago and no
    escalation moved it). `limit` applies to each kind. An officer sees the own unit's."""
    return await service_list_alerts(db, user, open, limit)
