"""Pydantic payloads that cross the workflow boundary: the workflow's input, its updates,
its state (the `case` query's answer) and its results. The signals between incidents are
in schema/signals.py, the activities' arguments in schema/activity_args.py. No database
imports in any of them, so the workflow sandbox stays light.

Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schema.states import Category, Outcome, Priority, Role, State


class Payload(BaseModel):
    model_config = ConfigDict(frozen=False, extra="forbid")


# --- shared pieces -----------------------------------------------------------------------
class Location(Payload):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class Reporter(Payload):
    name: str | None = None
    phone: str | None = None


class Actor(Payload):
    """Who is acting. The API builds it from the authenticated session; the workflow
    trusts it and checks role and unit against the incident."""

    username: str
    role: Role
    user_id: str | None = None
    unit_id: str | None = None
    display_name: str | None = None


SYSTEM_ACTOR = Actor(username="system", role=Role.SYSTEM)
CITIZEN_ACTOR = Actor(username="citizen", role=Role.CITIZEN)


class UnitRef(Payload):
    id: str
    name: str
    kind: str
    ward_code: int | None = None


class WardInfo(Payload):
    code: int
    name: str
    exact: bool = True  # the point is inside the ward's polygon
    outside_city: bool = False  # farther than the setting from any ward: flag for operator
    distance_m: float = 0.0  # from the polygon when not exact


class DuplicateSuggestion(Payload):
    incident_id: str
    tracking_code: str
    state: State
    category: Category
    distance_m: float
    created_at: datetime


class Escalation(Payload):
    """How far an overdue incident has climbed the ladder of `schema.escalation`."""

    level: int = 0
    overdue_since: datetime | None = None
    reminders: int = 0  # reminders sent since the top level was reached
    last_reminded_at: datetime | None = None


# --- workflow input ----------------------------------------------------------------------
# The incident workflow's Temporal type (workflows/incident.py). "IncidentWorkflow" was the
# first shape's, retired before CanhBao was deployed (`canhbao retired-workflows`).
INCIDENT_WORKFLOW = "IncidentWorkflowV2"
RETIRED_WORKFLOW_TYPES = ("IncidentWorkflow",)


class IntakeRecord(Payload):
    """What the projection needs to create the `reports` row of a report accepted while the
    database was unreachable (api/services/submission.py): the citizen's tracking token
    and the request's fingerprint (api/idempotency.py). The rest of the row is the input
    itself. Set only on that path, and dropped at continue-as-new.

    The token (a bearer secret for the tracking page) is then in the workflow history. The
    history already holds the report itself, the reporter's name and phone, and whoever
    may read it may also signal or end the workflow, so it adds no reader; it is kept
    because a citizen who resubmits the same report_id while the database is still down
    must get the same answer, which the API reads back from the history."""

    tracking_token: str
    fingerprint: str


class IncidentInput(Payload):
    incident_id: str
    tracking_code: str
    category: Category
    description: str
    location: Location
    received_at: datetime
    address: str | None = None
    reporter: Reporter | None = None
    attachments: list[str] = Field(default_factory=list)
    source: str = "web"  # web, api, open311
    sla_scale: float = 1.0  # CANHBAO_SLA_SCALE at intake, fixed for the incident's life
    # CANHBAO_SLA overrides at intake ({priority: {state: seconds}}), fixed likewise.
    sla: dict[int, dict[str, float]] | None = None
    # CANHBAO_REMINDERS at intake (seconds between reminders past the top level).
    reminders: list[float] | None = None
    silent: bool = False  # a silent SOS: the reporter cannot speak or be seen reporting
    # Set only by continue-as-new: the compact state the next run starts from (the
    # report's texts are then dropped from the input; they live in the read model).
    resume: IncidentState | None = None
    # Set only when the report was accepted without the database (see IntakeRecord).
    intake: IntakeRecord | None = None


# --- updates (one model per human action) -------------------------------------------------
class ActionInput(Payload):
    actor: Actor
    # The case version the actor saw (HTTP If-Match): refused as Stale when the case has
    # moved on since, so two people acting on the same view cannot both win.
    expected_version: int | None = None
    # When the API took the request (api/cases.Cases.update sets it): the time of the
    # events the action records (IncidentWorkflow._when). Kept in history with the update,
    # so a replay gives the time that was written to SQL, which the task's own clock may
    # not (why: IncidentWorkflow._moment).
    at: datetime | None = None


class VerifyInput(ActionInput):
    pass


class RejectInput(ActionInput):
    reason: str = Field(min_length=1, max_length=2000)


class MergeInput(ActionInput):
    into_incident_id: str
    into_tracking_code: str | None = None


class ClassifyInput(ActionInput):
    category: Category
    priority: Priority


class RouteInput(ActionInput):
    unit: UnitRef


class AcknowledgeInput(ActionInput):
    pass


class ArriveInput(ActionInput):
    pass


class NoteInput(ActionInput):
    text: str = Field(min_length=1, max_length=5000)
    attachments: list[str] = Field(default_factory=list)
    public: bool = False


# Characters of one staff message to the reporter (it is read on a phone).
MAX_MESSAGE = 1000


class MessageInput(ActionInput):
    """A question or instruction to the reporter; changes no state and no version."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE)


