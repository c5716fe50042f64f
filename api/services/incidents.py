"""Staff lists of incidents from the read model: filters on top of the caller's scope,
newest first with cursor pagination, word search, and the CSV export."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import scope
from api.auth import Principal
from api.errors import field_error
from core.db import Database
from schema import payloads as p
from schema import search, words
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
from schema.tables import FloodGroup, Incident, Report, ReportFlag, utcnow

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
    a tracking code exactly or all its words, folded, in the description and address
    (schema.search: case, Unicode form and tone marks ignored, on both databases)."""
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
    if f.outside_groups:
        grouped = (select(col(ReportFlag.report_id))
                   .join(FloodGroup, col(FloodGroup.id) == col(ReportFlag.flood_group))
                   .where(col(FloodGroup.resolved).is_(None)))
        stmt = stmt.where(~and_(col(Incident.state) == State.RECEIVED.value,
                                col(Incident.id).in_(grouped)))
    if f.q:
        terms = search.search_terms(f.q)
        code = col(Incident.tracking_code) == normalise_tracking_code(f.q)
        stmt = stmt.where(or_(code, search.matches(terms)) if terms else code)
    return stmt


Cursor = tuple[datetime, str, int]  # created_at, id, search rank (0 without a search)


def encode_cursor(created_at: datetime, incident_id: str, rank: int = 0) -> str:
    raw = json.dumps([created_at.isoformat(), incident_id, rank]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    """The (created_at, id, rank) a cursor points after; 422 for a cursor not made here."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, incident_id, *rest = json.loads(raw)
        when = datetime.fromisoformat(at)
        rank = rest[0] if rest else 0
        if when.tzinfo is None or rank not in (0, 1) or len(rest) > 1:
            raise ValueError
        return when, str(uuid.UUID(str(incident_id))), int(rank)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise field_error("cursor", *words.both("field.cursor.invalid")) from exc


async def silent_ids(s: AsyncSession, ids: Sequence[str]) -> set[str]:
    """Which of `ids` came in as a silent SOS: the one source is the report as accepted
    (`reports.payload["silent"]`). The list, the detail
    and the console's "SOS im lặng" badge all read it here."""
    if not ids:
        return set()
    rows = (await s.execute(select(col(Report.id), col(Report.payload))
                            .where(col(Report.id).in_(list(ids))))).all()
    return {r[0] for r in rows if isinstance(r[1], dict) and r[1].get("silent")}


def summary(row: Incident, now: datetime | None = None, silent: bool = False
            ) -> IncidentSummary:
    """A list row from the read model (`silent` from silent_ids)."""
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
        overdue_since=row.overdue_since, version=row.version,
        outside_city=row.outside_city, duplicate_count=row.duplicate_count,
        merged_into=row.merged_into, silent=silent)


def _after(stmt: Select, f: IncidentFilters, after: Cursor | None) -> Select:
    if after is None:
        return stmt
    return stmt.where(search.after(search.search_terms(f.q), *after))


def _in_order(stmt: Select, f: IncidentFilters) -> Select:
    """Newest first; a search with marks or capitals puts exact-diacritic matches first."""
    return stmt.order_by(*search.page_order(search.search_terms(f.q)))


async def fetch_page(s: AsyncSession, user: Principal, f: IncidentFilters,
                     after: Cursor | None, n: int, postgres: bool
                     ) -> list[Incident]:
    """One page in list order (_in_order). On PostgreSQL a word search tries the index
    walk under a short statement timeout, then falls back to matching through the
    trigram index."""
    stmt = _in_order(_after(filtered(select(Incident), user, f, postgres), f, after),
                     f).limit(n)
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
    matches = _after(filtered(select(col(Incident.id)), user, f, postgres), f, after)
    m = matches.cte("matches").prefix_with("MATERIALIZED")
    stmt = _in_order(select(Incident).where(col(Incident.id).in_(select(m.c.id))), f).limit(n)
    return list((await s.execute(stmt)).scalars().all())


async def list_page(db: Database, user: Principal, filters: IncidentFilters,
                    limit: int = 50, cursor: str | None = None) -> IncidentPage:
    """Newest first, from the read model, in the caller's scope."""
    after = decode_cursor(cursor) if cursor else None
    async with db.session() as s:
        rows = await fetch_page(s, user, filters, after, limit + 1, not db.is_sqlite)
        more = len(rows) > limit
        rows = rows[:limit]
        silent = await silent_ids(s, [r.id for r in rows])
    now = utcnow()
    terms = search.search_terms(filters.q)
    rank = search.row_rank(terms, rows[-1].search_text) \
        if rows and terms and search.ranked(terms) else 0
    return IncidentPage(
        items=[summary(r, now, r.id in silent) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id, rank) if more else None)


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
    stmt = _in_order(stmt, filters).limit(limit)
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
