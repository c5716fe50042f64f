"""v1's patch `local-projection`: v1 incidents write SQL through local activities (one
workflow task per update), a worker built with local_writes=False keeps regular activities;
both keep the events in seq order. v2 always writes locally, and a failing local write is
retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import names
from activities.projection import ProjectionActivities
from core.db import Database
from core.settings import Settings
from schema.payloads import CancelInput, NoteInput, ProjectEvent, VerifyInput
from schema.states import State
from tests.workflows.factories import (
    citizen,
    operator,
    start_incident,
    stored_events,
    worker_with_projection,
)
from worker import build_worker
from workflows.incident import IncidentWorkflow as W
from workflows.incident_v1 import IncidentWorkflowV1 as W1


async def write_kinds(handle: WorkflowHandle) -> tuple[list[str], list[str], int]:
    """(activity types scheduled, marker names, workflow tasks completed) of a history."""
    history = await handle.fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    tasks = sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                for e in history.events)
    return scheduled, markers, tasks


@pytest.mark.parametrize("local", [True, False], ids=["local", "regular"])
async def test_write_path_follows_the_patch(temporal_env: WorkflowEnvironment, pg_db: Database,
                                            make_settings: Callable[..., Settings],
                                            task_queue: str, local: bool) -> None:
    client = temporal_env.client
    async with build_worker(client, make_settings(), pg_db, task_queue, local_writes=local):
        handle = await start_incident(client, task_queue, workflow=W1)
        await handle.execute_update(W1.verify, VerifyInput(actor=operator()))
        await handle.execute_update(W1.note, NoteInput(actor=operator(), text="Đã gọi lại"))
        case = await handle.execute_update(W1.cancel, CancelInput(actor=citizen(), reason="Ổn"))
        # Every update returns once its events are in SQL, in seq order.
        rows = await stored_events(pg_db, case.id)
        assert [(r.seq, r.action) for r in rows] == [(e.seq, e.action) for e in case.timeline]
        final = await handle.result()
    assert final.state is State.CANCELLED
    scheduled, markers, tasks = await write_kinds(handle)
    if local:
        assert names.PROJECT_EVENT not in scheduled
        assert markers.count("core_patch") == 1
        assert markers.count("core_local_activity") == len(final.timeline)
    else:
        assert scheduled.count(names.PROJECT_EVENT) == len(final.timeline)
        assert markers == []
    assert sorted(scheduled) == sorted(
        [names.LOCATE_WARD, names.FIND_DUPLICATES]
        + ([] if local else [names.PROJECT_EVENT] * len(final.timeline)))
    if local:
        # Start + intake, then one task per update (3), possibly one more for completion.
        assert tasks <= 6


class FlakyProjection(ProjectionActivities):
    """Fails the first two attempts of every event, as a database blip would."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.attempts: list[tuple[int, int]] = []

    @activity.defn(name=names.PROJECT)
    async def project(self, inp: ProjectEvent) -> None:
        attempt = activity.info().attempt
        self.attempts.append((inp.event.seq, attempt))
        assert activity.info().is_local
        if attempt <= 2:
            raise RuntimeError("database blip")
        await super().project(inp)


async def test_local_write_is_retried(temporal_env: WorkflowEnvironment, pg_db: Database,
                                      make_settings: Callable[..., Settings],
                                      task_queue: str) -> None:
    client = temporal_env.client
    flaky = FlakyProjection(pg_db)
    async with worker_with_projection(client, make_settings(), pg_db, task_queue, flaky):
        handle = await start_incident(client, task_queue)
        result = await handle.execute_update(W.verify, VerifyInput(actor=operator()))
        # The update returns once its own event (and every earlier one) is in SQL; a later
        # event (the ward look-up finishing) may be recorded but not yet written.
        rows = await stored_events(pg_db, result.incident_id)
        assert [r.seq for r in rows][:result.seq] == list(range(1, result.seq + 1))
        assert rows[result.seq - 1].action == "verify"
    # Each event: two failures (retried on durable timers), then a write; never the next
    # event before the last landed.
    seqs = [seq for seq, _ in flaky.attempts]
    assert seqs == sorted(seqs)
    for seq in range(1, result.seq + 1):  # written (rows above) after two failures
        # (a busy machine may evict the workflow and replay a retry: count from 1, 2)
        assert [a for s, a in flaky.attempts if s == seq][:2] == [1, 2], flaky.attempts
