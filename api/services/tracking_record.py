"""What a report's reporter may read, loaded from the read model in one place for both the
tracking JSON (`GET /api/v1/track/{token}`, api/services/tracking.py) and the tracking page
(web/tracking_story.py):

- the report's own events (`incident_events` of the report's incident);
- for a report merged into another incident (the primary), the primary's public progress
  in full, from before the merge as well as after: the events of `PRIMARY_PUBLIC` (state
  changes by staff, public notes, the closing). Never the primary reporter's thread or
  additions, nor anything naming a staff member (the readers word events by kind, unit
  and public note only);
- the closing: the officer's outcome and public summary, from the report's own `close`
  event or else the primary's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from core.db import Database
from schema.labels import OUTCOME_LABELS
from schema.reports import TrackingOutcome
from schema.states import CITIZEN_VISIBLE_EVENTS, STAFF_MESSAGE_EVENTS, Action, Outcome, State
from schema.tables import Incident, IncidentEvent, Report

# Events of the primary incident a merged reporter may read: what its own reporter sees,
# minus the messages to that reporter and the primary's own merges.
PRIMARY_PUBLIC: frozenset[str] = CITIZEN_VISIBLE_EVENTS - STAFF_MESSAGE_EVENTS - {
    Action.MERGE.value}


@dataclass
class Closing:
    """How the case ended for the reporter: the outcome (None when the event has none)
    and the officer's public summary (None when empty)."""

    outcome: Outcome | None
    summary: str | None

    def outcome_out(self) -> TrackingOutcome | None:
        """The outcome with its words in both languages (schema.labels)."""
        if self.outcome is None:
            return None
        vi, en = OUTCOME_LABELS[self.outcome]
        return TrackingOutcome(code=self.outcome, label_vi=vi, label_en=en)

    def outcome_label(self, lang: str) -> str | None:
        out = self.outcome_out()
        if out is None:
            return None
        return out.label_en if lang == "en" else out.label_vi


@dataclass
class ReporterRecord:
    """A report with its incident row (None before the projection), its events oldest
    first, and for a merged report the primary's row and its PRIMARY_PUBLIC events."""

    report: Report
    row: Incident | None
    events: list[IncidentEvent]
    primary: Incident | None = None
    primary_events: list[IncidentEvent] = field(default_factory=list)

    @property
    def merged_at(self) -> datetime | None:
        """When this report was merged into the primary (None: not merged)."""
        return next((ev.at for ev in self.events if ev.action == Action.MERGE.value), None)

    @property
    def primary_state(self) -> State | None:
        return State(self.primary.state) if self.primary is not None else None


async def _events(s: AsyncSession, incident_id: str) -> list[IncidentEvent]:
    return list((await s.execute(
        select(IncidentEvent).where(col(IncidentEvent.incident_id) == incident_id)
        .order_by(col(IncidentEvent.seq)))).scalars())


async def load_record(db: Database, report: Report) -> ReporterRecord:
    """The record of `report` as its reporter may read it (see the module)."""
    async with db.session() as s:
        row = await s.get(Incident, report.id)
        events = await _events(s, report.id)
        record = ReporterRecord(report=report, row=row, events=events)
        if row is not None and row.state == State.MERGED.value and row.merged_into:
            record.primary = await s.get(Incident, row.merged_into)
            record.primary_events = [ev for ev in await _events(s, row.merged_into)
                                     if ev.action in PRIMARY_PUBLIC]
    return record


def closing_of(close: IncidentEvent) -> Closing:
    """The outcome and summary a `close` event records."""
    data = close.data or {}
    try:
        outcome = Outcome(data["outcome"]) if data.get("outcome") else None
    except ValueError:
        outcome = None
    return Closing(outcome=outcome, summary=str(data.get("summary") or "").strip() or None)


def closing(record: ReporterRecord) -> Closing | None:
    """The closing the reporter reads: the report's own `close` event, else (merged) the
    primary's; None while neither is closed."""
    for events in (record.events, record.primary_events):
        close = next((ev for ev in events if ev.action == Action.CLOSE.value), None)
        if close is not None:
            return closing_of(close)
    return None
