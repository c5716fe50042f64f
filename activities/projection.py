"""Project the workflow's events into the SQL read model.

`project_event` appends one row to incident_events and upserts the incidents row in one
transaction. It is idempotent by (incident id, event seq): a re-delivered event inserts
nothing, and the incident row only moves forward (it is updated when seq > last_seq).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import Table, func, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.sql import insert
from core.db import Database
from schema.payloads import IncidentCase, ProjectInput, TimelineEvent
from schema.states import State
from schema.tables import Attachment, Incident, IncidentEvent, StaffEvent

log = structlog.get_logger(__name__)

EVENTS: Table = IncidentEvent.__table__  # type: ignore[attr-defined]
INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
STAFF_EVENTS: Table = StaffEvent.__table__  # type: ignore[attr-defined]
ATTACHMENTS: Table = Attachment.__table__  # type: ignore[attr-defined]
_FIRST_SEEN = {State.VERIFIED: "verified_at", State.ROUTED: "routed_at"}


def incident_values(case: IncidentCase, event: TimelineEvent) -> dict[str, Any]:
    """The incidents row for `case` as of `event`."""
    ward, unit = case.ward, case.unit
    values: dict[str, Any] = {
        "id": case.id,
        "tracking_code": case.tracking_code,
        "state": case.state.value,
        "is_open": not case.state.is_terminal,
        "category": case.category.value,
        "priority": int(case.priority),
        "description": case.description,
        "lat": case.location.lat,
        "lon": case.location.lon,
        "accuracy_m": case.location.accuracy_m,
        "address": case.address,
        "ward_code": ward.code if ward else None,
        "ward_name": ward.name if ward else None,
        "ward_exact": ward.exact if ward else True,
        "outside_city": ward.outside_city if ward else False,
        "unit_id": unit.id if unit else None,
        "unit_name": unit.name if unit else None,
        "proposed_unit_id": case.proposed_unit.id if case.proposed_unit else None,
        "reporter_name": case.reporter.name if case.reporter else None,
        "reporter_phone": case.reporter.phone if case.reporter else None,
        "source": case.source,
        "outcome": case.outcome.value if case.outcome else None,
        "merged_into": case.merged_into,
        "duplicate_count": len(case.duplicates),
        "escalation_level": case.escalation.level,
        "overdue_since": case.escalation.overdue_since,
        "deadline": case.deadline,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "acknowledged_at": case.acknowledged_at,
        "on_scene_at": case.on_scene_at,
        "closed_at": case.closed_at,
        "last_seq": event.seq,
    }
    for state, column in _FIRST_SEEN.items():
        values[column] = event.at if event.to_state == state else None
    return values


def staff_kind(event: TimelineEvent) -> str:
    return "incident.new" if event.action == "receive" else "incident.changed"


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=names.PROJECT_EVENT)
    async def project_event(self, inp: ProjectInput) -> None:
        case, event = inp.case, inp.event
        if event.seq < 1 or not case.id:
            raise ApplicationError(f"bad event seq {event.seq} for {case.id!r}",
                                   type="Invalid", non_retryable=True)
        events, incidents = EVENTS, INCIDENTS
        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(self.db, events).values(
                    incident_id=case.id, seq=event.seq, at=event.at,
                    actor=event.actor.username, actor_role=event.actor.role.value,
                    actor_unit_id=event.actor.unit_id, action=event.action,
                    from_state=event.from_state.value if event.from_state else None,
                    to_state=event.to_state.value if event.to_state else None,
                    data=event.data, public_note=event.public_note,
                ).on_conflict_do_nothing(index_elements=["incident_id", "seq"])
            )
            row = incident_values(case, event)
            stmt = insert(self.db, incidents).values(**row)
            keep = ("id", "created_at", *_FIRST_SEEN.values())
            set_: dict[str, Any] = {k: stmt.excluded[k] for k in row if k not in keep}
            for column in _FIRST_SEEN.values():
                set_[column] = func.coalesce(incidents.c[column], stmt.excluded[column])
            await conn.execute(stmt.on_conflict_do_update(
                index_elements=["id"], set_=set_,
                where=incidents.c.last_seq < stmt.excluded.last_seq,
            ))
            await conn.execute(
                insert(self.db, STAFF_EVENTS).values(
                    kind=staff_kind(event), incident_id=case.id,
                    unit_id=case.unit.id if case.unit else None,
                    ward_code=case.ward.code if case.ward else None,
                    payload={
                        "state": case.state.value, "tracking_code": case.tracking_code,
                        "seq": event.seq, "action": event.action,
                        "category": case.category.value, "priority": int(case.priority),
                        "from_state": event.from_state.value if event.from_state else None,
                        "to_state": event.to_state.value if event.to_state else None,
                    },
                    dedupe_key=f"event:{case.id}:{event.seq}",
                ).on_conflict_do_nothing(index_elements=["dedupe_key"])
            )
            attachments = _event_attachments(case, event)
            if attachments:
                await conn.execute(
                    update(ATTACHMENTS)
                    .where(ATTACHMENTS.c.id.in_(attachments), ATTACHMENTS.c.incident_id.is_(None))
                    .values(incident_id=case.id)
                )


def _event_attachments(case: IncidentCase, event: TimelineEvent) -> list[str]:
    if event.action == "receive":
        return list(case.attachments)
    found = event.data.get("attachments") or []
    return [str(a) for a in found]
