"""Merging a duplicate into a primary incident, on the Temporal dev server: the target's
acceptance is part of the decision, so opposite merges cannot both win."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from core.db import Database
from core.temporal import workflow_id
from schema.payloads import (
    AcknowledgeInput,
    ActionResult,
    AddInfoInput,
    CloseInput,
    Location,
    MergeInput,
    RejectInput,
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
    refused,
    start_incident,
    stored_events,
    timeline,
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

    result = await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=first.id, into_tracking_code=first.tracking_code))
    case = await query_case(child)
    assert result.state is State.MERGED and case.merged_into == first.id
    primary_case = await eventually(lambda: _has_child(primary))
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
    assert done.state is State.MERGED
    assert (await query_case(child)).primary_state is State.CLOSED
    events = await timeline(pg_db, done.incident_id)
    seen = [e.data["state"] for e in events if e.action == "primary_changed"]
    # The merge itself tells the primary's state then (received): no line repeats it.
    assert seen[-1] == "closed" and "received" not in seen
    assert all(e.public_note for e in events if e.action == "primary_changed")
    assert (await primary.result()).state is State.CLOSED
    rows = await stored_events(pg_db, done.incident_id)
    assert [r.seq for r in rows] == list(range(1, done.seq + 1))


async def test_merge_into_a_finished_incident_is_refused(dev_client: Client,
                                                         task_queue: str) -> None:
    primary = await start_incident(dev_client, task_queue)
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Spam"))
    finished = await primary.result()
    child = await start_incident(dev_client, task_queue)
    err = await refused(_merge(child, finished.incident_id))
    assert err.type == "IllegalTransition"
    assert (await query_case(child)).state is State.RECEIVED


async def test_merge_into_a_primary_that_ends_in_a_terminal_state_completes(
        dev_client: Client, task_queue: str) -> None:
    """A primary rejected later still lets its merged children complete."""
    primary = await start_incident(dev_client, task_queue)
    child = await start_incident(dev_client, task_queue)
    await _merge(child, (await query_case(primary)).id)
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Sai"))
    await child.result()
    assert (await query_case(child)).primary_state is State.REJECTED
    assert child.id == workflow_id((await child.result()).incident_id)


def _merge(handle: WorkflowHandle, into_incident_id: str) -> Awaitable[ActionResult]:
    """The operator's update merging `handle`'s incident into another (to await)."""
    return handle.execute_update(W.merge, MergeInput(actor=operator(),
                                                     into_incident_id=into_incident_id))


async def _located(handle):  # type: ignore[no-untyped-def]
    return await _has(handle, "locate")


async def _has(handle, action: str):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    if action == "locate":
        return case if case.ward is not None else None
    raise AssertionError(action)


async def _has_child(handle):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if case.merged_incidents else None


async def _primary_state(handle, state: State):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if case.primary_state is state else None


async def test_opposite_merges_at_once_end_with_one_primary(
        dev_client: Client, task_queue: str, pg_db: Database) -> None:
    """Operator A merges X into Y while supervisor B merges Y into X: exactly one wins,
    the other is refused and says why, and the survivor stays open (run 5 times)."""
    for _ in range(5):
        x = await start_incident(dev_client, task_queue)
        y = await start_incident(dev_client, task_queue)
        xid, yid = (await query_case(x)).id, (await query_case(y)).id
        results = await asyncio.gather(_merge(x, yid), _merge(y, xid), return_exceptions=True)
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], WorkflowUpdateFailedError)
        assert lost[0].cause.type == "IllegalTransition"  # type: ignore[attr-defined]
        states = {(await query_case(h)).state for h in (x, y)}
        assert states == {State.MERGED, State.RECEIVED}
        survivor = x if (await query_case(x)).state is State.RECEIVED else y
        merged = y if survivor is x else x
        assert (await query_case(merged)).merged_into == (await query_case(survivor)).id
        assert (await eventually(lambda s=survivor: _has_child(s))).merged_incidents == [
            (await query_case(merged)).id]


async def test_merge_chain_and_self_are_refused(dev_client: Client, task_queue: str) -> None:
    """A primary cannot be merged into its own child, nor an incident into a merged one."""
    y = await start_incident(dev_client, task_queue)
    x = await start_incident(dev_client, task_queue)
    yid, xid = (await query_case(y)).id, (await query_case(x)).id
    await _merge(x, yid)
    await eventually(lambda: _has_child(y))
    err = await refused(_merge(y, xid))
    assert err.type == "IllegalTransition"
    z = await start_incident(dev_client, task_queue)
    err = await refused(_merge(z, xid))
    assert err.type == "IllegalTransition" and err.details[0]["code"] == "target_closed"


async def test_a_merged_reports_citizen_still_reaches_the_primary(
        dev_client: Client, task_queue: str, pg_db: Database) -> None:
    primary = await start_incident(dev_client, task_queue)
    child = await start_incident(dev_client, task_queue)
    pid = (await query_case(primary)).id
    await _merge(child, pid)
    await eventually(lambda: _primary_state(child, State.RECEIVED))
    result = await child.execute_update(W.add_info, AddInfoInput(
        actor=citizen(), text="Có thêm một người bị thương", attachments=[]))
    assert result.state is State.MERGED
    cid = result.incident_id

    async def forwarded():  # type: ignore[no-untyped-def]
        added = [e for e in await timeline(pg_db, pid) if e.action == "add_info"]
        return added or None

    added = await eventually(forwarded)
    assert added[0].data["text"] == "Có thêm một người bị thương"
    assert added[0].data["via_incident_id"] == cid
    own = [e for e in await timeline(pg_db, cid) if e.action == "add_info"]
    assert len(own) == 1
    # Once the primary ends, the merged report takes nothing more.
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Sai"))
    await child.result()


async def test_a_primary_with_merged_reports_is_not_merged_itself(
        dev_client: Client, task_queue: str) -> None:
    """Its merged reports would be left following an incident that has ended: merge the
    other way round instead."""
    primary = await start_incident(dev_client, task_queue)
    child = await start_incident(dev_client, task_queue)
    other = await start_incident(dev_client, task_queue)
    pid, oid = (await query_case(primary)).id, (await query_case(other)).id
    await _merge(child, pid)
    await eventually(lambda: _has_child(primary))
    err = await refused(_merge(primary, oid))
    assert err.type == "IllegalTransition"
    assert err.details[0]["code"] == "has_merged_reports"
    await _merge(other, pid)
