"""Staff calls on incidents: list (read model, cursor pagination), detail (live workflow
query joined with the read model), actions (workflow updates), CSV export, and attachment
fetch. An officer sees and acts only on the own unit's incidents: anything else is 404.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, text, tuple_
from sqlalchemy.exc import DBAPIError
from sqlmodel import col
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from api import intake, wording
from api.auth import Principal
from api.deps import CurrentUser, TemporalDown
from api.errors import ApiError, not_found
from api.metrics import ACTIONS
from api.temporal import TemporalUnavailable
from core.temporal import workflow_id
from schema import payloads as p
from schema.states import (
    UNIT_SCOPED,
    Action,
    Category,
    Outcome,
    Role,
    State,
    role_may,
    steps,
)
from schema.tables import Attachment, Incident, IncidentEvent, Report, Unit, utcnow

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/v1", tags=["staff"])
_ERR = {"model": dict}

STAFF_ACTIONS: tuple[Action, ...] = tuple(
    a for a in Action if a not in (Action.CANCEL, Action.ADD_INFO))


class StaffAction(StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    MERGE = "merge"
    CLASSIFY = "classify"
    ROUTE = "route"
    ACKNOWLEDGE = "acknowledge"
    ARRIVE = "arrive"
    NOTE = "note"
    CLOSE = "close"
    REASSIGN = "reassign"
    PUBLISH_ALERT = "publish_alert"


# --- list ----------------------------------------------------------------------------------
class IncidentFilters(BaseModel):
    state: list[State] = Field(default_factory=list)
    ward: int | None = None
    unit: str | None = None
    category: Category | None = None
    priority: int | None = Field(default=None, ge=1, le=4)
    overdue: bool | None = None
    q: str | None = Field(default=None, max_length=200)


def incident_filters(
    state: Annotated[list[State] | None, Query(description="one or more states")] = None,
    ward: Annotated[int | None, Query(ge=0, le=10_000_000)] = None,
    unit: Annotated[str | None, Query(max_length=64)] = None,
    category: Category | None = None,
    priority: Annotated[int | None, Query(ge=1, le=4)] = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> IncidentFilters:
    return IncidentFilters(state=state or [], ward=ward, unit=unit, category=category,
                           priority=priority, overdue=overdue, q=q)


FiltersDep = Annotated[IncidentFilters, Depends(incident_filters)]


def scoped(stmt: Select, user: Principal, f: IncidentFilters, postgres: bool = True) -> Select:
    """Apply the caller's scope and the filters to a select over Incident. `q` matches a
    tracking code exactly or all its words in the description (PostgreSQL: full text over
    an index; SQLite: LIKE)."""
    if user.is_officer:
        stmt = stmt.where(col(Incident.unit_id) == user.unit_id) if user.unit_id \
            else stmt.where(false())
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
        late = and_(col(Incident.is_open),
                    or_(col(Incident.escalation_level) > 0, col(Incident.deadline) < utcnow()))
        stmt = stmt.where(late if f.overdue else ~late)
    if f.q and f.q.strip():
        words = [w for w in f.q.split() if w][:8]
        code = intake.normalise_tracking_code(f.q)
        text_match: ColumnElement[bool]
        if postgres:
            text_match = func.to_tsvector("simple", col(Incident.description)).bool_op("@@")(
                func.plainto_tsquery("simple", " ".join(words)))
        else:
            text_match = and_(*[col(Incident.description).ilike(f"%{_escape_like(w)}%",
                                                                 escape="\\") for w in words])
        stmt = stmt.where(or_(col(Incident.tracking_code) == code, text_match))
    return stmt


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(created_at: datetime, incident_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), incident_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, incident_id = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError
        return when, str(incident_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ApiError(422, "validation_error", "Dữ liệu không hợp lệ", "Invalid input",
                       fields=[{"field": "cursor", "message": "Con trỏ trang không hợp lệ",
                                "message_en": "Invalid cursor"}]) from exc


class WardRef(BaseModel):
    code: int
    name: str | None = None


class UnitOut(BaseModel):
    id: str
    name: str | None = None


class IncidentSummary(BaseModel):
    id: str
    tracking_code: str
    state: State
    category: Category
    priority: int
    description: str
    location: p.Location
    address: str | None
    ward: WardRef | None
    unit: UnitOut | None
    source: str
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    escalation_level: int
    overdue: bool
    outside_city: bool
    duplicate_count: int
    merged_into: str | None


class IncidentPage(BaseModel):
    items: list[IncidentSummary]
    next_cursor: str | None


def summary(row: Incident, now: datetime | None = None) -> IncidentSummary:
    now = now or utcnow()
    overdue = bool(row.is_open and (row.escalation_level > 0
                                    or (row.deadline is not None and row.deadline < now)))
    return IncidentSummary(
        id=row.id, tracking_code=row.tracking_code, state=State(row.state),
        category=Category(row.category), priority=row.priority,
        description=row.description[:500],
        location=p.Location(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m),
        address=row.address,
        ward=WardRef(code=row.ward_code, name=row.ward_name) if row.ward_code else None,
        unit=UnitOut(id=row.unit_id, name=row.unit_name) if row.unit_id else None,
        source=row.source, created_at=row.created_at, updated_at=row.updated_at,
        deadline=row.deadline, escalation_level=row.escalation_level, overdue=overdue,
        outside_city=row.outside_city, duplicate_count=row.duplicate_count,
        merged_into=row.merged_into)


@router.get("/incidents", response_model=IncidentPage, responses={401: _ERR, 422: _ERR})
async def list_incidents(
    request: Request, user: CurrentUser, filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> IncidentPage:
    """Newest first, from the read model; an officer sees the own unit's incidents."""
    db = request.app.state.db
    postgres = not db.is_sqlite
    after = decode_cursor(cursor) if cursor else None
    async with db.session() as s:
        rows = await fetch_page(s, user, filters, after, limit + 1, postgres)
    more = len(rows) > limit
    rows = rows[:limit]
    now = utcnow()
    return IncidentPage(
        items=[summary(r, now) for r in rows],
        next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


# A word search first walks the newest-first index (fast when the words are common); when
# that takes longer than this, the words are rare and the full-text index is used first.
SEARCH_WALK_MS = 150


def _page_stmt(user: Principal, f: IncidentFilters, after: tuple[datetime, str] | None,
               n: int, postgres: bool, columns: Any = None) -> Select:
    stmt = scoped(select(columns if columns is not None else Incident), user, f, postgres)
    if after is not None:
        stmt = stmt.where(tuple_(col(Incident.created_at), col(Incident.id)) < tuple_(*after))
    return stmt.order_by(col(Incident.created_at).desc(), col(Incident.id).desc()).limit(n)


async def fetch_page(s: Any, user: Principal, f: IncidentFilters,
                     after: tuple[datetime, str] | None, n: int, postgres: bool
                     ) -> list[Incident]:
    """One page, newest first. On PostgreSQL a word search tries the index walk under a
    short statement timeout, then falls back to matching through the full-text index."""
    stmt = _page_stmt(user, f, after, n, postgres)
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
    matches = scoped(select(col(Incident.id), col(Incident.created_at)), user, f, postgres)
    if after is not None:
        matches = matches.where(
            tuple_(col(Incident.created_at), col(Incident.id)) < tuple_(*after))
    m = matches.cte("matches").prefix_with("MATERIALIZED")
    ids = select(m.c.id).order_by(m.c.created_at.desc(), m.c.id.desc()).limit(n)
    stmt = select(Incident).where(col(Incident.id).in_(ids)).order_by(
        col(Incident.created_at).desc(), col(Incident.id).desc())
    return list((await s.execute(stmt)).scalars().all())


EXPORT_COLUMNS = (
    "id", "tracking_code", "state", "category", "priority", "created_at", "updated_at",
    "ward_code", "ward_name", "unit_id", "unit_name", "lat", "lon", "address", "source",
    "escalation_level", "deadline", "acknowledged_at", "on_scene_at", "closed_at", "outcome",
    "merged_into", "description",
)


@router.get("/incidents/export.csv", response_class=StreamingResponse,
            responses={200: {"content": {"text/csv": {}}}, 401: _ERR})
async def export_csv(
    request: Request, user: CurrentUser, filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000,
) -> StreamingResponse:
    """The same filters and scope as the list, as CSV (UTF-8 with BOM for spreadsheets)."""
    db = request.app.state.db
    stmt = scoped(select(*[col(getattr(Incident, c)) for c in EXPORT_COLUMNS]), user,
                  filters, not db.is_sqlite)
    stmt = stmt.order_by(col(Incident.created_at).desc(), col(Incident.id).desc()).limit(limit)

    async def rows() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_COLUMNS)
        yield "\ufeff" + buf.getvalue()
        async with db.session() as s:
            result = await s.stream(stmt)
            async for part in result.partitions(1000):
                buf = io.StringIO()
                writer = csv.writer(buf)
                for r in part:
                    writer.writerow([_csv_value(v) for v in r])
                yield buf.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        rows(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="incidents-{stamp}.csv"'})


def _csv_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v  # no formulas in spreadsheets
    return v


# --- detail --------------------------------------------------------------------------------
class AttachmentRef(BaseModel):
    attachment_id: str
    content_type: str
    size: int
    sha256: str
    url: str


class IncidentDetail(BaseModel):
    id: str
    tracking_code: str
    state: State
    category: Category
    priority: int
    description: str
    location: p.Location
    address: str | None
    ward: p.WardInfo | None
    unit: p.UnitRef | None
    proposed_unit: p.UnitRef | None
    reporter: p.Reporter | None
    source: str
    attachments: list[AttachmentRef]
    timeline: list[p.TimelineEvent]
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None
    escalation_level: int
    overdue_since: datetime | None
    outcome: Outcome | None
    duplicates: list[p.DuplicateSuggestion]
    merged_into: str | None
    merged_incidents: list[str]
    primary_state: State | None
    acknowledged_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    allowed_actions: list[Action]
    live: bool = Field(description="True when read from the workflow, False from SQL")


def allowed_actions(user: Principal, state: State, unit_id: str | None) -> list[Action]:
    """What `user` may do now, from schema.states (the workflow validators use the same)."""
    if user.role not in {r.value for r in Role}:
        return []
    role = Role(user.role)
    out = []
    for action in STAFF_ACTIONS:
        if steps(action, state) is None or not role_may(action, role, state):
            continue
        if role is Role.OFFICER and action in UNIT_SCOPED and unit_id != user.unit_id:
            continue
        out.append(action)
    return out


async def _case_from_sql(db: Any, row: Incident) -> p.IncidentCase:
    async with db.session() as s:
        events = (await s.execute(select(IncidentEvent).where(
            col(IncidentEvent.incident_id) == row.id).order_by(col(IncidentEvent.seq))
        )).scalars().all()
        unit = await s.get(Unit, row.unit_id) if row.unit_id else None
    return p.IncidentCase(
        id=row.id, tracking_code=row.tracking_code, state=State(row.state),
        category=Category(row.category), priority=row.priority, description=row.description,
        location=p.Location(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m),
        address=row.address,
        reporter=p.Reporter(name=row.reporter_name, phone=row.reporter_phone)
        if row.reporter_name or row.reporter_phone else None,
        source=row.source,
        ward=p.WardInfo(code=row.ward_code, name=row.ward_name or "", exact=row.ward_exact,
                        outside_city=row.outside_city) if row.ward_code else None,
        unit=p.UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)
        if unit else None,
        created_at=row.created_at, updated_at=row.updated_at, deadline=row.deadline,
        escalation=p.Escalation(level=row.escalation_level, overdue_since=row.overdue_since),
        outcome=Outcome(row.outcome) if row.outcome else None, merged_into=row.merged_into,
        acknowledged_at=row.acknowledged_at, on_scene_at=row.on_scene_at,
        closed_at=row.closed_at,
        timeline=[p.TimelineEvent(
            seq=e.seq, at=e.at,
            actor=p.Actor(username=e.actor, role=Role(e.actor_role), unit_id=e.actor_unit_id),
            action=e.action, from_state=State(e.from_state) if e.from_state else None,
            to_state=State(e.to_state) if e.to_state else None, data=e.data or {},
            public_note=e.public_note) for e in events],
    )


