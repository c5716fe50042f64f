"""The rows the statistics aggregate (api/services/stats.py): one per incident of the
period in the caller's scope, with its kind (real, or one of the kinds counted apart), its
key in each grouping, its durations if real, and the steps whose deadlines it missed.

Dialect differences live here: durations are `date_part('epoch', …)` on PostgreSQL and
`julianday` differences on SQLite; hours and days of week are Ho Chi Minh City's,
`AT TIME ZONE` on PostgreSQL and a fixed +07:00 on SQLite (Vietnam has kept UTC+7 without
daylight saving since 1975).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    exists,
    func,
    null,
    or_,
    select,
)
from sqlmodel import col

from api import scope
from api.auth import Principal
from core.db import Database
from core.settings import HCMC_TZ
from schema.states import State
from schema.stats import GroupBy
from schema.tables import Alert, FloodGroup, Incident, ReportFlag

# Each step's states: an alert (or a current overdue) in one of them misses the step.
STEP_STATES = {
    "acknowledge": (State.RECEIVED, State.VERIFIED, State.CLASSIFIED, State.ROUTED),
    "on_scene": (State.ACKNOWLEDGED,),
    "close": (State.ON_SCENE,),
}
STEPS = tuple(STEP_STATES)
DURATIONS = {"to_acknowledge": Incident.acknowledged_at, "to_on_scene": Incident.on_scene_at,
             "to_close": Incident.closed_at}


def step_of(state: Any) -> ColumnElement[int]:
    """1, 2 or 3: the step (acknowledge, on scene, close) a state's deadline belongs to."""
    return case(*((col(state).in_([s.value for s in states]), n)
                  for n, states in enumerate(STEP_STATES.values(), 1)), else_=None)


def _seconds(db: Database, end: Any, start: Any) -> Any:
    if db.is_sqlite:
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.date_part("epoch", end - start)  # double precision (extract: numeric)


def _local_part(db: Database, part: str) -> ColumnElement[int]:
    """The hour of day or ISO day of week (1 Monday … 7 Sunday) of `created_at` in Ho Chi
    Minh City."""
    created = col(Incident.created_at)
    if db.is_sqlite:
        if part == "hour":
            return cast(func.strftime("%H", created, "+7 hours"), Integer)
        return (cast(func.strftime("%w", created, "+7 hours"), Integer) + 6) % 7 + 1
    local = func.timezone(str(HCMC_TZ), created)
    return cast(func.extract("hour" if part == "hour" else "isodow", local), Integer)


def _key(db: Database, group_by: GroupBy) -> tuple[Any, Any]:
    """A grouping's key and label columns."""
    if group_by is GroupBy.WARD:
        return col(Incident.ward_code), col(Incident.ward_name)
    if group_by is GroupBy.UNIT:
        return col(Incident.unit_id), col(Incident.unit_name)
    if group_by is GroupBy.CATEGORY:
        return col(Incident.category), null()
    return _local_part(db, group_by.value), null()


def incident_rows(db: Database, user: Principal, from_: datetime, to: datetime,
          groups: tuple[GroupBy, ...], ward: int | None, category: str | None) -> CTE:
    """One row per incident of the period in scope: its key in each grouping, its kind
    (real or set apart) and, for a real one, its durations and the steps it missed."""
    state = col(Incident.state)
    spam = exists().where(col(ReportFlag.report_id) == col(Incident.id), or_(
        and_(col(ReportFlag.suspected_spam), col(ReportFlag.cleared_at).is_(None)),
        col(ReportFlag.flood_group).in_(
            select(col(FloodGroup.id)).where(col(FloodGroup.resolved) == "rejected"))))
    kind = case((and_(state == State.REJECTED.value, spam), "spam"),
                (state == State.REJECTED.value, "rejected"),
                (state == State.MERGED.value, "merged"),
                (state == State.CANCELLED.value, "cancelled"), else_="real")
    # The earliest step each incident went overdue in, joined by hash (an index probe per
    # incident cost more than the rest of the query); an alert is never older than its
    # incident.
    late = (select(col(Alert.incident_id).label("incident_id"),
                   func.min(step_of(Alert.state)).label("step"))
            .where(col(Alert.overdue_since) >= from_)
            .group_by(col(Alert.incident_id)).subquery("late"))
    overdue_now = case((col(Incident.overdue_since).is_not(None), step_of(state)), else_=None)
    real = state.not_in([State.REJECTED.value, State.MERGED.value, State.CANCELLED.value])
    closed = state == State.CLOSED.value
    columns = [kind.label("kind"), state.label("state"), col(Incident.is_open).label("is_open"),
               late.c.step.label("first_alert"), overdue_now.label("overdue_now"),
               col(Incident.acknowledged_at).is_not(None).label("reached_1"),
               col(Incident.on_scene_at).is_not(None).label("reached_2"),
               closed.label("reached_3")]
    for g in groups:
        key, label = _key(db, g)
        columns += [key.label(f"key_{g.value}"), label.label(f"label_{g.value}")]
    for name, at in DURATIONS.items():
        when = and_(real, closed) if name == "to_close" else real
        columns.append(case((when, _seconds(db, col(at), col(Incident.created_at))),
                            else_=null()).label(name))
    joined = select(*columns).select_from(Incident).outerjoin(
        late, late.c.incident_id == col(Incident.id))
    stmt = scope.incidents(joined, user).where(
        col(Incident.created_at) >= from_, col(Incident.created_at) < to)
    if ward is not None:
        stmt = stmt.where(col(Incident.ward_code) == ward)
    if category:
        stmt = stmt.where(col(Incident.category) == category)
    rows = stmt.cte("rows")
    # Computed once per incident, not once per figure that reads it (PostgreSQL would
    # otherwise inline the subquery into every aggregate).
    return rows if db.is_sqlite else rows.prefix_with("MATERIALIZED")


def late(rows: CTE, step: int) -> ColumnElement[bool]:
    """Overdue in a state of `step` or an earlier one (an alert, or overdue right now)."""
    never = len(STEPS) + 1  # (NULL: no alert, not overdue now)
    return or_(func.coalesce(rows.c.first_alert, never) <= step,
               func.coalesce(rows.c.overdue_now, never) <= step)
