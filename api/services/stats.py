"""Counts, response-time percentiles and SLA compliance from the read model, in the
caller's scope, grouped and percentiled in the database.

Only *real* incidents count as incidents: a rejection (spam or not), a merge into another
incident and a citizen's cancellation are each counted apart (`SetApart`) and never enter
`count`, the response times or the SLA figures. Every row of the period is counted: one
query per figure set, grouped in SQL, whatever the number of incidents.

Percentiles interpolate linearly between the closest ranks: `percentile_cont` on
PostgreSQL; on SQLite (which has none) the same interpolation over the two ranks around
each percentile, picked with `row_number()` windows (`_ranked_percentiles`). Hours and days
of week are Ho Chi Minh City's: `AT TIME ZONE` on PostgreSQL, a fixed +07:00 on SQLite
(Vietnam has kept UTC+7 without daylight saving since 1975).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlmodel import col

from api import scope
from api.auth import Principal
from api.errors import field_error
from core.db import Database
from core.settings import HCMC_TZ
from schema import words
from schema.states import SLA_TARGET, State
from schema.stats import Bucket, GroupBy, Percentiles, SetApart, StatsOut, StepSla, StepsSla
from schema.tables import Alert, FloodGroup, Incident, ReportFlag, utcnow

APART = ("spam", "rejected", "merged", "cancelled")
QUANTILES = {"p50_s": 0.5, "p90_s": 0.9}
# Each step's states: an alert (or a current overdue) in one of them misses the step.
STEP_STATES = {
    "acknowledge": (State.RECEIVED, State.VERIFIED, State.CLASSIFIED, State.ROUTED),
    "on_scene": (State.ACKNOWLEDGED,),
    "close": (State.ON_SCENE,),
}
STEPS = tuple(STEP_STATES)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DURATIONS = {"to_acknowledge": Incident.acknowledged_at, "to_on_scene": Incident.on_scene_at,
             "to_close": Incident.closed_at}


@dataclass
class Breakdown:
    """The figures of a period: all of it, and its groups by each way asked."""

    total: Bucket
    groups: dict[GroupBy, list[Bucket]]


def _step_of(state: Any) -> ColumnElement[int]:
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


def _rows(db: Database, user: Principal, from_: datetime, to: datetime,
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
                   func.min(_step_of(Alert.state)).label("step"))
            .where(col(Alert.overdue_since) >= from_)
            .group_by(col(Alert.incident_id)).subquery("late"))
    overdue_now = case((col(Incident.overdue_since).is_not(None), _step_of(state)), else_=None)
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


def _late(rows: CTE, step: int) -> ColumnElement[bool]:
    """Overdue in a state of `step` or an earlier one (an alert, or overdue right now)."""
    never = len(STEPS) + 1  # (NULL: no alert, not overdue now)
    return or_(func.coalesce(rows.c.first_alert, never) <= step,
               func.coalesce(rows.c.overdue_now, never) <= step)


def _aggregates(db: Database, rows: CTE) -> list[Any]:
    real = rows.c.kind == "real"

    def count(cond: Any) -> Any:
        return func.count().filter(cond)

    out = [func.count().label("received"),
           count(real).label("count"), count(and_(real, rows.c.is_open)).label("open"),
           count(and_(real, ~_late(rows, 3))).label("sla_met")]
    out += [count(rows.c.kind == k).label(k) for k in APART]
    out += [count(rows.c.state == s.value).label(f"state_{s.value}") for s in State]
    for n, step in enumerate(STEPS, 1):
        reached = rows.c[f"reached_{n}"]
        out += [count(and_(real, or_(reached, _late(rows, n)))).label(f"{step}_n"),
                count(and_(real, reached, ~_late(rows, n))).label(f"{step}_met")]
    for name in DURATIONS:
        out.append(func.count(rows.c[name]).label(f"{name}_n"))
        if not db.is_sqlite:  # both percentiles from one sort
            out.append(func.percentile_cont(postgresql.array(list(QUANTILES.values())))
                       .within_group(rows.c[name]).label(f"{name}_pct"))
    return out


def _ranked_percentiles(rows: CTE, key: Any, name: str) -> Any:
    """SQLite's percentiles of duration `name` by `key`: each value's rank in its group,
    then per group the two ranks around (n - 1) * q, interpolated."""
    value = rows.c[name]
    ranked = select(key.label("key"), value.label("v"),
                    (func.row_number().over(partition_by=key, order_by=value) - 1).label("i"),
                    func.count().over(partition_by=key).label("n"),
                    ).where(value.is_not(None)).subquery("ranked")
    picks = []
    for p, q in QUANTILES.items():
        pos = (ranked.c.n - 1) * q
        lo = cast(pos, Integer)
        hi = lo + case((pos > lo, 1), else_=0)
        lo_v = func.max(case((ranked.c.i == lo, ranked.c.v)))
        hi_v = func.max(case((ranked.c.i == hi, ranked.c.v)))
        picks.append((lo_v + (hi_v - lo_v) * func.max(pos - lo)).label(f"{name}_{p}"))
    return select(ranked.c.key, *picks).group_by(ranked.c.key)


def _step(n: int, met: int, target: float) -> StepSla:
    compliance = round(met / n, 4) if n else None
    return StepSla(n=n, met=met, compliance=compliance, target=target,
                   meets_target=None if compliance is None else compliance >= target)


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _percentiles(r: Any, name: str) -> Percentiles:
    if hasattr(r, f"{name}_pct"):  # PostgreSQL: [p50, p90] or NULL
        values = getattr(r, f"{name}_pct") or [None] * len(QUANTILES)
    else:
        values = [getattr(r, f"{name}_{p}") for p in QUANTILES]
    return Percentiles(n=getattr(r, f"{name}_n"),
                       **{p: _round(v) for p, v in zip(QUANTILES, values, strict=True)})


def _label(group_by: GroupBy | None, key: Any, label: Any) -> str | None:
    if key is not None and group_by is GroupBy.HOUR:
        return f"{int(key):02d}:00"
    if key is not None and group_by is GroupBy.WEEKDAY:
        return WEEKDAYS[int(key) - 1]
    if group_by is GroupBy.CATEGORY:
        return key
    return None if label is None else str(label)


def _bucket(group_by: GroupBy | None, key: Any, label: Any, r: Any, target: float) -> Bucket:
    return Bucket(
        key=None if key is None else str(key), label=_label(group_by, key, label),
        count=r.count, received=r.received,
        set_apart=SetApart(**{k: getattr(r, k) for k in APART}), open=r.open,
        by_state={s.value: n for s in State if (n := getattr(r, f"state_{s.value}"))},
        **{name: _percentiles(r, name) for name in DURATIONS},
        sla_met=r.sla_met, sla_compliance=round(r.sla_met / r.count, 4) if r.count else None,
        sla=StepsSla(**{s: _step(getattr(r, f"{s}_n"), getattr(r, f"{s}_met"), target)
                        for s in STEPS}))


def _ordered(buckets: list[Bucket]) -> list[Bucket]:
    return sorted(buckets, key=lambda b: (b.key is None, str(b.key).zfill(12)))


async def _grouping_sets(db: Database, rows: CTE, groups: tuple[GroupBy, ...],
                         target: float) -> Breakdown:
    """PostgreSQL: the total and every grouping from one pass over the rows."""
    keys = [rows.c[f"key_{g.value}"] for g in groups]
    labels = [func.max(rows.c[f"label_{g.value}"]).label(f"label_{g.value}") for g in groups]
    stmt = select(*keys, *labels, *_aggregates(db, rows))
    if keys:
        stmt = stmt.add_columns(func.grouping(*keys).label("grouping")).group_by(
            func.grouping_sets(*(tuple_(k) for k in keys), tuple_()))
    async with db.session() as s:
        # A wide query over many rows passes PostgreSQL's JIT threshold, and compiling
        # it took longer than running it (1.9 of 2.1 s for a year of 20,000 rows).
        await s.execute(text("SET LOCAL jit = off"))
        found = (await s.execute(stmt)).all()
    everything = (1 << len(groups)) - 1  # GROUPING(): a bit set per key not grouped by
    total: Bucket | None = None
    by: dict[GroupBy, list[Bucket]] = {g: [] for g in groups}
    for r in found:
        grouping = r.grouping if keys else everything
        if grouping == everything:
            total = _bucket(None, None, None, r, target)
            continue
        g = groups[len(groups) - (everything ^ grouping).bit_length()]
        by[g].append(_bucket(g, getattr(r, f"key_{g.value}"), getattr(r, f"label_{g.value}"),
                             r, target))
    return Breakdown(total=total or _empty(target),
                     groups={g: _ordered(b) for g, b in by.items()})


async def _one_by_one(db: Database, rows: CTE, groups: tuple[GroupBy, ...],
                      target: float) -> Breakdown:
    """SQLite (no grouping sets, no percentile_cont): a query per grouping, each joined
    to its percentiles by group (IS: a key may be NULL)."""
    out: dict[GroupBy | None, list[Bucket]] = {}
    async with db.session() as s:
        for g in (None, *groups):
            key = null() if g is None else rows.c[f"key_{g.value}"]
            label = null() if g is None else rows.c[f"label_{g.value}"]
            stmt: Any = select(key.label("key"), func.max(label).label("label"),
                               *_aggregates(db, rows)).select_from(rows)
            if g is not None:
                stmt = stmt.group_by(key)
            for name in DURATIONS:
                pct = _ranked_percentiles(rows, key, name).subquery(f"pct_{name}")
                stmt = stmt.outerjoin(pct, pct.c.key.is_(key)).add_columns(
                    *(func.max(pct.c[f"{name}_{p}"]).label(f"{name}_{p}") for p in QUANTILES))
            found = [r for r in (await s.execute(stmt)).all() if r.received]
            out[g] = _ordered([_bucket(g, r.key, r.label, r, target) for r in found])
    return Breakdown(total=out[None][0] if out[None] else _empty(target),
                     groups={g: out[g] for g in groups})


def _period(from_: datetime | None, to: datetime | None) -> tuple[datetime, datetime]:
    """[from, to), by default the last 7 days; 422 for times without a zone."""
    to = to or utcnow()
    from_ = from_ or to - timedelta(days=7)
    if to.tzinfo is None or from_.tzinfo is None:
        raise field_error("from", *words.both("field.from.no_zone"))
    return from_, to


def _empty(target: float) -> Bucket:
    zero = Percentiles(n=0, p50_s=None, p90_s=None)
    return Bucket(key=None, label=None, count=0, received=0, set_apart=SetApart(), open=0,
                  by_state={}, to_acknowledge=zero, to_on_scene=zero, to_close=zero,
                  sla_met=0, sla_compliance=None,
                  sla=StepsSla(**{s: _step(0, 0, target) for s in STEPS}))


async def breakdown(db: Database, user: Principal, from_: datetime, to: datetime,
                    groups: tuple[GroupBy, ...] = (), ward: int | None = None,
                    category: str | None = None, target: float = SLA_TARGET) -> Breakdown:
    """The figures of incidents created in [from_, to) in `user`'s scope, in all and by
    each of `groups`."""
    rows = _rows(db, user, from_, to, groups, ward, category)
    if db.is_sqlite:
        return await _one_by_one(db, rows, groups, target)
    return await _grouping_sets(db, rows, groups, target)


async def incident_stats(db: Database, user: Principal, from_: datetime | None = None,
                         to: datetime | None = None, group_by: GroupBy | None = None,
                         ward: int | None = None, category: str | None = None,
                         target: float = SLA_TARGET) -> StatsOut:
    """Incidents created in [from, to) (default: the last 7 days); 422 for times
    without a zone."""
    from_, to = _period(from_, to)
    found = await breakdown(db, user, from_, to, (group_by,) if group_by else (), ward,
                            category, target)
    return StatsOut(from_=from_, to=to, group_by=group_by, total=found.total,
                    groups=found.groups.get(group_by, []) if group_by else [],
                    sla_target=target)