async def _visible_row(request: Request, user: Principal, incident_id: str) -> Incident | None:
    """The read-model row when the caller may see the incident; 404 otherwise. None when
    the incident exists only as an accepted report (not yet projected)."""
    async with request.app.state.db.session() as s:
        row = await s.get(Incident, incident_id)
        report = None if row is not None else await s.get(Report, incident_id)
    if row is None and report is None:
        raise not_found("Không tìm thấy vụ việc", "No such incident")
    if user.is_officer and (row is None or row.unit_id is None or row.unit_id != user.unit_id):
        raise not_found("Không tìm thấy vụ việc", "No such incident")
    structlog.contextvars.bind_contextvars(incident_id=incident_id)
    return row


async def _attachment_refs(db: Any, case: p.IncidentCase) -> list[AttachmentRef]:
    ids = set(case.attachments)
    for ev in case.timeline:
        for a in ev.data.get("attachments") or []:
            ids.add(str(a))
    async with db.session() as s:
        rows = (await s.execute(select(Attachment).where(
            or_(col(Attachment.incident_id) == case.id, col(Attachment.id).in_(ids or {""})))
            .order_by(col(Attachment.created_at)))).scalars().all()
    return [AttachmentRef(attachment_id=a.id, content_type=a.content_type, size=a.size,
                          sha256=a.sha256, url=f"/api/v1/attachments/{a.id}/content")
            for a in rows]


