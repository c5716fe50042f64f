"""What a reporter's phone gives after the report: its Web Push subscriptions, the
notifications queued for them, and the positions it shares from the tracking page.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from schema.tables.columns import BIGINT_PK, new_id, utc_field, utcnow


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
    created_at: datetime = utc_field(default_factory=utcnow)
    last_sent_at: datetime | None = utc_field(default=None, nullable=True)
    # The browser's `expirationTime` (None: none given): nothing is sent after it, and the
    # worker deletes the subscription then.
    expires_at: datetime | None = utc_field(default=None, nullable=True)


class PushOutbox(SQLModel, table=True):
    """One notification to send to one subscription, queued by the projection in the
    transaction that writes the event (so none is lost and none is sent twice for one
    event); the worker's push loop sends it and deletes the row. `next_attempt_at` None:
    given up (kept with its last error)."""

    __tablename__ = "push_outbox"
    __table_args__ = (UniqueConstraint("subscription_id", "seq",
                                       name="uq_push_outbox_subscription_seq"),)
    id: int | None = Field(
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    subscription_id: str = Field(index=True)
    incident_id: str
    seq: int
    title: str
    body: str = Field(sa_column=Column(Text, nullable=False))
    urgent: bool = False
    created_at: datetime = utc_field(default_factory=utcnow)
    next_attempt_at: datetime | None = utc_field(default_factory=utcnow, nullable=True, index=True)
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
        default=None, sa_column=Column(BIGINT_PK, primary_key=True, autoincrement=True)
    )
    incident_id: str
    lat: float
    lon: float
    accuracy_m: float
    at: datetime = utc_field()  # when the phone measured it
    received_at: datetime = utc_field(default_factory=utcnow)
