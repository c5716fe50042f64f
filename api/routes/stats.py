"""Counts, response-time percentiles and SLA compliance from the read model."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import exists, false, select
from sqlmodel import col

from api.deps import CurrentUser
from api.errors import ApiError
from schema.tables import Alert, Incident, utcnow

router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}
HCMC = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_ROWS = 500_000


class GroupBy(StrEnum):
    WARD = "ward"
    CATEGORY = "category"
    HOUR = "hour"
    UNIT = "unit"


class Percentiles(BaseModel):
    n: int
    p50_s: float | None
    p90_s: float | None


class Bucket(BaseModel):
    key: str | None
    label: str | None
    count: int
    open: int
    by_state: dict[str, int]
    to_acknowledge: Percentiles
    to_on_scene: Percentiles
    to_close: Percentiles
    sla_met: int
    sla_compliance: float | None  # share never overdue (no escalation alert)


class StatsOut(BaseModel):
    from_: datetime = Field(serialization_alias="from")  # the query's own name
    to: datetime
    group_by: GroupBy | None
    total: Bucket
    groups: list[Bucket]
    truncated: bool


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    value = sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)
    return round(value, 3)


def _pct(values: list[float]) -> Percentiles:
    values.sort()
    return Percentiles(n=len(values), p50_s=percentile(values, 0.5),
                       p90_s=percentile(values, 0.9))


def bucket(key: str | None, label: str | None, rows: list[Any]) -> Bucket:
    by_state: dict[str, int] = defaultdict(int)
    ack, scene, close = [], [], []
    met = 0
    for r in rows:
        by_state[r.state] += 1
        if r.acknowledged_at:
            ack.append((r.acknowledged_at - r.created_at).total_seconds())
        if r.on_scene_at:
            scene.append((r.on_scene_at - r.created_at).total_seconds())
        if r.closed_at:
            close.append((r.closed_at - r.created_at).total_seconds())
        if not r.ever_overdue and r.escalation_level == 0 and r.overdue_since is None:
            met += 1
    return Bucket(key=key, label=label, count=len(rows), open=sum(1 for r in rows if r.is_open),
                  by_state=dict(by_state), to_acknowledge=_pct(ack), to_on_scene=_pct(scene),
                  to_close=_pct(close), sla_met=met,
                  sla_compliance=round(met / len(rows), 4) if rows else None)


@router.get("/stats", response_model=StatsOut, responses={401: _ERR, 422: _ERR})
async def stats(request: Request, user: CurrentUser,
                from_: Annotated[datetime | None, Query(alias="from")] = None,
                to: datetime | None = None, group_by: GroupBy | None = None,
                ward: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
                category: Annotated[str | None, Query(max_length=40)] = None) -> StatsOut:
    """Incidents created in [from, to) (default: the last 7 days). Response times are
    seconds from the report to acknowledge, on scene and close; SLA compliance is the share
    of incidents never overdue. `hour` groups by hour of day in Ho Chi Minh City time."""
    to = to or utcnow()
    from_ = from_ or to - timedelta(days=7)
    if to.tzinfo is None or from_.tzinfo is None:
        raise ApiError(422, "validation_error", "Thời gian phải có múi giờ",
                       "Times need a time zone",
                       fields=[{"field": "from", "message": "Thời gian phải có múi giờ",
                                "message_en": "Times need a time zone"}])
    fields = (Incident.created_at, Incident.state, Incident.is_open, Incident.category,
              Incident.ward_code, Incident.ward_name, Incident.unit_id, Incident.unit_name,
              Incident.acknowledged_at, Incident.on_scene_at, Incident.closed_at,
              Incident.escalation_level, Incident.overdue_since)
    ever_overdue = exists().where(col(Alert.incident_id) == col(Incident.id))
    stmt = select(*(col(f) for f in fields), ever_overdue.label("ever_overdue")).where(
        col(Incident.created_at) >= from_, col(Incident.created_at) < to)
    if user.is_officer:
        stmt = stmt.where(col(Incident.unit_id) == user.unit_id) if user.unit_id else stmt.where(
            false())
    if ward is not None:
        stmt = stmt.where(col(Incident.ward_code) == ward)
    if category:
        stmt = stmt.where(col(Incident.category) == category)
    stmt = stmt.limit(MAX_ROWS + 1)
    async with request.app.state.db.session() as s:
        rows = list((await s.execute(stmt)).all())
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    groups: list[Bucket] = []
    if group_by is not None:
        parts: dict[Any, list[Any]] = defaultdict(list)
        labels: dict[Any, str | None] = {}
        for r in rows:
            if group_by is GroupBy.WARD:
                key, label = r.ward_code, r.ward_name
            elif group_by is GroupBy.UNIT:
                key, label = r.unit_id, r.unit_name
            elif group_by is GroupBy.CATEGORY:
                key, label = r.category, r.category
            else:
                hour = r.created_at.astimezone(HCMC).hour
                key, label = hour, f"{hour:02d}:00"
            parts[key].append(r)
            labels[key] = label
        order = sorted(parts, key=lambda k: (k is None, str(k).zfill(12)))
        groups = [bucket(None if k is None else str(k), labels[k], parts[k]) for k in order]
    return StatsOut(from_=from_, to=to, group_by=group_by, total=bucket(None, None, rows),
                    groups=groups, truncated=truncated)
