"""One incident as staff see it: built from the read model (the incidents row and its
incident_events, which the workflow writes before an update returns), with the live
fields overlaid from the workflow's `case` query when it answers.

The timeline, texts, reporter and attachments always come from SQL; only state, unit,
deadline, escalation, merged_into, primary_state and outcome come from the query.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import structlog
from sqlalchemy import or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api import scope
from api.auth import Principal
from api.cases import Cases, CaseUnavailable, LiveCase
from api.errors import ApiError, not_found
from api.media import has_renditions
from api.services.incidents import silent_ids
from api.services.reporter_location import reporter_location
from core.db import Database
from core.geo import haversine_m
from schema import payloads as p
from schema import words
from schema.actions import STAFF_ACTIONS
from schema.incidents import AttachmentRef, IncidentDetail, ReporterOut
from schema.states import (
    DEFAULT_PRIORITY,
    UNIT_SCOPED,
    Action,
    Category,
    Outcome,
    Role,
    State,
    may_take,
)
from schema.tables import Attachment, Incident, IncidentEvent, Report, Unit

log = structlog.get_logger(__name__)


def incident_not_found() -> ApiError:
    return not_found(*words.both("error.not_found.incident"))


def allowed_actions(user: Principal, state: State, unit_id: str | None) -> list[Action]:
    """What `user` may do now, from schema.states (the workflow validators use the same)."""
    role = user.role
    return [a for a in STAFF_ACTIONS
            if may_take(a, role, state)
            and not (a in UNIT_SCOPED and not scope.sees_unit(user, unit_id))]


@dataclass
class CaseView:
    """One incident for the detail: `case` holds what the workflow keeps (as the read
    model has it, the live fields overlaid), the rest what only the read model keeps."""

    case: LiveCase
    description: str
    address: str | None = None
    reporter: p.Reporter | None = None
    attachments: list[str] = field(default_factory=list)
    timeline: list[p.TimelineEvent] = field(default_factory=list)


async def visible_row(s: AsyncSession, user: Principal, incident_id: str
                      ) -> tuple[Incident | None, Report | None]:
    """The read-model row (None when the report is not projected yet) and the report,
    when the caller may see the incident; 404 otherwise."""
    row = await s.get(Incident, incident_id)
    report = await s.get(Report, incident_id) if row is None else None
    if row is None and report is None:
        raise incident_not_found()
    if not scope.sees_unit(user, row.unit_id if row is not None else None):
        raise incident_not_found()
    structlog.contextvars.bind_contextvars(incident_id=incident_id)
    return row, report


def _unit_ref(unit: Unit | None) -> p.UnitRef | None:
    if unit is None:
        return None
    return p.UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)


def _event(e: IncidentEvent) -> p.TimelineEvent:
    return p.TimelineEvent(
        seq=e.seq, at=e.at,
        actor=p.Actor(username=e.actor, role=Role(e.actor_role), unit_id=e.actor_unit_id),
        action=e.action, from_state=State(e.from_state) if e.from_state else None,
        to_state=State(e.to_state) if e.to_state else None, data=e.data or {},
        public_note=e.public_note)


async def _duplicates(s: AsyncSession, row: Incident, events: list[IncidentEvent]
                      ) -> list[p.DuplicateSuggestion]:
    ids: list[str] = []
    for e in events:
        if isinstance((e.data or {}).get("duplicates"), list):
            ids = [str(i) for i in e.data["duplicates"]]
    if not ids:
        return []
    found = {r.id: r for r in (await s.execute(
        select(Incident).where(col(Incident.id).in_(ids)))).scalars().all()}
    return [p.DuplicateSuggestion(
        incident_id=d.id, tracking_code=d.tracking_code, state=State(d.state),
        category=Category(d.category), created_at=d.created_at,
        distance_m=round(haversine_m(row.lat, row.lon, d.lat, d.lon), 1))
        for d in (found[i] for i in ids if i in found)]


async def case_from_sql(s: AsyncSession, row: Incident) -> CaseView:
    """The case as the read model has it (the incidents row, its events, its units)."""
    events = list((await s.execute(select(IncidentEvent).where(
        col(IncidentEvent.incident_id) == row.id).order_by(col(IncidentEvent.seq))
    )).scalars().all())
    unit = await s.get(Unit, row.unit_id) if row.unit_id else None
    proposed = await s.get(Unit, row.proposed_unit_id) if row.proposed_unit_id else None
    merged = list((await s.execute(select(col(Incident.id)).where(
        col(Incident.merged_into) == row.id).order_by(col(Incident.created_at))
    )).scalars().all())
    primary = await s.get(Incident, row.merged_into) if row.merged_into else None
    case = LiveCase(
        id=row.id, tracking_code=row.tracking_code, state=State(row.state),
        category=Category(row.category), priority=row.priority,
        location=p.Location(lat=row.lat, lon=row.lon, accuracy_m=row.accuracy_m),
        source=row.source,
        ward=p.WardInfo(code=row.ward_code, name=row.ward_name or "", exact=row.ward_exact,
                        outside_city=row.outside_city) if row.ward_code else None,
        unit=_unit_ref(unit), proposed_unit=_unit_ref(proposed),
        created_at=row.created_at, updated_at=row.updated_at, deadline=row.deadline,
        escalation=p.Escalation(level=row.escalation_level, overdue_since=row.overdue_since),
        outcome=Outcome(row.outcome) if row.outcome else None, merged_into=row.merged_into,
        merged_incidents=merged, primary_state=State(primary.state) if primary else None,
        duplicates=await _duplicates(s, row, events),
        acknowledged_at=row.acknowledged_at, on_scene_at=row.on_scene_at,
        closed_at=row.closed_at)
    return CaseView(
        case=case, description=row.description, address=row.address,
        reporter=p.Reporter(name=row.reporter_name, phone=row.reporter_phone)
        if row.reporter_name or row.reporter_phone else None,
        timeline=[_event(e) for e in events])


def case_from_report(report: Report) -> CaseView:
    """The case of an accepted report that the workflow has not projected yet."""
    inp = p.IncidentInput.model_validate(report.payload)
    case = LiveCase(
        id=report.id, tracking_code=report.tracking_code, state=State.RECEIVED,
        category=inp.category, priority=DEFAULT_PRIORITY[inp.category],
        location=inp.location, source=report.source,
        created_at=report.created_at, updated_at=report.created_at)
    return CaseView(case=case, description=inp.description, address=inp.address,
                    reporter=inp.reporter, attachments=list(inp.attachments))


def overlay(view: CaseView, live: LiveCase) -> CaseView:
    """The read-model case with the live fields from the workflow's state."""
    case = view.case
    return replace(view, case=case.model_copy(update={
        "state": live.state, "category": live.category, "priority": live.priority,
        "unit": live.unit, "ward": live.ward or case.ward, "proposed_unit": live.proposed_unit,
        "deadline": live.deadline, "escalation": live.escalation, "outcome": live.outcome,
        "duplicates": live.duplicates or case.duplicates, "merged_into": live.merged_into,
        "merged_incidents": live.merged_incidents, "primary_state": live.primary_state,
        "acknowledged_at": live.acknowledged_at, "on_scene_at": live.on_scene_at,
        "closed_at": live.closed_at, "updated_at": live.updated_at}))


