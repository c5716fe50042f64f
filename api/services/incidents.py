"""Staff lists of incidents from the read model: filters on top of the caller's scope,
newest first with cursor pagination, word search, and the CSV export."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import scope
from api.auth import Principal
from api.errors import field_error
from core.db import Database
from schema import payloads as p
from schema.incidents import (
    IncidentFilters,
    IncidentPage,
    IncidentSummary,
    UnitOut,
    WardRef,
    overdue_clause,
)
from schema.incidents import is_overdue as overdue_at
from schema.reports import normalise_tracking_code
from schema.states import Category, State
from schema.tables import Incident, utcnow

# A word search first walks the newest-first index (fast when the words are common); when
# that takes longer than this, the words are rare and the full-text index is used first.
SEARCH_WALK_MS = 150

EXPORT_COLUMNS = (
    "id", "tracking_code", "state", "category", "priority", "created_at", "updated_at",
    "ward_code", "ward_name", "unit_id", "unit_name", "lat", "lon", "address", "source",
    "escalation_level", "deadline", "acknowledged_at", "on_scene_at", "closed_at", "outcome",
    "merged_into", "description",
)


def filtered(stmt: Select, user: Principal, f: IncidentFilters, postgres: bool = True
             ) -> Select:
    """`stmt` (over Incident) in the caller's scope with the filters applied. `q` matches
    a tracking code exactly or all its words in the description (PostgreSQL: full text
    over an index; SQLite: LIKE)."""
    stmt = scope.incidents(stmt, user)
    if f.state:
        stmt = stmt.where(col(Incident.state).in_([s.value for s in f.state]))
    if f.ward is not None:
        stmt = stmt.where(col(Incident.ward_code) == f.ward)
    if f.unit:
        stmt = stmt.where(col(Incident.unit_id) == f.unit)
    if f.category:
        stmt = stmt.where(col(Incident.category) == f.category.value)
    if f.priority:
        stmt = stmt.where(col(Incident.priority) == f.priority)
    if f.overdue is not None:
        late = overdue_clause(utcnow())
        stmt = stmt.where(late if f.overdue else ~late)
    if f.q and f.q.strip():
        words = [w for w in f.q.split() if w][:8]
        text_match: ColumnElement[bool]
        if postgres:
            text_match = func.to_tsvector("simple", col(Incident.description)).bool_op("@@")(
                func.plainto_tsquery("simple", " ".join(words)))
        else:
            text_match = and_(*[col(Incident.description).ilike(f"%{_escape_like(w)}%",
                                                                 escape="\\") for w in words])
        stmt = stmt.where(or_(col(Incident.tracking_code) == normalise_tracking_code(f.q),
                              text_match))
    return stmt


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(created_at: datetime, incident_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), incident_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor points after; 422 for a cursor not made here."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, incident_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError
        return when, str(incident_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise field_error("cursor", "Con trỏ trang không hợp lệ", "Invalid cursor") from exc


def summary(row: Incident, now: datetime | None = None) -> IncidentSummary:
    """A list row from the read model."""
    return IncidentSummary(
        id=row.id, tracking_code=row.tracking_code, state=State(row.state),
        category=Category(row.category), priority=row.priority,
        description=row.description[:500],
        location=p.Location(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m),
        address=row.address,
        ward=WardRef(code=row.ward_code, name=row.ward_name) if row.ward_code else None,
        unit=UnitOut(id=row.unit_id, name=row.unit_name) if row.unit_id else None,
        source=row.source, created_at=row.created_at, updated_at=row.updated_at,
        deadline=row.deadline, escalation_level=row.escalation_level,
        overdue=overdue_at(row.is_open, row.escalation_level, row.deadline, now or utcnow()),
        outside_city=row.outside_city, duplicate_count=row.duplicate_count,
        merged_into=row.merged_into)


def _after(stmt: Select, after: tuple[datetime, str] | None) -> Select:
    if after is None:
        return stmt
    return stmt.where(tuple_(col(Incident.created_at), col(Incident.id)) < tuple_(*after))


def _newest_first(stmt: Select) -> Select:
    return stmt.order_by(col(Incident.created_at).desc(), col(Incident.id).desc())


async def fetch_page(s: AsyncSession, user: Principal, f: IncidentFilters,
                     after: tuple[datetime, str] | None, n: int, postgres: bool
                     ) -> list[Incident]:
    """One page, newest first. On PostgreSQL a word search tries the index walk under a
    short statement timeout, then falls back to matching through the full-text index."""
    stmt = _newest_first(_after(filtered(select(Incident), user, f, postgres), after)).limit(n)
    if not (postgres and f.q and f.q.strip()):
        return list((await s.execute(stmt)).scalars().all())
    try:
        await s.execute(text(f"SET LOCAL statement_timeout = {SEARCH_WALK_MS}"))
        rows = list((await s.execute(stmt)).scalars().all())
        await s.execute(text("SET LOCAL statement_timeout = 0"))
        return rows
    except DBAPIError as exc:
        if "cancel" not in str(exc).lower() and "timeout" not in str(exc).lower():
            raise
        await s.rollback()
    matches = _after(filtered(select(col(Incident.id), col(Incident.created_at)), user, f,
                              postgres), after)
    m = matches.cte("matches").prefix_with("MATERIALIZED")
    ids = select(m.c.id).order_by(m.c.created_at.desc(), m.c.id.desc()).limit(n)
    stmt = _newest_first(select(Incident).where(col(Incident.id).in_(ids)))
    return list((await s.execute(stmt)).scalars().all())


async def list_page(db: Database, user: Principal, filters: IncidentFilters,
                    limit: int = 50, cursor: str | None = None) -> IncidentPage:
    """Newest first, from the read model, in the caller's scope."""
    after = decode_cursor(cursor) if cursor else None
    async with db.session() as s:
        rows = await fetch_page(s, user, filters, after, limit + 1, not db.is_sqlite)
    more = len(rows) > limit
    rows = rows[:limit]
    now = utcnow()
    return IncidentPage(
        items=[summary(r, now) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


def _csv_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v  # no formulas in spreadsheets
    return v


async def export_rows(db: Database, user: Principal, filters: IncidentFilters,
                      limit: int) -> AsyncIterator[str]:
    """CSV text (header first, with a BOM for spreadsheets) of the same rows as the list."""
    stmt = filtered(select(*[col(getattr(Incident, c)) for c in EXPORT_COLUMNS]), user,
                    filters, not db.is_sqlite)
    stmt = _newest_first(stmt).limit(limit)
    buf = io.StringIO()
    csv.writer(buf).writerow(EXPORT_COLUMNS)
    yield "\ufeff" + buf.getvalue()
    async with db.session() as s:
        result = await s.stream(stmt)
        async for part in result.partitions(1000):
            buf = io.StringIO()
            writer = csv.writer(buf)
            for r in part:
                writer.writerow([_csv_value(v) for v in r])
            yield buf.getvalue()
