"""Kill the worker in the middle of a lifecycle, start another, finish the case: the read
model ends with every event exactly once, equal to the history event by event.

(The same at random points over 100 lifecycles of real worker processes:
tests/fault/test_fault_report.py, the worker-killed row of the fault suite.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlmodel import select
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from activities import names
from activities.projection import ProjectionActivities
from bench.faults.compare import compare_incident
from core.db import Database
from core.settings import Settings
from schema.activity_args import ProjectEvent
from schema.payloads import (
    AcknowledgeInput,
    ArriveInput,
    ClassifyInput,
    CloseInput,
    NoteInput,
    RouteInput,
)
from schema.states import Category, Outcome, Priority, State
from schema.tables import Incident
from tests.workflows.factories import (
    eventually,
    officer,
    operator,
    start_incident,
    stored_events,
    unit_ref,
    worker_with_projection,
)
from workflows.incident import IncidentWorkflow as W


class StallAfterWrite(ProjectionActivities):
    """Writes the `arrive` event, then hangs as a dying worker would, before reporting."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.stalled = asyncio.Event()

    @activity.defn(name=names.PROJECT)
    async def project(self, inp: ProjectEvent) -> None:
        await super().project(inp)
        if inp.event.action == "arrive":
            self.stalled.set()
            await asyncio.Event().wait()  # never returns; cancelled at shutdown


class CountArrive(ProjectionActivities):
    """The second worker's projection: counts how often it writes the `arrive` event."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.arrive_writes = 0

    @activity.defn(name=names.PROJECT)
    async def project(self, inp: ProjectEvent) -> None:
        if inp.event.action == "arrive":
            self.arrive_writes += 1
        await super().project(inp)


async def test_worker_killed_mid_lifecycle(temporal_env: WorkflowEnvironment, pg_db: Database,
                                           make_settings: Callable[..., Settings],
                                           task_queue: str) -> None:
    client = temporal_env.client
    settings = make_settings()
    projection = StallAfterWrite(pg_db)
    worker = worker_with_projection(client, settings, pg_db, task_queue, projection)
    running = asyncio.create_task(worker.run())

    handle = await start_incident(client, task_queue)
    unit = unit_ref()
    await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.CRIME, priority=Priority.CRITICAL))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
    arriving = asyncio.create_task(
        handle.execute_update(W.arrive, ArriveInput(actor=officer(unit))))
    await asyncio.wait_for(projection.stalled.wait(), 15)
    case_id = (await handle.describe()).id.removeprefix("incident-")
    assert "arrive" in [e.action for e in await stored_events(pg_db, case_id)]

    # Kill the worker while the update waits on the stalled projection.
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert not arriving.done()

    recount = CountArrive(pg_db)
    async with worker_with_projection(client, settings, pg_db, task_queue, recount):
        result = await asyncio.wait_for(arriving, 60)
        assert result.state is State.ON_SCENE
        await handle.execute_update(W.note, NoteInput(actor=officer(unit), text="Đã khống chế"))
        await handle.execute_update(W.close, CloseInput(
            actor=officer(unit), outcome=Outcome.RESOLVED, summary="Đã xử lý"))
        final = await handle.result()

    assert final.state is State.CLOSED
    # The stalled projection really ran twice: once on the dead worker, again on the new one
    # (as a retried activity, or a local activity re-run after the workflow task timed out).
    assert recount.arrive_writes >= 1
    rows = await stored_events(pg_db, final.incident_id)
    assert [r.seq for r in rows] == list(range(1, final.seq + 1))
    assert [r.action for r in rows].count("arrive") == 1

    async def row_closed() -> bool:
        async with pg_db.session() as session:
            row = (await session.exec(select(Incident).where(
                Incident.id == final.incident_id))).one()
        return row.state == "closed" and row.last_seq == final.seq

    assert await eventually(row_closed)
    # And event by event, the read model is the history (bench/faults/compare.py).
    _, diffs = await compare_incident(client, pg_db, final.incident_id)
    assert diffs == []
