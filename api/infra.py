"""What every service needs from the process: settings, the database, file storage, the
Temporal client holder, the outbox marks of the intake relay (core/outbox.py), and the
workflow gateway and starter built on them.

The API process makes one with `Infra.open` in its lifespan (api.main) and keeps it on
the app, read back through `infra_of`; routes get it, or a part of it, through api.deps.
Services take it (or the single part they use) as a typed argument: nothing else is kept
on the app's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from starlette.applications import Starlette

from api.cases import Cases
from core.db import Database
from core.outbox import OutboxMarks, WorkflowStarter
from core.settings import Settings
from core.storage import Storage, make_storage
from core.temporal import TemporalHolder


@dataclass(frozen=True)
class Infra:
    """The process's connections, made once and kept for the process's life. None is
    replaced: tests point Temporal at another server with `temporal.point_at(address)`,
    which the gateway and the relay see, as they hold the same holder."""

    settings: Settings
    db: Database
    storage: Storage
    temporal: TemporalHolder
    marks: OutboxMarks = field(default_factory=OutboxMarks)

    @classmethod
    def open(cls, settings: Settings) -> Infra:
        """A new one from `settings` (nothing connects yet); `await infra.close()` after
        use."""
        return cls(settings=settings, db=Database.from_settings(settings),
                   storage=make_storage(settings), temporal=TemporalHolder(settings))

    @cached_property
    def cases(self) -> Cases:
        """The workflow gateway over this infra's Temporal holder (one for the process:
        what it remembers is kept)."""
        return Cases(self.temporal)

    @cached_property
    def starter(self) -> WorkflowStarter:
        """Starts incident workflows (the outbox relay) with this infra."""
        return WorkflowStarter(self.settings, self.db, self.temporal, self.marks)

    async def close(self) -> None:
        await self.db.dispose()


def infra_of(app: Starlette) -> Infra:
    """The Infra that api.main's lifespan keeps on `app` (`app.state.infra`)."""
    infra = getattr(app.state, "infra", None)
    if not isinstance(infra, Infra):
        raise RuntimeError("the app has no Infra: its lifespan (api.main) has not run")
    return infra