async def detail_for(request: Request, user: Principal, case: p.IncidentCase,
                     live: bool) -> IncidentDetail:
    unit_id = case.unit.id if case.unit else None
    return IncidentDetail(
        id=case.id, tracking_code=case.tracking_code, state=case.state, category=case.category,
        priority=int(case.priority), description=case.description, location=case.location,
        address=case.address, ward=case.ward, unit=case.unit, proposed_unit=case.proposed_unit,
        reporter=case.reporter, source=case.source,
        attachments=await _attachment_refs(request.app.state.db, case),
        timeline=case.timeline, created_at=case.created_at, updated_at=case.updated_at,
        deadline=case.deadline, escalation_level=case.escalation.level,
        overdue_since=case.escalation.overdue_since, outcome=case.outcome,
        duplicates=case.duplicates, merged_into=case.merged_into,
        merged_incidents=case.merged_incidents, primary_state=case.primary_state,
        acknowledged_at=case.acknowledged_at, on_scene_at=case.on_scene_at,
        closed_at=case.closed_at, allowed_actions=allowed_actions(user, case.state, unit_id),
        live=live)


@router.get("/incidents/{incident_id}", response_model=IncidentDetail,
            responses={401: _ERR, 404: _ERR, 503: _ERR})
async def get_incident(request: Request, incident_id: uuid.UUID,
                       user: CurrentUser) -> IncidentDetail:
    """The live case (workflow query), with attachments from SQL and `allowed_actions`
    for the caller. Falls back to the read model when Temporal cannot answer."""
    iid = str(incident_id)
    row = await _visible_row(request, user, iid)
    return await _current_detail(request, user, iid, row)


