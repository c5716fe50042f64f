"""The SQL read model and the tables the API owns (intake, attachments, users).

Incident rows and events are written only by activities (activities/projection.py),
idempotently by (incident id, event seq). Alembic (migrations/) owns the DDL; these
classes describe it for queries.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a bigint.
_BIGINT_PK = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on both databases (SQLite keeps no zone: we store UTC and put
    the zone back on the way out)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _tz(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime(timezone=True), **kw)


def new_id() -> str:
    return str(uuid.uuid4())


# --- geography and organisation --------------------------------------------------------
class Ward(SQLModel, table=True):
    __tablename__ = "wards"
    code: int = Field(primary_key=True)  # official code (vietnam-provinces)
    name: str
    codename: str = Field(index=True)
    short_codename: str = Field(index=True)  # e.g. ben_thanh, for demo officer accounts
    division_type: str = ""
    lat: float | None = None  # a point inside the ward, for maps
    lon: float | None = None
    geometry: str | None = Field(default=None, sa_column=Column(Text))  # GeoJSON


class UnitBase(SQLModel):
    code: str = Field(index=True, unique=True)  # e.g. cand-ben_thanh, pccc-city
    name: str
    kind: str  # ward_police, rapid_response, fire_rescue, traffic_police, criminal_police, command
    ward_code: int | None = Field(default=None, foreign_key="wards.code", index=True)
    lat: float | None = None  # station location
    lon: float | None = None
    phone: str | None = None
    active: bool = True


class Unit(UnitBase, table=True):
    __tablename__ = "units"
    id: str = Field(default_factory=new_id, primary_key=True)


class UserBase(SQLModel):
    username: str = Field(index=True, unique=True)
    full_name: str = ""
    role: str  # operator, officer, supervisor, admin
    unit_id: str | None = Field(default=None, foreign_key="units.id", index=True)
    active: bool = True
    locale: str = "vi"


class User(UserBase, table=True):
    __tablename__ = "users"
    id: str = Field(default_factory=new_id, primary_key=True)
    password_hash: str
    created_at: datetime = _tz(default_factory=utcnow)
    # Part of every token and session cookie; raising it ends them all (password change,
    # "sign out everywhere").
    token_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class RevokedSession(SQLModel, table=True):
    """A token or session cookie signed out before it expires (by its `sid`). Rows past
    `expires_at` are useless (the signature has expired) and are purged."""

    __tablename__ = "revoked_sessions"
    sid: str = Field(primary_key=True)
    user_id: str = Field(index=True)
    revoked_at: datetime = _tz(default_factory=utcnow)
    expires_at: datetime = _tz(index=True)


class LoginAttempt(SQLModel, table=True):
    """Failed logins, for throttling by username and by address."""

    __tablename__ = "login_attempts"
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    username: str = Field(index=True)
    address: str = Field(default="", index=True)
    at: datetime = _tz(default_factory=utcnow, index=True)


# --- intake (owned by the API) -----------------------------------------------------------
class Report(SQLModel, table=True):
    """A citizen's report as accepted, before and after it reaches a workflow. The
    report id is the incident id."""

    __tablename__ = "reports"
    id: str = Field(primary_key=True)
    tracking_code: str = Field(unique=True, index=True)
    tracking_token: str = Field(unique=True, index=True)
    payload: dict = Field(sa_column=Column(JSON, nullable=False))  # the IncidentInput
    source: str = "web"
    created_at: datetime = _tz(default_factory=utcnow)
    # sha256 of the canonical request (api/idempotency.py): a resubmission with the same
    # report id gets the first answer only when its print is the same.
    fingerprint: str | None = Field(default=None, max_length=64)


class CitizenAddition(SQLModel, table=True):
    """One accepted `POST /track/{token}/info` (api/limits.py counts them per report, in
    SQL, so that every API process sees the same figures)."""

    __tablename__ = "citizen_additions"
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    report_id: str = Field(index=True)
    at: datetime = _tz(default_factory=utcnow)
    chars: int = 0  # characters of text it added


class ActionReceipt(SQLModel, table=True):
    """The first answer to a staff action sent with an Idempotency-Key
    (api/services/actions.py), kept once its outcome is known (done, or refused by the
    workflow), so that the same key again gets it back, also after the incident ended
    (Temporal's update-id dedupe ends with the workflow run). `fingerprint` is the
    request's (api/idempotency.py): the same key with another request is a 409."""

    __tablename__ = "action_receipts"
    incident_id: str = Field(primary_key=True)
    action: str = Field(primary_key=True)
    idem_key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    status: int
    # 200: the incident as the answer showed it; else {error, vi, en, extra, fields}.
    body: dict = Field(sa_column=Column(JSON, nullable=False))
    etag: str | None = None
    created_at: datetime = _tz(default_factory=utcnow)
class ReportSource(SQLModel, table=True):
    """Where an accepted report came from, one row per source kind it has (device, phone,
    address: schema/abuse.py). api/abuse.py counts them per (kind, key) over a window, in
    SQL, so every API process sees the same figures. Rows older than the longest window
    are purged."""

    __tablename__ = "report_sources"
    __table_args__ = (Index("ix_report_sources_key_at", "kind", "key", "at"),)
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    report_id: str = Field(index=True)
    kind: str  # device, phone, address
    key: str  # the device id, the E.164 phone, the address (IPv6: its /64)
    at: datetime = _tz(default_factory=utcnow, index=True)


class FloodGroup(SQLModel, table=True):
    """Reports that came in a burst from one source (schema/abuse.py). `resolved` is set
    when the group is rejected or declared not spam; a resolved group is no longer shown as
    a group (its reports are shown one by one if any is still open)."""

    __tablename__ = "flood_groups"
    id: str = Field(default_factory=new_id, primary_key=True)
    kind: str
    key: str = Field(index=True)
    first_at: datetime = _tz()
    last_at: datetime = _tz()
    size: int = 0
    resolved: str | None = None  # rejected | not_spam
    resolved_by: str | None = None
    resolved_at: datetime | None = _tz(default=None, nullable=True)


class ReportFlag(SQLModel, table=True):
    """A report marked for the operator: past a per-source limit (`reasons`, a list of
    schema.abuse.SpamReason) and/or in a flood group. Written by the API at intake (it is
    not incident state: the workflow treats the report like any other)."""

    __tablename__ = "report_flags"
    report_id: str = Field(primary_key=True)
    suspected_spam: bool = False
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    flood_group: str | None = Field(default=None, index=True)
    flagged_at: datetime = _tz(default_factory=utcnow)
    cleared_by: str | None = None  # who said "not spam"
    cleared_at: datetime | None = _tz(default=None, nullable=True)


class Outbox(SQLModel, table=True):
    """One row per report whose workflow must be started. The relay retries until
    `started_at` is set."""

    __tablename__ = "intake_outbox"
    report_id: str = Field(primary_key=True, foreign_key="reports.id")
    created_at: datetime = _tz(default_factory=utcnow)
    started_at: datetime | None = _tz(default=None, nullable=True, index=True)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = _tz(default=None, nullable=True)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"
    id: str = Field(default_factory=new_id, primary_key=True)
    content_type: str
    size: int
    sha256: str = Field(index=True)
    storage_key: str
    original_name: str | None = None
    incident_id: str | None = Field(default=None, index=True)
    uploaded_by: str | None = None  # username, or None for a citizen
    created_at: datetime = _tz(default_factory=utcnow)


# --- the read model (written only by activities) -------------------------------------------
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
    overdue_since: datetime | None = _tz(default=None, nullable=True)
    deadline: datetime | None = _tz(default=None, nullable=True)
    created_at: datetime = _tz()
    updated_at: datetime = _tz()
    verified_at: datetime | None = _tz(default=None, nullable=True)
    routed_at: datetime | None = _tz(default=None, nullable=True)
    acknowledged_at: datetime | None = _tz(default=None, nullable=True)
    on_scene_at: datetime | None = _tz(default=None, nullable=True)
    closed_at: datetime | None = _tz(default=None, nullable=True)
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
    at: datetime = _tz()
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
    overdue_since: datetime = _tz()
    created_at: datetime = _tz(default_factory=utcnow)
    resolved_at: datetime | None = _tz(default=None, nullable=True)
    acknowledged_by: str | None = None
    seq: int | None = None  # the escalate event that raised it: withdrawn with it
    reminders: int = 0  # reminders sent past the top level
    last_reminded_at: datetime | None = _tz(default=None, nullable=True)


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
    sent_at: datetime = _tz()
    sender: str


class StaffEvent(SQLModel, table=True):
    """A feed the staff Server-Sent Events stream polls, so it works with any number of
    API processes: new incident, state change, escalation."""

    __tablename__ = "staff_events"
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    at: datetime = _tz(default_factory=utcnow, index=True)
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
    created_at: datetime = _tz(default_factory=utcnow)


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
    created_at: datetime = _tz(default_factory=utcnow)
    resolved_at: datetime | None = _tz(default=None, nullable=True)


# --- the reporter's Web Push subscriptions and live location -----------------------------
class PushSubscription(SQLModel, table=True):
    """A browser's Push API subscription for one report's news (api/services/push.py
    writes it, authorised by the tracking token; activities/push.py sends to it and
    deletes it when the push service answers 404/410 or once it has expired)."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (UniqueConstraint("incident_id", "endpoint",
                                       name="uq_push_subscriptions_incident_endpoint"),)
    id: str = Field(default_factory=new_id, primary_key=True)
    incident_id: str = Field(index=True)  # the report id
    endpoint: str = Field(sa_column=Column(Text, nullable=False))
    p256dh: str  # base64url, the browser's ECDH public key
    auth: str  # base64url, its 16-byte secret
    silent: bool = False  # a silent SOS: its notifications make no sound
    created_at: datetime = _tz(default_factory=utcnow)
    last_sent_at: datetime | None = _tz(default=None, nullable=True)
    # The browser's `expirationTime` (None: none given): nothing is sent after it, and the
    # worker deletes the subscription then.
    expires_at: datetime | None = _tz(default=None, nullable=True)


class PushOutbox(SQLModel, table=True):
    """One notification to send to one subscription, queued by the projection in the
    transaction that writes the event (so none is lost and none is sent twice for one
    event); the worker's push loop sends it and deletes the row. `next_attempt_at` None:
    given up (kept with its last error)."""

    __tablename__ = "push_outbox"
    __table_args__ = (UniqueConstraint("subscription_id", "seq",
                                       name="uq_push_outbox_subscription_seq"),)
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    subscription_id: str = Field(index=True)
    incident_id: str
    seq: int
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    urgent: bool = False
    created_at: datetime = _tz(default_factory=utcnow)
    next_attempt_at: datetime | None = _tz(default_factory=utcnow, nullable=True, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class ReporterLocation(SQLModel, table=True):
    """A position the reporter shared from the tracking page (`POST
    /api/v1/track/{token}/location`); the latest CANHBAO_LOCATION_TRAIL per incident are
    kept. Read model only: never in the workflow's history."""

    __tablename__ = "reporter_locations"
    __table_args__ = (Index("ix_reporter_locations_incident_received", "incident_id",
                            "received_at"),)
    id: int | None = Field(
        default=None, sa_column=Column(_BIGINT_PK, primary_key=True, autoincrement=True)
    )
    incident_id: str
    lat: float
    lon: float
    accuracy_m: float
    at: datetime = _tz()  # when the phone measured it
    received_at: datetime = _tz(default_factory=utcnow)
