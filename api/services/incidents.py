"""Staff lists of incidents from the read model: filters on top of the caller's scope,
in one of three orders (newest first, oldest first, most urgent first) with keyset cursor
pagination, counts by state, word search, and the CSV export."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement
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
    ListOrder,
    UnitOut,
    WardRef,
    overdue_clause,
)
from schema.incidents import is_overdue as overdue_at
from schema.reports import normalise_tracking_code
from schema.states import OPEN_STATES, Category, State
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


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the list order, the last row's sort keys (`order_keys`), its
    search rank (0 without a ranked search) and, for urgency, the moment "overdue" was
    judged on the first page, so that a report falling overdue meanwhile cannot make a
    row appear twice or never."""

    order: ListOrder
    keys: tuple[Any, ...]
    rank: int = 0
    now: datetime | None = None


def late_key(now: datetime) -> ColumnElement[int]:
    """0 for an overdue incident (schema.incidents.is_overdue at `now`), else 1."""
    return case((overdue_clause(now), 0), else_=1)


def order_keys(order: ListOrder, now: datetime) -> list[Any]:
    """The columns a list is sorted on, most significant first: urgency is overdue first,
    then priority (1 most urgent), then the oldest; the others are by time alone. The id
    breaks ties, so the order is total and a keyset cursor is exact."""
    at_id = [col(Incident.created_at), col(Incident.id)]
    if order is ListOrder.URGENCY:
        return [late_key(now), col(Incident.priority), *at_id]
    return at_id


def row_keys(order: ListOrder, row: Incident, now: datetime) -> tuple[Any, ...]:
    """`order_keys` of one fetched row, computed in Python for the next page's cursor."""
    if order is ListOrder.URGENCY:
        late = overdue_at(row.is_open, row.escalation_level, row.deadline, now)
        return (0 if late else 1, row.priority, row.created_at, row.id)
    return (row.created_at, row.id)


