"""Counts, response-time percentiles and SLA compliance from the read model, in the
caller's scope."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlmodel import col

from api import scope
from api.auth import Principal
from api.errors import field_error
from core.db import Database
from core.settings import HCMC_TZ
from schema import words
from schema.stats import Bucket, GroupBy, Percentiles, StatsOut
from schema.tables import Alert, Incident, utcnow

MAX_ROWS = 500_000


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
    """The figures of one group of rows."""
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


def _key(group_by: GroupBy, r: Any) -> tuple[Any, str | None]:
    if group_by is GroupBy.WARD:
        return r.ward_code, r.ward_name
    if group_by is GroupBy.UNIT:
        return r.unit_id, r.unit_name
    if group_by is GroupBy.CATEGORY:
        return r.category, r.category
    hour = r.created_at.astimezone(HCMC_TZ).hour
    return hour, f"{hour:02d}:00"


async def incident_stats(db: Database, user: Principal, from_: datetime | None = None,
                         to: datetime | None = None, group_by: GroupBy | None = None,
                         ward: int | None = None, category: str | None = None) -> StatsOut:
    """Incidents created in [from, to) (default: the last 7 days); 422 for times
    without a zone."""
    to = to or utcnow()
    from_ = from_ or to - timedelta(days=7)
    if to.tzinfo is None or from_.tzinfo is None:
        raise field_error("from", *words.both("field.from.no_zone"))
    fields = (Incident.created_at, Incident.state, Incident.is_open, Incident.category,
              Incident.ward_code, Incident.ward_name, Incident.unit_id, Incident.unit_name,
              Incident.acknowledged_at, Incident.on_scene_at, Incident.closed_at,
              Incident.escalation_level, Incident.overdue_since)
    ever_overdue = exists().where(col(Alert.incident_id) == col(Incident.id))
    stmt = scope.incidents(select(*(col(f) for f in fields),
                                  ever_overdue.label("ever_overdue")), user).where(
        col(Incident.created_at) >= from_, col(Incident.created_at) < to)
    if ward is not None:
        stmt = stmt.where(col(Incident.ward_code) == ward)
    if category:
        stmt = stmt.where(col(Incident.category) == category)
    async with db.session() as s:
        rows = list((await s.execute(stmt.limit(MAX_ROWS + 1))).all())
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    groups: list[Bucket] = []
    if group_by is not None:
        parts: dict[Any, list[Any]] = defaultdict(list)
        labels: dict[Any, str | None] = {}
        for r in rows:
            key, labels[key] = _key(group_by, r)
            parts[key].append(r)
        order = sorted(parts, key=lambda k: (k is None, str(k).zfill(12)))
        groups = [bucket(None if k is None else str(k), labels[k], parts[k]) for k in order]
    return StatsOut(from_=from_, to=to, group_by=group_by, total=bucket(None, None, rows),
                    groups=groups, truncated=truncated)