async def _current_detail(request: Request, user: Principal, iid: str,
                          row: Incident | None) -> IncidentDetail:
    """The case from the read model (texts, timeline, attachments), with the live
    fields overlaid from the workflow's state when it answers."""
    live = await intake.query_case(request.app.state, iid)
    if live is not None and user.is_officer and (live.unit is None
                                                 or live.unit.id != user.unit_id):
        raise not_found("Không tìm thấy vụ việc", "No such incident")
    async with request.app.state.db.session() as s:
        fresh = await s.get(Incident, iid)
    row = fresh or row
    if row is None:
        raise TemporalDown()
    case = await _case_from_sql(request.app.state.db, row)
    if live is not None:
        case = case.model_copy(update={
            "state": live.state, "category": live.category, "priority": live.priority,
            "unit": live.unit, "ward": live.ward or case.ward,
            "proposed_unit": live.proposed_unit, "deadline": live.deadline,
            "escalation": live.escalation, "outcome": live.outcome,
            "duplicates": live.duplicates, "merged_into": live.merged_into,
            "merged_incidents": live.merged_incidents, "primary_state": live.primary_state,
            "acknowledged_at": live.acknowledged_at, "on_scene_at": live.on_scene_at,
            "closed_at": live.closed_at, "updated_at": live.updated_at})
    return await detail_for(request, user, case, live=live is not None)


