"""Merging a duplicate into a primary incident, on the Temporal dev server."""

from __future__ import annotations

from temporalio.client import Client

from core.db import Database
from core.temporal import workflow_id
from schema.payloads import (
    AcknowledgeInput,
    CloseInput,
    Location,
    MergeInput,
    RejectInput,
    RouteInput,
    VerifyInput,
)
from schema.states import Category, Outcome, State
from tests.workflows.factories import (
    eventually,
    incident_input,
    officer,
    operator,
    query_case,
    refused,
    start_incident,
    stored_events,
    unit_ref,
)
from workflows.incident import IncidentWorkflow as W

# A quiet spot in Phường Thủ Đức, used only by this module.
SPOT = Location(lat=10.8505, lon=106.7725)


async def test_duplicates_are_suggested_and_merged_child_follows_primary(
        dev_client: Client, task_queue: str, pg_db: Database) -> None:
    primary = await start_incident(dev_client, task_queue, incident_input(
        category=Category.FIRE_EXPLOSION, location=SPOT, description="Cháy kho hàng"))
    first = await eventually(lambda: _located(primary))
    near = Location(lat=SPOT.lat + 0.001, lon=SPOT.lon)  # ~110 m north
    child = await start_incident(dev_client, task_queue, incident_input(
        category=Category.FIRE_EXPLOSION, location=near, description="Thấy khói lớn"))
    case = await eventually(lambda: _located(child))
    assert [d.incident_id for d in case.duplicates] == [first.id]
    assert 90 < case.duplicates[0].distance_m < 130

    case = await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=first.id, into_tracking_code=first.tracking_code))
    assert case.state is State.MERGED and case.merged_into == first.id
    primary_case = await eventually(lambda: _has(primary, "merged_in"))
    assert primary_case.merged_incidents == [case.id]
    await eventually(lambda: _primary_state(child, State.RECEIVED))

    unit = unit_ref()
    await primary.execute_update(W.verify, VerifyInput(actor=operator()))
    await primary.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await eventually(lambda: _primary_state(child, State.ROUTED))
    await primary.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
    await primary.execute_update(W.close, CloseInput(
        actor=officer(unit), outcome=Outcome.RESOLVED, summary="Đã dập tắt"))
    done = await child.result()
    assert done.state is State.MERGED and done.primary_state is State.CLOSED
    seen = [e.data["state"] for e in done.timeline if e.action == "primary_changed"]
    assert seen[0] == "received" and seen[-1] == "closed"
    assert all(e.public_note for e in done.timeline if e.action == "primary_changed")
    assert (await primary.result()).state is State.CLOSED
    rows = await stored_events(pg_db, done.id)
    assert [r.seq for r in rows] == [e.seq for e in done.timeline]


async def test_merge_into_a_finished_incident_is_refused(dev_client: Client,
                                                         task_queue: str) -> None:
    primary = await start_incident(dev_client, task_queue)
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Spam"))
    finished = await primary.result()
    child = await start_incident(dev_client, task_queue)
    err = await refused(child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=finished.id)))
    assert err.type == "IllegalTransition"
    assert (await query_case(child)).state is State.RECEIVED


async def test_merge_into_a_primary_that_ends_in_a_terminal_state_completes(
        dev_client: Client, task_queue: str) -> None:
    """A primary rejected later still lets its merged children complete."""
    primary = await start_incident(dev_client, task_queue)
    child = await start_incident(dev_client, task_queue)
    await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=(await query_case(primary)).id))
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Sai"))
    assert (await child.result()).primary_state is State.REJECTED
    assert child.id == workflow_id((await child.result()).id)


async def _located(handle):  # type: ignore[no-untyped-def]
    return await _has(handle, "locate")


async def _has(handle, action: str):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if any(e.action == action for e in case.timeline) else None


async def _primary_state(handle, state: State):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if case.primary_state is state else None
