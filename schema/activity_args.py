"""The arguments and results of the worker's activities (activities/), as the incident
workflow calls them: the projection of an event, escalation alerts and reminders, a
public alert, the ward and duplicate look-ups. Pydantic payloads like schema.payloads'.
"""

from __future__ import annotations

from datetime import datetime

from schema.payloads import (
    IncidentInput,
    IncidentState,
    Payload,
    TimelineEvent,
    UnitRef,
    WardInfo,
)
from schema.states import Category, Priority, State


class ProjectEvent(Payload):
    """Append (or replace) `event` and upsert the incident row from `state`; idempotent
    by (state.id, event.seq). `report` travels once, with the receive event: the texts
    and reporter the workflow does not keep."""

    state: IncidentState
    event: TimelineEvent
    report: IncidentInput | None = None


class ReminderInput(Payload):
    """Past the top level: tell the top level's audiences again and count it on the
    existing alert (no new alert row, no timeline event)."""

    incident_id: str
    tracking_code: str
    level: int
    state: State
    priority: Priority
    overdue_since: datetime
    reminder: int  # 1 for the first reminder
    at: datetime
    next_deadline: datetime | None = None  # when the next reminder is due (the list shows it)
    ward_code: int | None = None
    unit_id: str | None = None


class EscalationInput(Payload):
    incident_id: str
    seq: int  # the escalate event that raised it; keys the alert
    tracking_code: str
    level: int
    state: State
    priority: Priority
    category: Category
    overdue_since: datetime
    ward_code: int | None = None
    unit_id: str | None = None


class ResolveAlertsInput(Payload):
    incident_id: str
    state: State  # the state that was left
    at: datetime


class PublicAlertRecord(Payload):
    """A public warning to store (public_alerts row); idempotent by id."""

    id: str
    incident_id: str
    headline: str
    instruction: str
    category: Category
    priority: Priority
    lat: float
    lon: float
    radius_m: int
    sent_at: datetime
    sender: str


class LocateInput(Payload):
    lat: float
    lon: float


class LocateResult(Payload):
    ward: WardInfo | None
    unit: UnitRef | None  # the ward police unit, proposed as the default route
    at: datetime | None = None  # when the look-up finished: the locate event's time


class DuplicatesInput(Payload):
    incident_id: str
    category: Category
    lat: float
    lon: float
    at: datetime
