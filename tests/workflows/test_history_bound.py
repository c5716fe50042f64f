"""History stays bounded however much text comes in: 500 citizen additions and 500 officer
notes of 5,000 characters each on one incident (sent to the workflow directly, past the
HTTP limits), then the full lifecycle; every run's history stays under 2 MB, the incident
still escalates and closes, and the read model holds every event exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from bench.faults.compare import compare_incident
from core.db import Database
from core.settings import Settings
from schema.payloads import (
    AcknowledgeInput,
    AddInfoInput,
    ArriveInput,
    CloseInput,
    NoteInput,
    RouteInput,
    VerifyInput,
)
from schema.states import Category, Outcome, State
from tests.workflows.factories import (
    citizen,
    eventually,
    incident_input,
    officer,
    operator,
    query_case,
    running_worker,
    start_incident,
    stored_events,
    unit_ref,
    update_retrying,
)
from workflows.incident import HISTORY_BYTES_BOUND
from workflows.incident import IncidentWorkflow as W

TWO_MB = 2 * 1024 * 1024
# Vietnamese text: mostly 2- and 3-byte UTF-8 characters.
TEXT = ("Người dân phản ánh có đám cháy lớn ở tầng ba, khói đen bốc cao, "
        "nhiều người mắc kẹt. ") * 60


async def run_sizes(client: Client, workflow_id: str) -> list[tuple[int, int]]:
    """(events, bytes) of every run of `workflow_id`, oldest first."""
    sizes = []
    async for execution in client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        sizes.append((len(history.events), sum(e.ByteSize() for e in history.events)))
    return sizes


async def continued(handle: WorkflowHandle) -> int:
    """How many runs ended in continue-as-new so far."""
    return (await query_case(handle)).run - 1


async def test_thousand_long_texts_keep_every_run_small(
        temporal_env: WorkflowEnvironment, pg_db: Database,
        make_settings: Callable[..., Settings], task_queue: str) -> None:
    text = TEXT[:5000]
    assert len(text) == 5000
    client = temporal_env.client
    inp = incident_input(category=Category.FIRE_EXPLOSION, sla_scale=0.002)
    async with running_worker(client, make_settings(), pg_db, task_queue):
        handle = await start_incident(client, task_queue, inp)
        unit = unit_ref()
        await handle.execute_update(W.verify, VerifyInput(actor=operator()))
        await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
        cbcs = officer(unit)
        await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=cbcs))

        async def send(i: int) -> None:
            if i % 2:
                await update_retrying(handle, W.note, NoteInput(actor=cbcs, text=text))
            else:
                await update_retrying(handle, W.add_info, AddInfoInput(actor=citizen(),
                                                                       text=text))

        # Ten at a time, as a flood through several API processes would arrive; one
        # aborted by a hand-over is sent again, as the API does.
        for start in range(0, 1000, 10):
            await asyncio.gather(*(send(i) for i in range(start, start + 10)))
        assert await continued(handle) >= 5
        # Still alive: it escalates (ACKNOWLEDGED, priority 1: 15 min x 0.002 = 1.8 s)...
        await eventually(lambda: _escalated(handle), timeout=30)
        # ...and closes.
        await handle.execute_update(W.arrive, ArriveInput(actor=cbcs))
        result = await handle.execute_update(W.close, CloseInput(
            actor=cbcs, outcome=Outcome.RESOLVED, summary="Đã xử lý"))
        assert result.state is State.CLOSED
        final = await client.get_workflow_handle_for(W.run, handle.id).result()
        assert final.state is State.CLOSED

    sizes = await run_sizes(client, handle.id)
    largest = max(b for _, b in sizes)
    print(f"runs={len(sizes)} largest history={largest} bytes "  # noqa: T201
          f"events={[e for e, _ in sizes]}")
    assert len(sizes) >= 6
    assert largest < TWO_MB, sizes
    assert largest > HISTORY_BYTES_BOUND // 2  # the bound, not luck, cut the runs
    rows = await stored_events(pg_db, inp.incident_id)
    assert [r.seq for r in rows] == list(range(1, final.seq + 1))
    actions = [r.action for r in rows]
    assert actions.count("note") == 500 and actions.count("add_info") == 500
    assert actions.count("close") == 1 and actions.count("escalate") >= 1


async def _escalated(handle: WorkflowHandle) -> bool:
    return (await query_case(handle)).escalation.level >= 1


async def test_continue_as_new_with_a_worker_killed_during_it(
        temporal_env: WorkflowEnvironment, pg_db: Database,
        make_settings: Callable[..., Settings], task_queue: str) -> None:
    """Updates keep flowing while the workflow hands over to a new run and the worker that
    runs it dies; no accepted update is lost or applied twice."""
    client = temporal_env.client
    settings = make_settings()
    text = TEXT[:5000]
    inp = incident_input()
    sent = 0
    async with running_worker(client, settings, pg_db, task_queue):
        handle = await start_incident(client, task_queue, inp)
        await handle.execute_update(W.verify, VerifyInput(actor=operator()))
        # Close to the byte bound: the next few updates trigger the hand-over.
        while (await handle.describe()).raw_description.workflow_execution_info \
                .history_size_bytes < HISTORY_BYTES_BOUND - 20_000:
            await handle.execute_update(W.note, NoteInput(actor=operator(), text=text))
            sent += 1
    # The worker is gone (its shutdown cancels what it ran). Updates sent now wait for a
    # worker; a new one starts while they are in flight.
    pending = [asyncio.create_task(update_retrying(
        handle, W.note, NoteInput(actor=operator(), text=f"{i} {text}"[:5000])))
        for i in range(8)]  # the dev server admits 10 updates in flight per workflow
    await asyncio.sleep(1.0)
    async with running_worker(client, settings, pg_db, task_queue):
        await asyncio.gather(*pending)
        sent += len(pending)
        # The bound is checked as each workflow task starts: the next one hands over.
        for i in range(5):
            result = await update_retrying(handle, W.note, NoteInput(actor=operator(),
                                                                     text=f"cuối {i}"))
            sent += 1
        assert await continued(handle) >= 1, await run_sizes(client, handle.id)
    rows = await stored_events(pg_db, inp.incident_id)
    notes = [r for r in rows if r.action == "note"]
    assert len(notes) == sent
    assert [r.seq for r in rows] == list(range(1, result.seq + 1))
    first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    history = await first.fetch_history()
    assert history.events[-1].event_type == \
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # Event by event over both runs, the read model is the history (the fault suite's
    # comparison, bench/faults/compare.py).
    timeline, diffs = await compare_incident(client, pg_db, inp.incident_id)
    assert diffs == [] and timeline.runs >= 2 and timeline.starts == 1