# --- actions -------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmptyBody(_Body):
    pass


class RejectBody(_Body):
    reason: str = Field(min_length=1, max_length=2000)


class MergeBody(_Body):
    into_incident_id: uuid.UUID


class ClassifyBody(_Body):
    category: Category
    priority: int = Field(ge=1, le=4)


class RouteBody(_Body):
    unit_id: str | None = Field(default=None, max_length=64)
    ward_code: int | None = Field(default=None, ge=0, le=10_000_000)

    @model_validator(mode="after")
    def _one(self) -> RouteBody:
        if (self.unit_id is None) == (self.ward_code is None):
            raise ValueError("give exactly one of unit_id or ward_code")
        return self


class NoteBody(_Body):
    text: str = Field(min_length=1, max_length=5000)
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    public: bool = False


class CloseBody(_Body):
    outcome: Outcome
    summary: str = Field(min_length=1, max_length=5000)


class ReassignBody(RouteBody):
    reason: str = Field(min_length=1, max_length=2000)


class PublishAlertBody(_Body):
    headline: str = Field(min_length=1, max_length=160)
    instruction: str = Field(min_length=1, max_length=2000)
    radius_m: int = Field(ge=50, le=50_000)


BODIES: dict[StaffAction, type[_Body]] = {
    StaffAction.VERIFY: EmptyBody, StaffAction.REJECT: RejectBody,
    StaffAction.MERGE: MergeBody, StaffAction.CLASSIFY: ClassifyBody,
    StaffAction.ROUTE: RouteBody, StaffAction.ACKNOWLEDGE: EmptyBody,
    StaffAction.ARRIVE: EmptyBody, StaffAction.NOTE: NoteBody, StaffAction.CLOSE: CloseBody,
    StaffAction.REASSIGN: ReassignBody, StaffAction.PUBLISH_ALERT: PublishAlertBody,
}


_B = TypeVar("_B", bound=_Body)


def _narrow(body: _Body, kind: type[_B]) -> _B:
    """The body as the model BODIES gives for the action (always so: checked for mypy)."""
    if not isinstance(body, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(body).__name__}")
    return body


def _field_422(field: str, vi: str, en: str) -> ApiError:
    return ApiError(422, "validation_error", "Dữ liệu không hợp lệ", "Invalid input",
                    fields=[{"field": field, "message": vi, "message_en": en}])


async def resolve_unit(db: Any, unit_id: str | None, ward_code: int | None) -> p.UnitRef:
    async with db.session() as s:
        if unit_id is not None:
            unit = await s.get(Unit, unit_id)
            if unit is None:
                unit = (await s.execute(select(Unit).where(col(Unit.code) == unit_id))
                        ).scalars().first()
            field = "unit_id"
        else:
            unit = (await s.execute(select(Unit).where(
                col(Unit.ward_code) == ward_code, col(Unit.kind) == "ward_police",
                col(Unit.active)))).scalars().first()
            field = "ward_code"
    if unit is None or not unit.active:
        raise _field_422(field, "Không tìm thấy đơn vị", "No such unit")
    return p.UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)


