"""The tables of intake, owned by the API: reports as accepted, the outbox that starts
their workflows, attachments, citizens' additions, staff actions' receipts, and the
sources, flood groups and flags of spam control (schema/abuse.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from schema.tables.columns import BIGINT_PK, new_id, utc_field, utcnow


class Report(SQLModel, table=True):
    """A citizen's report as accepted, before and after it reaches a workflow. The
    report id is the incident id."""

    __tablename__ = "reports"
    id: str = Field(primary_key=True)
    tracking_code: str = Field(unique=True, index=True)
    tracking_token: str = Field(unique=True, index=True)
    payload: dict = Field(sa_column=Column(JSON, nullable=False))  # the IncidentInput
    source: str = "web"
    created_at: datetime = utc_field(default_factory=utcnow)
    # sha256 of the canonical request (api/idempotency.py): a resubmission with the same
    # report id gets the first answer only when its print is the same.
    fingerprint: str | None = Field(default=None, max_length=64)


class CitizenAddition(SQLModel, table=True):
    """One accepted `POST /track/{token}/info` (api/limits.py counts them per report, in
    SQL, so that every API process sees the same figures)."""

    __tablename__ = "citizen_additions"
    id: int | None = Field(
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    report_id: str = Field(index=True)
    at: datetime = utc_field(default_factory=utcnow)
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
    created_at: datetime = utc_field(default_factory=utcnow)


class ReportSource(SQLModel, table=True):
    """Where an accepted report came from, one row per source kind it has (device, phone,
    address: schema/abuse.py). api/abuse.py counts them per (kind, key) over a window, in
    SQL, so every API process sees the same figures. Rows older than the longest window
    are purged."""

    __tablename__ = "report_sources"
    __table_args__ = (Index("ix_report_sources_key_at", "kind", "key", "at"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    report_id: str = Field(index=True)
    kind: str  # device, phone, address
    key: str  # the device id, the E.164 phone, the address (IPv6: its /64)
    at: datetime = utc_field(default_factory=utcnow, index=True)


class FloodGroup(SQLModel, table=True):
    """Reports that came in a burst from one source (schema/abuse.py). `resolved` is set
    when the group is rejected or declared not spam; a resolved group is no longer shown as
    a group (its reports are shown one by one if any is still open)."""

    __tablename__ = "flood_groups"
    id: str = Field(default_factory=new_id, primary_key=True)
    kind: str
    key: str = Field(index=True)
    first_at: datetime = utc_field()
    last_at: datetime = utc_field()
    size: int = 0
    resolved: str | None = None  # rejected | not_spam
    resolved_by: str | None = None
    resolved_at: datetime | None = utc_field(default=None, nullable=True)


class ReportFlag(SQLModel, table=True):
    """A report marked for the operator: past a per-source limit (`reasons`, a list of
    schema.abuse.SpamReason) and/or in a flood group. Written by the API at intake (it is
    not incident state: the workflow treats the report like any other)."""

    __tablename__ = "report_flags"
    report_id: str = Field(primary_key=True)
    suspected_spam: bool = False
    reasons: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    flood_group: str | None = Field(default=None, index=True)
    flagged_at: datetime = utc_field(default_factory=utcnow)
    cleared_by: str | None = None  # who said "not spam"
    cleared_at: datetime | None = utc_field(default=None, nullable=True)


class Outbox(SQLModel, table=True):
    """One row per report whose workflow must be started. The relay retries until
    `started_at` is set."""

    __tablename__ = "intake_outbox"
    report_id: str = Field(primary_key=True, foreign_key="reports.id")
    created_at: datetime = utc_field(default_factory=utcnow)
    started_at: datetime | None = utc_field(default=None, nullable=True, index=True)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = utc_field(default=None, nullable=True)


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
    created_at: datetime = utc_field(default_factory=utcnow)
