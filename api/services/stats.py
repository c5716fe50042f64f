"""Counts, response-time percentiles and SLA compliance from the read model, in the
caller's scope, grouped and percentiled in the database.

Only *real* incidents count as incidents: a rejection (spam or not), a merge into another
incident and a citizen's cancellation are each counted apart (`SetApart`) and never enter
`count`, the response times or the SLA figures. Every row of the period is counted, in
SQL: on PostgreSQL one GROUPING SETS query gives the total and every grouping asked.

Percentiles interpolate linearly between the closest ranks: `percentile_cont` on
PostgreSQL; on SQLite (which has none) the same interpolation over the two ranks around
each percentile, picked with `row_number()` windows (`_ranked_percentiles`). The rows it
aggregates, and how each dialect computes them, are in api/services/stats_rows.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    Integer,
    and_,
    case,
    cast,
    func,
    null,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql

from api.auth import Principal
from api.errors import field_error
from api.services.stats_rows import DURATIONS, STEPS, incident_rows, late
from core.db import Database
from schema import words
from schema.states import SLA_TARGET, State
from schema.stats import Bucket, GroupBy, Percentiles, SetApart, StatsOut, StepSla, StepsSla
from schema.tables import utcnow

APART = ("spam", "rejected", "merged", "cancelled")
QUANTILES = {"p50_s": 0.5, "p90_s": 0.9}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Breakdown:
    """The figures of a period: all of it, and its groups by each way asked."""

    total: Bucket
    groups: dict[GroupBy, list[Bucket]]


def _aggregates(db: Database, rows: CTE) -> list[Any]:
    real = rows.c.kind == "real"

    def count(cond: Any) -> Any:
        return func.count().filter(cond)

    out = [func.count().label("received"),
           count(real).label("count"), count(and_(real, rows.c.is_open)).label("open"),
           count(and_(real, ~late(rows, 3))).label("sla_met")]
    out += [count(rows.c.kind == k).label(k) for k in APART]
    out += [count(rows.c.state == s.value).label(f"state_{s.value}") for s in State]
    for n, step in enumerate(STEPS, 1):
        reached = rows.c[f"reached_{n}"]
        out += [count(and_(real, or_(reached, late(rows, n)))).label(f"{step}_n"),
                count(and_(real, reached, ~late(rows, n))).label(f"{step}_met")]
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
    rows = incident_rows(db, user, from_, to, groups, ward, category)
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