class CloseInput(ActionInput):
    outcome: Outcome
    summary: str = Field(min_length=1, max_length=5000)


class ReassignInput(ActionInput):
    unit: UnitRef
    reason: str = Field(min_length=1, max_length=2000)


class PublishAlertInput(ActionInput):
    alert_id: str
    headline: str = Field(min_length=1, max_length=160)
    instruction: str = Field(min_length=1, max_length=2000)
    radius_m: int = Field(ge=50, le=50_000)


class CancelInput(ActionInput):
    reason: str | None = Field(default=None, max_length=2000)


class AddInfoInput(ActionInput):
    text: str | None = Field(default=None, max_length=5000)
    attachments: list[str] = Field(default_factory=list)
    # The seq of the staff message this answers (recorded as a "reply" event); it must be
    # one of the incident's messages (`IncidentState.messages`).
    reply_to: int | None = Field(default=None, ge=1)


# --- the live case -------------------------------------------------------------------------
class TimelineEvent(Payload):
    seq: int
    at: datetime
    actor: Actor
    action: str  # an Action value, or one of schema.states' *_EVENT kinds
    from_state: State | None = None
    to_state: State | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    public_note: str | None = None  # what the citizen's tracking page may show


class IncidentState(Payload):
    """What IncidentWorkflow keeps: only what its rules need, never the texts or the
    timeline (those live in the read model), so the state stays a few kilobytes however
    long the incident lives. It is the `case` query's answer and is carried through
    continue-as-new. Fields it does not know are ignored, so a reader older than the
    worker still reads a newer state."""

    model_config = ConfigDict(extra="ignore")

    id: str
    tracking_code: str
    state: State
    category: Category
    priority: Priority
    location: Location
    created_at: datetime
    updated_at: datetime
    source: str = "web"
    silent: bool = False
    ward: WardInfo | None = None
    proposed_unit: UnitRef | None = None
    unit: UnitRef | None = None
    deadline: datetime | None = None  # when the next escalation level or reminder is due
    escalation: Escalation = Field(default_factory=Escalation)
    outcome: Outcome | None = None
    duplicates: list[DuplicateSuggestion] = Field(default_factory=list)
    merged_into: str | None = None
    merged_incidents: list[str] = Field(default_factory=list)
    primary_state: State | None = None  # for a merged incident, the primary's state
    acknowledged_at: datetime | None = None
    on_scene_at: datetime | None = None
    closed_at: datetime | None = None
    sla_scale: float = 1.0
    sla: dict[int, dict[str, float]] | None = None
    reminders: list[float] | None = None
    seq: int = 0  # the last event's sequence number
    version: int = 0  # +1 on every change of state or assignment: the ETag staff send back
    last_change: ChangeNote | None = None  # who made the newest version, for a 412's message
    run: int = 1  # 1 + the number of continue-as-new hand-overs
    # Merge bookkeeping: children told of this incident's state (child id → last state
    # told), incoming merges held while the child commits, and this incident's own
    # merge in progress.
    told: dict[str, State | None] = Field(default_factory=dict)
    held: dict[str, datetime] = Field(default_factory=dict)
    merging_into: str | None = None
    primary_at: datetime | None = None
    # Seqs of the staff messages to the reporter (the newest MESSAGES_KEPT), which a
    # citizen's answer may reply to.
    messages: list[int] = Field(default_factory=list)


MESSAGES_KEPT = 200


class ChangeNote(Payload):
    """Who made a version, and how: named in a stale If-Match's 412."""

    version: int
    action: str
    by: str
    at: datetime
    unit_name: str | None = None


class ActionResult(Payload):
    """What an update returns: small, so that history does not grow with the case. The
    HTTP layer answers with the case read afresh."""

    incident_id: str
    state: State
    version: int
    seq: int


IncidentInput.model_rebuild()
IncidentState.model_rebuild()