async def build_input(request: Request, user: Principal, action: StaffAction,
                      body: _Body, incident_id: str, key: str | None) -> p.ActionInput:
    db = request.app.state.db
    actor = user.actor()
    match action:
        case StaffAction.VERIFY:
            return p.VerifyInput(actor=actor)
        case StaffAction.ACKNOWLEDGE:
            return p.AcknowledgeInput(actor=actor)
        case StaffAction.ARRIVE:
            return p.ArriveInput(actor=actor)
        case StaffAction.REJECT:
            reject = _narrow(body, RejectBody)
            return p.RejectInput(actor=actor, reason=reject.reason)
        case StaffAction.CLASSIFY:
            classify = _narrow(body, ClassifyBody)
            return p.ClassifyInput(actor=actor, category=classify.category,
                                   priority=classify.priority)
        case StaffAction.CLOSE:
            close = _narrow(body, CloseBody)
            return p.CloseInput(actor=actor, outcome=close.outcome, summary=close.summary)
        case StaffAction.ROUTE:
            route = _narrow(body, RouteBody)
            return p.RouteInput(actor=actor,
                                unit=await resolve_unit(db, route.unit_id, route.ward_code))
        case StaffAction.REASSIGN:
            reassign = _narrow(body, ReassignBody)
            return p.ReassignInput(
                actor=actor, reason=reassign.reason,
                unit=await resolve_unit(db, reassign.unit_id, reassign.ward_code))
        case StaffAction.MERGE:
            target_id = str(_narrow(body, MergeBody).into_incident_id)
            if target_id == incident_id:
                raise _field_422("into_incident_id", "Không thể gộp vào chính nó",
                                 "Cannot merge an incident into itself")
            async with db.session() as s:
                target = await s.get(Incident, target_id)
            if target is None:
                raise _field_422("into_incident_id", "Không tìm thấy vụ việc đích",
                                 "No such target incident")
            if not target.is_open:
                raise ApiError(409, "illegal_transition", "Vụ việc đích đã kết thúc",
                               "The target incident is no longer open")
            return p.MergeInput(actor=actor, into_incident_id=target_id,
                                into_tracking_code=target.tracking_code)
        case StaffAction.NOTE:
            note = _narrow(body, NoteBody)
            ids = [str(a) for a in dict.fromkeys(note.attachments)]
            async with db.session() as s:
                await intake.claim_attachments(s, ids, incident_id)
                await s.commit()
            return p.NoteInput(actor=actor, text=note.text, attachments=ids, public=note.public)
        case StaffAction.PUBLISH_ALERT:
            alert = _narrow(body, PublishAlertBody)
            alert_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"canhbao:{incident_id}:{key}")
                           if key else uuid.uuid4())
            return p.PublishAlertInput(actor=actor, alert_id=alert_id, headline=alert.headline,
                                       instruction=alert.instruction, radius_m=alert.radius_m)
    raise AssertionError(action)


@router.post("/incidents/{incident_id}/actions/{action}", response_model=IncidentDetail,
             responses={401: _ERR, 403: _ERR, 404: _ERR, 409: _ERR, 422: _ERR, 503: _ERR})
