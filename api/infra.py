"""What every service needs from the process: settings, the database, file storage and
the Temporal client holder, plus the outbox marks of the intake relay (core/outbox.py).

Routes get it through `api.deps.InfraDep`; the CLI builds one with `Infra.open`. Services
take it (or the single part they use) as a typed argument: there is no `app_state: Any`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.cases import Cases
from core.db import Database
from core.outbox import OutboxMarks, WorkflowStarter
from core.settings import Settings
from core.storage import Storage, make_storage
from core.temporal import TemporalHolder


@dataclass
class Infra:
    """The process's connections. `temporal` may be swapped on the app's state (tests point
    it at another server); `from_state` reads the current one on each request."""

    settings: Settings
    db: Database
    storage: Storage
    temporal: TemporalHolder
    marks: OutboxMarks = field(default_factory=OutboxMarks)

    @classmethod
    def from_state(cls, state: Any) -> Infra:
        """The infra held on a Starlette `app.state` (set up by api.main's lifespan)."""
        return cls(settings=state.settings, db=state.db, storage=state.storage,
                   temporal=state.temporal, marks=state.outbox_marks)

    @classmethod
    def open(cls, settings: Settings, connect_timeout_s: float = 3.0) -> Infra:
        """A fresh one outside the API process (CLI); `await infra.close()` after use."""
        return cls(settings=settings, db=Database.from_settings(settings),
                   storage=make_storage(settings),
                   temporal=TemporalHolder(settings, connect_timeout_s=connect_timeout_s))

    @property
    def starter(self) -> WorkflowStarter:
        """Starts incident workflows (the outbox relay) with this infra."""
        return WorkflowStarter(self.settings, self.db, self.temporal, self.marks)

    @property
    def cases(self) -> Cases:
        """The workflow gateway over this infra's Temporal holder."""
        return Cases(self.temporal)

    async def close(self) -> None:
        await self.db.dispose()
