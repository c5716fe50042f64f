"""Every legal transition and a sample of illegal ones, on the Temporal dev server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from core.db import Database
from schema.payloads import (
    AcknowledgeInput,
    AddInfoInput,
    ArriveInput,
    CancelInput,
    ClassifyInput,
    CloseInput,
    MergeInput,
    NoteInput,
    PublishAlertInput,
    ReassignInput,
    RejectInput,
    RouteInput,
    VerifyInput,
)
from schema.states import Category, Outcome, Priority, State
from schema.tables import Incident, PublicAlert
from tests.workflows.factories import (
    citizen,
    eventually,
    incident_input,
    new_id,
    officer,
    operator,
    query_case,
    refused,
    start_incident,
    stored_events,
    supervisor,
    timeline,
    unit_ref,
    ward_unit,
)
from workflows.incident import IncidentWorkflow as W


async def test_full_lifecycle_projects_every_step(dev_client: Client, task_queue: str,
                                                  pg_db: Database) -> None:
    inp = incident_input()
    handle = await start_incident(dev_client, task_queue, inp)
    located = await eventually(lambda: _located(handle))
    ben_thanh = await ward_unit(pg_db, "ben_thanh")
    assert located.ward is not None and located.ward.name == "Phường Bến Thành"
    assert located.ward.exact and not located.ward.outside_city
    assert located.proposed_unit == ben_thanh

    result = await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    assert result.state is State.VERIFIED and result.version == 1
    await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.CRIME, priority=Priority.CRITICAL))
    case = await query_case(handle)
    assert (case.state, case.priority) == (State.CLASSIFIED, Priority.CRITICAL)
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=ben_thanh))
    case = await query_case(handle)
    assert case.state is State.ROUTED and case.unit == ben_thanh
    cbcs = officer(ben_thanh)
    await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=cbcs))
    case = await query_case(handle)
    assert case.state is State.ACKNOWLEDGED and case.acknowledged_at is not None
    result = await handle.execute_update(W.note, NoteInput(actor=cbcs, text="Đang đến",
                                                            public=True))
    assert result.version == case.version and result.seq == case.seq + 1  # a note: no version
    result = await handle.execute_update(W.arrive, ArriveInput(actor=cbcs))
    assert result.state is State.ON_SCENE
    result = await handle.execute_update(W.close, CloseInput(
        actor=cbcs, outcome=Outcome.RESOLVED, summary="Đã bắt giữ đối tượng"))
    assert result.state is State.CLOSED and (await query_case(handle)).outcome is Outcome.RESOLVED

    final = await handle.result()
    assert final.state is State.CLOSED and final.seq == result.seq
    with pytest.raises(RPCError):  # a closed incident takes nothing more
        await handle.execute_update(W.note, NoteInput(actor=cbcs, text="Sau khi đóng"))
    # An update returns once its event is in SQL: the read model holds the timeline.
    rows = await stored_events(pg_db, inp.incident_id)
    actions = [r.action for r in rows]
    assert actions == ["receive", "locate", "verify", "classify", "route", "acknowledge",
                       "note", "arrive", "close"]
    assert [r.seq for r in rows] == list(range(1, len(actions) + 1))
    assert rows[-1].actor == cbcs.username and rows[-1].to_state == "closed"
    async with pg_db.session() as session:
        row = (await session.exec(select(Incident).where(Incident.id == inp.incident_id))).one()
    assert row.state == "closed" and not row.is_open and row.last_seq == len(actions)
    assert row.ward_name == "Phường Bến Thành" and row.unit_id == ben_thanh.id
    assert row.priority == 1 and row.outcome == "resolved"
    assert row.verified_at and row.routed_at and row.acknowledged_at and row.on_scene_at
    assert row.closed_at is not None


async def test_implied_steps_record_each_state(dev_client: Client, task_queue: str,
                                               pg_db: Database) -> None:
    handle = await start_incident(dev_client, task_queue)
    result = await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.TRAFFIC_ACCIDENT, priority=Priority.HIGH))
    events = await timeline(pg_db, result.incident_id)
    steps = [(e.action, e.from_state, e.to_state) for e in events if e.to_state]
    assert steps[-2:] == [("verify", State.RECEIVED, State.VERIFIED),
                          ("classify", State.VERIFIED, State.CLASSIFIED)]
    assert (await query_case(handle)).category is Category.TRAFFIC_ACCIDENT
    unit = unit_ref()
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await handle.execute_update(W.arrive, ArriveInput(actor=officer(unit)))
    events = await timeline(pg_db, result.incident_id)
    steps = [(e.action, e.from_state, e.to_state) for e in events if e.to_state]
    assert steps[-2:] == [("acknowledge", State.ROUTED, State.ACKNOWLEDGED),
                          ("arrive", State.ACKNOWLEDGED, State.ON_SCENE)]
    assert events[-2].data == {"implied_by": "arrive"}


async def _located(handle):  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if case.ward is not None else None


async def _routed(client: Client, task_queue: str, unit=None):  # type: ignore[no-untyped-def]
    handle = await start_incident(client, task_queue)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit or unit_ref()))
    return handle


@pytest.mark.parametrize("steps", [
    ["reject"], ["verify", "reject"], ["classify", "reject"],
    ["cancel"], ["verify", "cancel"], ["classify", "cancel"], ["verify", "route", "cancel"],
    ["verify", "route", "reroute"], ["classify", "classify", "route"],
    ["verify", "route", "reassign"], ["verify", "route", "acknowledge", "reassign"],
    ["verify", "route", "arrive", "reassign", "acknowledge"],
    ["verify", "route", "close_supervisor"], ["verify", "route", "acknowledge", "close"],
    ["verify", "route", "acknowledge", "arrive", "close_supervisor"],
    ["note", "verify", "note", "classify", "note", "route", "note", "acknowledge", "note"],
    ["add_info", "verify", "add_info", "route", "publish_alert", "add_info"],
])
async def test_legal_transitions(dev_client: Client, task_queue: str, pg_db: Database,
                                 steps: list[str]) -> None:
    handle = await start_incident(dev_client, task_queue)
    await eventually(lambda: _located(handle))
    unit = unit_ref()
    expected_state = State.RECEIVED
    for step in steps:
        update, arg, target = _action(step, unit)
        result = await handle.execute_update(update, arg)
        if target is not None:
            expected_state = target
        if step in ("reassign", "reroute"):
            unit = arg.unit
        assert result.state is expected_state, step
    rows = await stored_events(pg_db, result.incident_id)
    assert [r.seq for r in rows] == list(range(1, result.seq + 1))
    if expected_state.is_terminal:
        assert (await handle.result()) == result


def _action(step: str, unit):  # type: ignore[no-untyped-def]
    """(update, argument, resulting state or None when unchanged) for a named step."""
    match step:
        case "verify":
            return W.verify, VerifyInput(actor=operator()), State.VERIFIED
        case "reject":
            return W.reject, RejectInput(actor=operator(), reason="Tin báo sai"), State.REJECTED
        case "cancel":
            return W.cancel, CancelInput(actor=citizen(), reason="Nhầm"), State.CANCELLED
        case "classify":
            return W.classify, ClassifyInput(actor=operator(), category=Category.OTHER,
                                             priority=Priority.LOW), State.CLASSIFIED
        case "route":
            return W.route, RouteInput(actor=operator(), unit=unit), State.ROUTED
        case "reroute":
            return W.route, RouteInput(actor=operator(), unit=unit_ref("Khác")), State.ROUTED
        case "reassign":
            return W.reassign, ReassignInput(actor=supervisor(), unit=unit_ref("Dự phòng"),
                                             reason="Đơn vị quá tải"), State.ROUTED
        case "acknowledge":
            return W.acknowledge, AcknowledgeInput(actor=officer(unit)), State.ACKNOWLEDGED
        case "arrive":
            return W.arrive, ArriveInput(actor=officer(unit)), State.ON_SCENE
        case "close":
            return W.close, CloseInput(actor=officer(unit), outcome=Outcome.RESOLVED,
                                       summary="Xong"), State.CLOSED
        case "close_supervisor":
            return W.close, CloseInput(actor=supervisor(), outcome=Outcome.UNFOUNDED,
                                       summary="Không có vụ việc"), State.CLOSED
        case "note":
            return W.note, NoteInput(actor=supervisor(), text="Ghi chú"), None
        case "add_info":
            return W.add_info, AddInfoInput(actor=citizen(), text="Có thêm thông tin"), None
        case "publish_alert":
            return W.publish_alert, PublishAlertInput(
                actor=supervisor(), alert_id=new_id(), headline="Cảnh báo",
                instruction="Tránh khu vực", radius_m=500), None
    raise AssertionError(step)


async def test_illegal_and_forbidden_actions_are_refused(dev_client: Client,
                                                         task_queue: str) -> None:
    unit = unit_ref()
    other_unit = unit_ref("Đơn vị khác")
    handle = await start_incident(dev_client, task_queue)
    # Not reachable from RECEIVED.
    for update, arg in [
        (W.route, RouteInput(actor=operator(), unit=unit)),
        (W.acknowledge, AcknowledgeInput(actor=officer(unit))),
        (W.close, CloseInput(actor=supervisor(), outcome=Outcome.RESOLVED, summary="x")),
        (W.reassign, ReassignInput(actor=supervisor(), unit=unit, reason="x")),
        (W.publish_alert, PublishAlertInput(actor=supervisor(), alert_id=new_id(),
                                            headline="h", instruction="i", radius_m=100)),
    ]:
        assert (await refused(handle.execute_update(update, arg))).type == "IllegalTransition"
    # Wrong roles.
    assert (await refused(handle.execute_update(
        W.verify, VerifyInput(actor=officer(unit))))).type == "Forbidden"
    assert (await refused(handle.execute_update(
        W.verify, VerifyInput(actor=citizen())))).type == "Forbidden"
    assert (await refused(handle.execute_update(
        W.cancel, CancelInput(actor=operator())))).type == "Forbidden"
    assert (await refused(handle.execute_update(
        W.merge, MergeInput(actor=operator(), into_incident_id=(await query_case(handle)).id)
    ))).type == "Invalid"
    assert (await refused(handle.execute_update(
        W.add_info, AddInfoInput(actor=citizen(), text="  ")))).type == "Invalid"

    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    # An officer cannot close what nobody acknowledged; another unit's officer cannot act.
    err = await refused(handle.execute_update(W.close, CloseInput(
        actor=officer(unit), outcome=Outcome.RESOLVED, summary="x")))
    assert err.type == "IllegalTransition"
    assert (await refused(handle.execute_update(
        W.acknowledge, AcknowledgeInput(actor=officer(other_unit))))).type == "Forbidden"
    assert (await refused(handle.execute_update(
        W.note, NoteInput(actor=officer(other_unit), text="x")))).type == "Forbidden"
    assert (await refused(handle.execute_update(
        W.reassign, ReassignInput(actor=operator(), unit=other_unit, reason="x")
    ))).type == "Forbidden"
    await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
    # The citizen can no longer cancel once a unit took it.
    assert (await refused(handle.execute_update(
        W.cancel, CancelInput(actor=citizen())))).type == "IllegalTransition"
    assert (await refused(handle.execute_update(
        W.verify, VerifyInput(actor=operator())))).type == "IllegalTransition"
    case = await query_case(handle)
    assert case.state is State.ACKNOWLEDGED


async def test_nothing_is_accepted_on_a_terminal_incident(dev_client: Client,
                                                          task_queue: str) -> None:
    """A rejected incident refuses everything; once the workflow has completed the update
    cannot even be delivered."""
    handle = await start_incident(dev_client, task_queue)
    await handle.execute_update(W.reject, RejectInput(actor=operator(), reason="Spam"))
    final = await handle.result()
    assert final.state is State.REJECTED
    for update, arg in [
        (W.verify, VerifyInput(actor=operator())),
        (W.note, NoteInput(actor=supervisor(), text="x")),
        (W.add_info, AddInfoInput(actor=citizen(), text="x")),
        (W.cancel, CancelInput(actor=citizen())),
    ]:
        with pytest.raises(RPCError) as info:
            await handle.execute_update(update, arg)
        assert info.value.status == RPCStatusCode.NOT_FOUND
        assert "completed" in str(info.value).lower()
    # The live case can still be queried.
    assert (await query_case(handle)).state is State.REJECTED


async def test_refused_updates_never_enter_history(dev_client: Client, task_queue: str) -> None:
    handle = await start_incident(dev_client, task_queue)
    for _ in range(3):
        await refused(handle.execute_update(W.acknowledge,
                                            AcknowledgeInput(actor=officer(unit_ref()))))
        await refused(handle.execute_update(W.verify, VerifyInput(actor=citizen())))
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    history = await handle.fetch_history()
    accepted = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert accepted == ["verify"]
    rejected = [e for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED]
    assert rejected == []


async def test_publish_alert_writes_public_alert(dev_client: Client, task_queue: str,
                                                 pg_db: Database) -> None:
    handle = await start_incident(dev_client, task_queue, incident_input(
        category=Category.FIRE_EXPLOSION, description="Cháy nhà dân"))
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    alert_id = new_id()
    case = await handle.execute_update(W.publish_alert, PublishAlertInput(
        actor=supervisor(), alert_id=alert_id, headline="Cháy lớn tại Bến Thành",
        instruction="Tránh xa khu vực chợ", radius_m=800))
    events = await timeline(pg_db, case.incident_id)
    assert [e.action for e in events].count("publish_alert") == 1
    async with pg_db.session() as session:
        row = (await session.exec(select(PublicAlert).where(PublicAlert.id == alert_id))).one()
    assert row.incident_id == case.incident_id and row.radius_m == 800
    assert row.sender == "supervisor1"
    assert row.category == "fire_explosion" and row.priority == 1


async def test_concurrent_updates_cannot_both_win(dev_client: Client, task_queue: str,
                                                  pg_db: Database) -> None:
    """Two officers acknowledge at the same moment: exactly one transition happens."""
    unit = unit_ref()
    handle = await _routed(dev_client, task_queue, unit)
    results = await asyncio.gather(*(
        handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
        for _ in range(4)), return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1 and len(lost) == 3
    assert all(isinstance(e, WorkflowUpdateFailedError) for e in lost)
    assert all(e.cause.type == "IllegalTransition" for e in lost)  # type: ignore[attr-defined]
    case = await query_case(handle)
    assert [e.action for e in await timeline(pg_db, case.id)].count("acknowledge") == 1


async def test_concurrent_routes_to_the_same_unit_succeed_once(dev_client: Client,
                                                               task_queue: str) -> None:
    """Four operators route to the same ward at once: one routes, three are told it is
    already that unit's, and by whom."""
    handle = await start_incident(dev_client, task_queue)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    unit = unit_ref("Công an Phường Bến Thành")
    results = await asyncio.gather(*(
        handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
        for _ in range(4)), return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r.cause for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(won) == 1 and len(lost) == 3
    assert {c.type for c in lost} == {"NoChange"}  # type: ignore[union-attr]
    details = lost[0].details[0]  # type: ignore[union-attr]
    assert details["changed_by"] == "operator1" and details["changed_action"] == "route"
    assert details["unit_name"] == "Công an Phường Bến Thành" and details["changed_at"]


async def test_a_stale_version_is_refused_and_names_the_change(dev_client: Client,
                                                              task_queue: str) -> None:
    """Two operators look at version 1 and route to different units: the first wins, the
    second is refused as Stale (not silently overwritten)."""
    handle = await start_incident(dev_client, task_queue)
    seen = (await handle.execute_update(W.verify, VerifyInput(actor=operator()))).version
    first, second = unit_ref("Đội 113"), unit_ref("Công an Phường Sài Gòn")
    operator2 = operator().model_copy(update={"username": "operator2"})
    await handle.execute_update(W.route, RouteInput(actor=operator2, unit=first,
                                                    expected_version=seen))
    err = await refused(handle.execute_update(W.route, RouteInput(
        actor=operator(), unit=second, expected_version=seen)))
    assert err.type == "Stale"
    assert err.details[0]["changed_by"] == "operator2"
    assert err.details[0]["unit_name"] == "Đội 113"
    case = await query_case(handle)
    assert case.unit == first and case.version == seen + 1
    assert case.last_change is not None and case.last_change.by == "operator2"
    # With the current version it goes through; a note never needs one.
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=second,
                                                    expected_version=case.version))
    await handle.execute_update(W.note, NoteInput(actor=operator(), text="x"))


