"""The SQL tables: the read model and the tables the API owns, one module per concern.

- `staff`: wards, units, users, sessions, login attempts.
- `intake`: reports, the intake outbox, attachments, additions, action receipts, spam
  control (owned by the API).
- `read_model`: incidents, events, alerts, public alerts, notifications, the staff feed,
  projection failures (written only by activities).
- `reporter`: Web Push subscriptions and their outbox, shared locations.
- `columns`: the shared column types (`UTCDateTime`) and defaults.

Incident rows and events are written only by activities (activities/projection.py),
idempotently by (incident id, event seq). Alembic (migrations/) owns the DDL; these
classes describe it for queries. Importing this package registers every table on
`SQLModel.metadata` (migrations/env.py relies on it), and every table is importable
from here (`from schema.tables import Incident`).
"""

from __future__ import annotations

from schema.tables.columns import UTCDateTime, utcnow
from schema.tables.intake import (
    ActionReceipt,
    Attachment,
    CitizenAddition,
    FloodGroup,
    Outbox,
    Report,
    ReportFlag,
    ReportSource,
)
from schema.tables.read_model import (
    Alert,
    Incident,
    IncidentEvent,
    Notification,
    ProjectionFailure,
    PublicAlert,
    StaffEvent,
)
from schema.tables.reporter import (
    PushOutbox,
    PushSubscription,
    ReporterLocation,
)
from schema.tables.staff import (
    LoginAttempt,
    RevokedSession,
    Unit,
    UnitBase,
    User,
    UserBase,
    Ward,
)

__all__ = [
    "ActionReceipt",
    "Alert",
    "Attachment",
    "CitizenAddition",
    "FloodGroup",
    "Incident",
    "IncidentEvent",
    "LoginAttempt",
    "Notification",
    "Outbox",
    "ProjectionFailure",
    "PublicAlert",
    "PushOutbox",
    "PushSubscription",
    "Report",
    "ReportFlag",
    "ReportSource",
    "ReporterLocation",
    "RevokedSession",
    "StaffEvent",
    "UTCDateTime",
    "Unit",
    "UnitBase",
    "User",
    "UserBase",
    "Ward",
    "utcnow",
]
