"""Compare an incident's read model with its Temporal history, event by event.

The history does not hold the timeline events themselves: the workflow computes each
`TimelineEvent` and hands it to the projection as the input of a local activity, and only
the activity's completion (a marker) is recorded. So the events are recovered the way
Temporal itself would: every run of the workflow (continue-as-new included) is replayed
from its history with the workflow code, and the input of each projection call is taken
down by an interceptor. Only calls the history completed count (one `core_local_activity`
marker each), so a write made in a workflow task that never completed is no event.

`compare_incidents` then checks, for each incident, every event of the history against
its `incident_events` row (each column `activities.projection.event_values` writes: time,
actor, action, states, data, public note), rows the history does not have, and the
incidents row's state, version and last seq against the last event's state.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from activities import names
from activities.projection import event_values
from core.db import Database
from schema.activity_args import ProjectEvent
from schema.ids import workflow_id
from schema.payloads import IncidentState, TimelineEvent
from schema.tables import Incident, IncidentEvent
from workflows.incident import IncidentWorkflow

# The columns of incident_events compared (incident_id and seq are the key).
EVENT_COLUMNS = ("at", "actor", "actor_role", "actor_unit_id", "action", "from_state",
                 "to_state", "data", "public_note")
ROW_COLUMNS = ("state", "version", "last_seq")


@dataclass(frozen=True)
class Difference:
    """One disagreement between SQL and history. `seq` is None for the incidents row;
    `field` is a column, or "missing" (in history, not in SQL), "extra" (in SQL, not in
    history), "replay" (the history does not replay with this code) or "no_workflow"."""

    incident_id: str
    seq: int | None
    field: str
    sql: Any
    history: Any

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "row"
        return f"{self.incident_id} {where} {self.field}: sql={self.sql!r} history={self.history!r}"


@dataclass
class HistoryTimeline:
    """What one incident's workflow recorded, over all its runs: its events by seq and
    the state that came with the last one."""

    incident_id: str
    events: dict[int, TimelineEvent]
    last_state: IncidentState | None
    runs: int
    starts: int  # runs that were started afresh, not continued as new (more than 1: twice)
    replay_failures: list[str]


# Inputs of projection calls seen while replaying, by run id (replays run one at a time
# per Replayer call, but several runs may interleave inside one call).
_captured: dict[str, list[tuple[TimelineEvent, IncidentState]]] = defaultdict(list)


class _CaptureOutbound(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> Any:
        if input.activity == names.PROJECT and input.args:
            arg = input.args[0]
            if isinstance(arg, ProjectEvent):
                _captured[workflow.info().run_id].append((arg.event, arg.state))
        return super().start_local_activity(input)


class _CaptureInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CaptureOutbound(outbound))


class _Capture(Interceptor):
    def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CaptureInbound


_replayer = Replayer(workflows=[IncidentWorkflow],
                     data_converter=pydantic_data_converter, interceptors=[_Capture()],
                     workflow_runner=UnsandboxedWorkflowRunner())


async def run_histories(client: Client, incident_id: str) -> list[WorkflowHistory]:
    """Every run's history of the incident's workflow id, oldest first."""
    wid = workflow_id(incident_id)
    runs = [ex async for ex in client.list_workflows(f'WorkflowId = "{wid}"')]
    runs.sort(key=lambda ex: ex.start_time)
    histories = []
    for ex in runs:
        histories.append(await client.get_workflow_handle(wid, run_id=ex.run_id)
                         .fetch_history())
    if not histories:
        # Visibility can lag behind a start that just happened: ask the execution itself.
        try:
            histories.append(await client.get_workflow_handle(wid).fetch_history())
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    return histories


def timeline_from_histories(incident_id: str, histories: Sequence[WorkflowHistory]
                            ) -> HistoryTimeline:
    """Replay each run (oldest first) and keep the events its history completed. Not
    reentrant (one capture): callers replay one incident at a time."""
    events: dict[int, TimelineEvent] = {}
    last_state: IncidentState | None = None
    failures: list[str] = []
    for history in histories:
        _captured.clear()
        result = _replay_one(history)
        if result is not None:
            failures.append(f"run {history.run_id}: {result}")
        calls = [c for run in _captured.values() for c in run]
        _captured.clear()
        for event, state in calls:
            events[event.seq] = event
            last_state = state
    starts = sum(1 for h in histories if h.events and not h.events[0]
                 .workflow_execution_started_event_attributes.continued_execution_run_id)
    return HistoryTimeline(incident_id, events, last_state, len(histories), starts,
                           failures)


def _replay_one(history: WorkflowHistory) -> Exception | None:
    """Replay one history synchronously on a private loop (replays are CPU work)."""
    result = asyncio.run(_replayer.replay_workflow(history, raise_on_replay_failure=False))
    return result.replay_failure


async def history_timeline(client: Client, incident_id: str) -> HistoryTimeline:
    """Replay every run of the incident's workflow and collect the events it recorded.
    Raises RPCError when Temporal cannot be reached. A run whose replay fails (code that
    no longer matches its history) is listed in `replay_failures`."""
    histories = await run_histories(client, incident_id)
    return await asyncio.to_thread(timeline_from_histories, incident_id, histories)


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value, default=str, sort_keys=True))
    return value


def diff_timeline(incident_id: str, history: HistoryTimeline,
                  rows: Sequence[IncidentEvent], incident: Incident | None) -> list[Difference]:
    """The differences between one incident's SQL rows and its history (pure)."""
    found: list[Difference] = [Difference(incident_id, None, "replay", None, f)
                               for f in history.replay_failures]
    if history.runs == 0:
        found.append(Difference(incident_id, None, "no_workflow", incident is not None, None))
        return found
    if not history.events:
        found.append(Difference(incident_id, None, "no_events", len(rows), 0))
    by_seq = {r.seq: r for r in rows}
    for seq, event in sorted(history.events.items()):
        row = by_seq.pop(seq, None)
        want = event_values(incident_id, event)
        if row is None:
            found.append(Difference(incident_id, seq, "missing", None, event.action))
            continue
        for column in EVENT_COLUMNS:
            got, expected = _norm(getattr(row, column)), _norm(want[column])
            if got != expected:
                found.append(Difference(incident_id, seq, column, got, expected))
    for seq, row in sorted(by_seq.items()):
        found.append(Difference(incident_id, seq, "extra", row.action, None))
    state = history.last_state
    if state is not None:
        if incident is None:
            found.append(Difference(incident_id, None, "missing", None, "incidents row"))
        else:
            last_seq = max(history.events)
            expected_row = {"state": state.state.value, "last_seq": last_seq,
                            "version": state.version}
            for column in ROW_COLUMNS:
                if getattr(incident, column) != expected_row[column]:
                    found.append(Difference(incident_id, None, column,
                                            getattr(incident, column), expected_row[column]))
    return found