async def act(
    request: Request, incident_id: uuid.UUID, action: StaffAction, user: CurrentUser,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> IncidentDetail:
    """Take an action on the incident (a workflow update). The same Idempotency-Key again
    returns the first result and changes nothing."""
    iid = str(incident_id)
    row = await _visible_row(request, user, iid)
    if Role(user.role) not in _roles(action):
        vi, en = wording.role_never(Action(action.value), Role(user.role))
        raise ApiError(403, "forbidden", vi, en)
    try:
        parsed = BODIES[action].model_validate(body or {})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from exc
    if row is not None and not row.is_open:
        vi, en = wording.not_in_state(Action(action.value), State(row.state))
        raise ApiError(409, "illegal_transition", vi, en)
    inp = await build_input(request, user, action, parsed, iid, idempotency_key)
    update_id = f"{action.value}:{idempotency_key}" if idempotency_key else None
    try:
        client = await request.app.state.temporal.get()
        handle = client.get_workflow_handle(workflow_id(iid))
        result = await asyncio.wait_for(
            handle.execute_update(action.value, inp, id=update_id,
                                  result_type=p.ActionResult, rpc_timeout=intake.RPC_TIMEOUT),
            intake.CALL_TIMEOUT_S * 2)
    except WorkflowUpdateFailedError as exc:
        ACTIONS.labels(action.value, "refused").inc()
        raise _update_error(exc, Role(user.role)) from exc
    except (TemporalUnavailable, TimeoutError) as exc:
        ACTIONS.labels(action.value, "unavailable").inc()
        raise TemporalDown() from exc
    except RPCError as exc:
        ACTIONS.labels(action.value, "refused").inc()
        if exc.status == RPCStatusCode.NOT_FOUND and row is None:
            raise not_found("Không tìm thấy vụ việc", "No such incident") from exc
        if "complet" in str(exc).lower() or exc.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(409, "illegal_transition", "Vụ việc đã kết thúc",
                           "The incident has ended") from exc
        raise TemporalDown() from exc
    ACTIONS.labels(action.value, "ok").inc()
    log.info("action taken", action=action.value, actor=user.username,
             state=result.state.value)
    return await _current_detail(request, user, iid, row)


def _roles(action: StaffAction) -> frozenset[Role]:
    from schema.states import ACTION_ROLES

    return ACTION_ROLES[Action(action.value)]


def _update_error(exc: WorkflowUpdateFailedError, role: Role | None = None) -> ApiError:
    cause: BaseException | None = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause if isinstance(cause, FailureError) else None
    kind = cause.type if isinstance(cause, ApplicationError) else None
    vi, en = refusal_messages(cause if isinstance(cause, ApplicationError) else None, str(exc),
                              role)
    if kind == "Forbidden":
        return ApiError(403, "forbidden", vi, en)
    if kind == "Invalid":
        return ApiError(422, "validation_error", vi, en, fields=[])
    return ApiError(409, "illegal_transition", vi, en)


def refusal_messages(cause: ApplicationError | None, fallback: str,
                     role: Role | None = None) -> tuple[str, str]:
    """(vi, en) for a workflow refusal: worded from its details' action and state (and the
    caller's role) when they explain it, else the workflow's own "vi / en" message and
    details[0].message_en."""
    if cause is None:
        return fallback, fallback
    details = cause.details[0] if cause.details else None
    if isinstance(details, dict):
        worded = wording.refusal(cause.type, details.get("action"), details.get("state"), role)
        if worded is not None:
            return worded
    vi, _, en = cause.message.partition(" / ")
    if isinstance(details, dict) and details.get("message_en"):
        en = str(details["message_en"])
    return vi or cause.message, en or vi or cause.message


# --- attachments for staff ------------------------------------------------------------------
@router.get("/attachments/{attachment_id}/content",
            responses={200: {"content": {"image/*": {}, "video/*": {}}}, 307: {}, 401: _ERR,
                       404: _ERR})
async def attachment_content(request: Request, attachment_id: uuid.UUID, user: CurrentUser):
    """The file, for staff who may see its incident: a short-lived presigned redirect on
    S3, streamed by the API from the local folder."""
    async with request.app.state.db.session() as s:
        att = await s.get(Attachment, str(attachment_id))
        inc = await s.get(Incident, att.incident_id) if att and att.incident_id else None
    if att is None:
        raise not_found("Không tìm thấy tệp", "No such file")
    if user.is_officer:
        own_upload = att.uploaded_by == user.username
        if not own_upload and (inc is None or inc.unit_id != user.unit_id):
            raise not_found("Không tìm thấy tệp", "No such file")
    storage = request.app.state.storage
    settings = request.app.state.settings
    url = await storage.url(att.storage_key, settings.s3_presign_seconds, att.content_type)
    if url:
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        storage.open(att.storage_key), media_type=att.content_type,
        headers={"Content-Length": str(att.size), "X-Content-Type-Options": "nosniff",
                 "Cache-Control": "private, max-age=300",
                 "Content-Disposition": f'inline; filename="{att.id}"'})