async def test_an_action_is_dated_when_the_api_took_it(dev_client: Client, task_queue: str,
                                                       pg_db: Database) -> None:
    """An action's events carry `at` from its input (history keeps it, so a replay gives
    the time written to SQL), kept between the incident's last change and the task's
    clock; without `at`, the task's clock."""
    handle = await start_incident(dev_client, task_queue)
    await eventually(lambda: _located(handle))
    before = await query_case(handle)
    took = before.updated_at + timedelta(milliseconds=7)
    verified = await handle.execute_update(W.verify, VerifyInput(actor=operator(), at=took))
    ahead = datetime.now(UTC) + timedelta(hours=1)
    noted = await handle.execute_update(W.note, NoteInput(actor=operator(), text="a", at=ahead))
    late = await handle.execute_update(W.note, NoteInput(
        actor=operator(), text="b", at=datetime(2020, 1, 1, tzinfo=UTC)))
    plain = await handle.execute_update(W.note, NoteInput(actor=operator(), text="c"))
    done = datetime.now(UTC)
    events = {e.seq: e for e in await timeline(pg_db, verified.incident_id)}
    assert events[verified.seq].at == took
    assert events[noted.seq].at < ahead - timedelta(minutes=50)  # the task's clock
    assert events[late.seq].at == events[late.seq - 1].at  # not before the last change
    assert events[late.seq - 1].at <= events[plain.seq].at <= done
    assert (await query_case(handle)).last_change is not None
    assert (await query_case(handle)).last_change.at == took  # the state change's time