def encode_cursor(created_at: datetime, incident_id: str, rank: int = 0) -> str:
    """A newest-first cursor (the form this API has always given)."""
    raw = json.dumps([created_at.isoformat(), incident_id, rank]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode(cursor: Cursor) -> str:
    if cursor.order is ListOrder.NEWEST:
        at, incident_id = cursor.keys
        return encode_cursor(at, incident_id, cursor.rank)
    keys = [k.isoformat() if isinstance(k, datetime) else k for k in cursor.keys]
    body = {"o": cursor.order.value, "k": keys, "r": cursor.rank,
            "n": cursor.now.isoformat() if cursor.now else None}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


def _aware(value: Any) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError("a time without its zone")
    return when


def decode_cursor(cursor: str, order: ListOrder | None = None) -> Cursor:
    """The place a cursor points after; 422 for a cursor not made here, or made for
    another order than `order` (when given)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(raw, list):
            at, incident_id, *rest = raw
            rank = rest[0] if rest else 0
            if len(rest) > 1:
                raise ValueError
            found = Cursor(ListOrder.NEWEST, (_aware(at), str(uuid.UUID(str(incident_id)))),
                           rank)
        else:
            found = _decode_keyed(raw)
        if found.rank not in (0, 1) or (order is not None and found.order is not order):
            raise ValueError
        return found
    except (ValueError, TypeError, KeyError, AttributeError, json.JSONDecodeError) as exc:
        raise field_error("cursor", *words.both("field.cursor.invalid")) from exc


def _decode_keyed(raw: dict[str, Any]) -> Cursor:
    order = ListOrder(raw["o"])
    keys = raw["k"]
    rank = raw.get("r", 0)
    if order is ListOrder.URGENCY:
        late, priority, at, incident_id = keys
        if late not in (0, 1) or type(priority) is not int or not 1 <= priority <= 4:
            raise ValueError
        return Cursor(order, (late, priority, _aware(at), str(uuid.UUID(str(incident_id)))),
                      rank if type(rank) is int else -1, _aware(raw["n"]))
    at, incident_id = keys
    return Cursor(order, (_aware(at), str(uuid.UUID(str(incident_id)))),
                  rank if type(rank) is int else -1)


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
    """The rows after the cursor in its order (a ranked search keeps the rank first)."""
    if after is None:
        return stmt
    keys = tuple_(*order_keys(after.order, after.now or utcnow()))
    mark = tuple_(*after.keys)
    past = keys < mark if after.order is ListOrder.NEWEST else keys > mark
    terms = search.search_terms(f.q)
    if terms is None or not search.ranked(terms):
        return stmt.where(past)
    r = search.exact_rank(terms)
    return stmt.where(or_(r > after.rank, and_(r == after.rank, past)))


def _in_order(stmt: Select, f: IncidentFilters, order: ListOrder = ListOrder.NEWEST,
              now: datetime | None = None) -> Select:
    """`order` (newest first by default); a search with marks or capitals puts
    exact-diacritic matches first."""
    keys = order_keys(order, now or utcnow())
    by = [k.desc() for k in keys] if order is ListOrder.NEWEST else [k.asc() for k in keys]
    terms = search.search_terms(f.q)
    rank = [search.exact_rank(terms)] if terms is not None and search.ranked(terms) else []
    return stmt.order_by(*rank, *by)


async def fetch_page(s: AsyncSession, user: Principal, f: IncidentFilters,
                     after: Cursor | None, n: int, postgres: bool,
                     order: ListOrder = ListOrder.NEWEST, now: datetime | None = None
                     ) -> list[Incident]:
    """One page in list order (_in_order). On PostgreSQL a word search tries the index
    walk under a short statement timeout, then falls back to matching through the
    trigram index."""
    stmt = _in_order(_after(filtered(select(Incident), user, f, postgres), f, after),
                     f, order, now).limit(n)
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
    stmt = _in_order(select(Incident).where(col(Incident.id).in_(select(m.c.id))), f,
                     order, now).limit(n)
    return list((await s.execute(stmt)).scalars().all())


async def list_page(db: Database, user: Principal, filters: IncidentFilters,
                    limit: int = 50, cursor: str | None = None,
                    order: ListOrder = ListOrder.NEWEST) -> IncidentPage:
    """One page in `order`, from the read model, in the caller's scope. An urgency page
    judges "overdue" at the time of its first page (carried in the cursor)."""
    after = decode_cursor(cursor, order) if cursor else None
    now = after.now if after and after.now else utcnow()
    async with db.session() as s:
        rows = await fetch_page(s, user, filters, after, limit + 1, not db.is_sqlite,
                                order, now)
        more = len(rows) > limit
        rows = rows[:limit]
        silent = await silent_ids(s, [r.id for r in rows])
    terms = search.search_terms(filters.q)
    rank = search.row_rank(terms, rows[-1].search_text) \
        if rows and terms and search.ranked(terms) else 0
    following = Cursor(order, row_keys(order, rows[-1], now), rank,
                       now if order is ListOrder.URGENCY else None) if more else None
    return IncidentPage(
        items=[summary(r, utcnow(), r.id in silent) for r in rows],
        next_cursor=encode(following) if following else None)


async def state_counts(db: Database, user: Principal, filters: IncidentFilters
                       ) -> tuple[dict[State, int], int]:
    """How many open incidents of the filtered list (its state filter aside) are in each
    state, and how many of them are overdue now: the console's header."""
    now = utcnow()
    unfiltered = filters.model_copy(update={"state": list(OPEN_STATES)})
    late = func.sum(case((overdue_clause(now), 1), else_=0))
    stmt = filtered(select(col(Incident.state), func.count(), late), user, unfiltered,
                    not db.is_sqlite).group_by(col(Incident.state))
    async with db.session() as s:
        rows = (await s.execute(stmt)).all()
    return {State(r[0]): int(r[1]) for r in rows}, sum(int(r[2] or 0) for r in rows)


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