async def _attachment_refs(s: AsyncSession, view: CaseView) -> list[AttachmentRef]:
    ids = set(view.attachments)
    for ev in view.timeline:
        ids.update(str(a) for a in ev.data.get("attachments") or [])
    rows = (await s.execute(select(Attachment).where(
        or_(col(Attachment.incident_id) == view.case.id, col(Attachment.id).in_(ids or {""})))
        .order_by(col(Attachment.created_at)))).scalars().all()
    return [AttachmentRef(attachment_id=a.id, content_type=a.content_type, size=a.size,
                          sha256=a.sha256, url=f"/api/v1/attachments/{a.id}/content",
                          **({"preview_url": f"/api/v1/attachments/{a.id}/preview",
                              "thumbnail_url": f"/api/v1/attachments/{a.id}/thumbnail"}
                             if has_renditions(a.content_type) else {}))
            for a in rows]


async def incident_detail(db: Database, cases: Cases, user: Principal,
                          incident_id: str) -> IncidentDetail:
    """The incident for `user`: 404 when out of scope (also when the live unit is not the
    officer's), 503 when it is only an accepted report and Temporal cannot answer."""
    async with db.session() as s:
        row, report = await visible_row(s, user, incident_id)
        view = await case_from_sql(s, row) if row is not None else None
    live = await cases.query(incident_id)
    if live is not None:
        if not scope.sees_unit(user, live.unit.id if live.unit else None):
            raise incident_not_found()
        if view is None and report is not None:
            view = case_from_report(report)
        if view is not None and row is not None and live.seq > row.last_seq:
            # The workflow has moved on and is writing it: show the read model as it
            # is, so the state never runs ahead of the timeline (the next refresh shows it).
            live = None
        elif view is not None:
            view = overlay(view, live)
    if view is None:
        raise CaseUnavailable("the report is not projected and the workflow cannot answer")
    version = live.version if live is not None else (row.version if row is not None else 0)
    case = view.case
    async with db.session() as s:
        attachments = await _attachment_refs(s, view)
        shared = await reporter_location(s, case.id)
        silent = case.id in await silent_ids(s, [case.id])
    unit_id = case.unit.id if case.unit else None
    return IncidentDetail(
        id=case.id, tracking_code=case.tracking_code, state=case.state, category=case.category,
        priority=int(case.priority), description=view.description, location=case.location,
        address=view.address, ward=case.ward, unit=case.unit, proposed_unit=case.proposed_unit,
        reporter=ReporterOut.of(view.reporter), source=case.source, attachments=attachments,
        timeline=view.timeline, created_at=case.created_at, updated_at=case.updated_at,
        deadline=case.deadline, escalation_level=case.escalation.level,
        overdue_since=case.escalation.overdue_since, outcome=case.outcome,
        duplicates=case.duplicates, merged_into=case.merged_into,
        merged_incidents=case.merged_incidents, primary_state=case.primary_state,
        acknowledged_at=case.acknowledged_at, on_scene_at=case.on_scene_at,
        closed_at=case.closed_at,
        allowed_actions=allowed_actions(user, case.state, unit_id),
        version=version, escalation_reminders=case.escalation.reminders,
        live=live is not None, reporter_location=shared, silent=silent)