async def sql_timeline(db: Database, incident_id: str
                       ) -> tuple[list[IncidentEvent], Incident | None]:
    """The incident's event rows (by seq) and its incidents row."""
    async with db.session() as session:
        rows = (await session.execute(select(IncidentEvent).where(
            col(IncidentEvent.incident_id) == incident_id).order_by(col(IncidentEvent.seq)))
        ).scalars().all()
        incident = await session.get(Incident, incident_id)
    return list(rows), incident


async def compare_incident(client: Client, db: Database, incident_id: str
                           ) -> tuple[HistoryTimeline, list[Difference]]:
    """One incident: its history timeline and the differences with SQL."""
    history = await history_timeline(client, incident_id)
    rows, incident = await sql_timeline(db, incident_id)
    return history, diff_timeline(incident_id, history, rows, incident)


async def compare_incidents(client: Client, db: Database, incident_ids: Iterable[str],
                            concurrency: int = 4
                            ) -> dict[str, tuple[HistoryTimeline, list[Difference]]]:
    """`compare_incident` for many incidents: histories and rows are fetched
    `concurrency` at a time; replays run one at a time in a thread."""
    ids = list(dict.fromkeys(incident_ids))
    sem = asyncio.Semaphore(concurrency)
    replaying = asyncio.Lock()
    out: dict[str, tuple[HistoryTimeline, list[Difference]]] = {}

    async def one(iid: str) -> None:
        async with sem:
            histories = await run_histories(client, iid)
            rows, incident = await sql_timeline(db, iid)
        async with replaying:
            history = await asyncio.to_thread(timeline_from_histories, iid, histories)
        out[iid] = (history, diff_timeline(iid, history, rows, incident))

    await asyncio.gather(*(one(i) for i in ids))
    return out
