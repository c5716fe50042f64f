"""The read model: incidents, their events, alerts, public alerts, notifications and the
staff event feed. Written only by activities (activities/projection.py,
activities/notify.py), idempotently by (incident id, event seq); a write that cannot be
made is kept in `projection_failures`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from schema.tables.columns import BIGINT_PK, new_id, utc_field, utcnow


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_created", "created_at", "id"),
        Index("ix_incidents_state_created", "state", "created_at", "id"),
        Index("ix_incidents_ward_created", "ward_code", "created_at", "id"),
        Index("ix_incidents_unit_created", "unit_id", "created_at", "id"),
        Index("ix_incidents_category_created", "category", "created_at", "id"),
        Index("ix_incidents_open_deadline", "is_open", "deadline"),
    )
    id: str = Field(primary_key=True)
    tracking_code: str = Field(unique=True)
    state: str
    is_open: bool = True
    category: str
    priority: int
    description: str = Field(sa_column=Column(Text, nullable=False))
    # schema.search.search_document(description, address): folded for Vietnamese search.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False,
                                                          server_default=""))
    lat: float
    lon: float
    accuracy_m: float | None = None
    address: str | None = None
    ward_code: int | None = None
    ward_name: str | None = None
    ward_exact: bool = True
    outside_city: bool = False
    unit_id: str | None = None
    unit_name: str | None = None
    proposed_unit_id: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    source: str = "web"
    outcome: str | None = None
    merged_into: str | None = Field(default=None, index=True)
    duplicate_count: int = 0
    escalation_level: int = 0
    overdue_since: datetime | None = utc_field(default=None, nullable=True)
    deadline: datetime | None = utc_field(default=None, nullable=True)
    created_at: datetime = utc_field()
    updated_at: datetime = utc_field()
    verified_at: datetime | None = utc_field(default=None, nullable=True)
    routed_at: datetime | None = utc_field(default=None, nullable=True)
    acknowledged_at: datetime | None = utc_field(default=None, nullable=True)
    on_scene_at: datetime | None = utc_field(default=None, nullable=True)
    closed_at: datetime | None = utc_field(default=None, nullable=True)
    last_seq: int = 0
    version: int = 0  # the workflow's case version: the ETag staff send back in If-Match
    silent: bool = False  # a silent SOS


class IncidentEvent(SQLModel, table=True):
    """One row per event of the workflow's history, keyed by (incident_id, seq). A write
    for a (incident_id, seq) that differs replaces the earlier one: the committed history
    wins over a write made in a workflow task that never completed."""

    __tablename__ = "incident_events"
    incident_id: str = Field(primary_key=True)
    seq: int = Field(primary_key=True)
    at: datetime = utc_field()
    actor: str  # username
    actor_role: str
    actor_unit_id: str | None = None
    action: str
    from_state: str | None = None
    to_state: str | None = None
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    public_note: str | None = Field(default=None, sa_column=Column(Text))


class Alert(SQLModel, table=True):
    """An escalation: the incident stayed too long in `state`. Resolved when it leaves."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("incident_id", "state", "level", "overdue_since",
                         name="uq_alert_once"),
        Index("ix_alerts_open", "resolved_at", "created_at"),
        Index("ix_alerts_incident_seq", "incident_id", "seq"),
    )
    id: str = Field(default_factory=new_id, primary_key=True)
    incident_id: str = Field(index=True)
    tracking_code: str
    level: int
    state: str
    priority: int
    category: str
    ward_code: int | None = None
    unit_id: str | None = None
    overdue_since: datetime = utc_field()
    created_at: datetime = utc_field(default_factory=utcnow)
    resolved_at: datetime | None = utc_field(default=None, nullable=True)
    acknowledged_by: str | None = None
    seq: int | None = None  # the escalate event that raised it: withdrawn with it
    reminders: int = 0  # reminders sent past the top level
    last_reminded_at: datetime | None = utc_field(default=None, nullable=True)


class PublicAlert(SQLModel, table=True):
    """A warning to the public (CAP 1.2), published by a supervisor for an incident."""

    __tablename__ = "public_alerts"
    id: str = Field(primary_key=True)
    incident_id: str = Field(index=True)
    headline: str
    instruction: str = Field(sa_column=Column(Text, nullable=False))
    category: str
    priority: int
    lat: float
    lon: float
    radius_m: int
    sent_at: datetime = utc_field()
    sender: str


class StaffEvent(SQLModel, table=True):
    """A feed the staff Server-Sent Events stream polls, so it works with any number of
    API processes: new incident, state change, escalation."""

    __tablename__ = "staff_events"
    id: int | None = Field(
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    at: datetime = utc_field(default_factory=utcnow, index=True)
    kind: str  # incident.new, incident.changed, alert.raised, alert.resolved
    incident_id: str | None = None
    unit_id: str | None = None
    ward_code: int | None = None
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str | None = Field(default=None, unique=True)


class Notification(SQLModel, table=True):
    """A message to a person or a group (supervisors, city command), kept as sent."""

    __tablename__ = "notifications"
    id: str = Field(default_factory=new_id, primary_key=True)
    dedupe_key: str = Field(unique=True)
    audience: str  # supervisors, city_command, unit:<id>
    incident_id: str | None = Field(default=None, index=True)
    subject: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = utc_field(default_factory=utcnow)


class ProjectionFailure(SQLModel, table=True):
    """A read-model write that retrying cannot fix (the database refused the data itself).
    The event is then written without its texts so the incident stays visible; this row
    keeps what was refused and why, for an administrator (dead-letter)."""

    __tablename__ = "projection_failures"
    id: str = Field(default_factory=new_id, primary_key=True)
    incident_id: str = Field(index=True)
    seq: int
    action: str
    error: str = Field(sa_column=Column(Text, nullable=False))
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_field(default_factory=utcnow)
    resolved_at: datetime | None = utc_field(default=None, nullable=True)
