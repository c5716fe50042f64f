"""SLA deadlines and escalation on the time-skipping test server (time moves by env.sleep)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from schema.escalation import TOP_LEVEL
from schema.payloads import (
    AcknowledgeInput,
    ClassifyInput,
    CloseInput,
    IncidentState,
    RouteInput,
    VerifyInput,
)
from schema.states import Category, Outcome, Priority, State, sla_deadline
from schema.tables import Alert, Incident, Notification
from tests.workflows.factories import (
    eventually,
    incident_input,
    officer,
    operator,
    query_case,
    start_incident,
    stored_events,
    supervisor,
    timeline,
    unit_ref,
)
from workflows.incident import IncidentWorkflow as W

FIRE = Category.FIRE_EXPLOSION  # priority 1: RECEIVED 1 min, VERIFIED 2 min, ROUTED 3 min


async def alerts(db: Database, incident_id: str) -> list[Alert]:
    async with db.session() as session:
        rows = await session.exec(select(Alert).where(Alert.incident_id == incident_id)
                                  .order_by(Alert.level))
        return list(rows.all())


async def audiences(db: Database, incident_id: str) -> list[str]:
    async with db.session() as session:
        rows = await session.exec(select(Notification.audience)
                                  .where(Notification.incident_id == incident_id))
        return sorted(rows.all())


async def level_is(handle, level: int) -> IncidentState | None:  # type: ignore[no-untyped-def]
    case = await query_case(handle)
    return case if case.escalation.level == level else None


async def received_at(db: Database, incident_id: str):  # type: ignore[no-untyped-def]
    """When the workflow received the report (the report time, or its start if earlier)."""
    return (await eventually(lambda: timeline(db, incident_id)))[0].at


async def test_escalates_twice_then_a_transition_resolves(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue, incident_input(category=FIRE))
    case = await query_case(handle)
    received = await received_at(pg_db, case.id)
    assert case.deadline == received + timedelta(minutes=1)

    await env.sleep(50)
    assert (await query_case(handle)).escalation.level == 0
    await env.sleep(15)
    case = await eventually(lambda: level_is(handle, 1))
    assert case.escalation.overdue_since == received + timedelta(minutes=1)
    assert case.deadline == received + timedelta(minutes=2)  # re-armed, same duration
    found = await eventually(lambda: alerts(pg_db, case.id))
    assert [(a.level, a.state, a.resolved_at) for a in found] == [(1, "received", None)]
    assert await audiences(pg_db, case.id) == ["supervisors"]

    await env.sleep(60)
    case = await eventually(lambda: level_is(handle, 2))
    await eventually(lambda: _count(alerts(pg_db, case.id), 2))
    assert await audiences(pg_db, case.id) == ["city_command", "supervisors", "supervisors"]
    escalate = [e for e in await timeline(pg_db, case.id) if e.action == "escalate"]
    assert [e.data["level"] for e in escalate] == [1, 2]
    assert all(e.actor.username == "system" for e in escalate)

    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    case = await query_case(handle)
    assert case.escalation.level == 0 and case.escalation.overdue_since is None
    events = await timeline(pg_db, case.id)
    verified = next(e for e in events if e.action == "verify")
    assert case.deadline == verified.at + sla_deadline(Priority.CRITICAL, State.VERIFIED, 1.0)
    assert all(a.resolved_at is not None for a in await alerts(pg_db, case.id))
    rows = await stored_events(pg_db, case.id)
    assert [r.seq for r in rows] == list(range(1, case.seq + 1))
    assert sorted(r.action for r in rows).count("escalate") == 2


async def test_each_transition_restarts_the_deadline(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue, incident_input(category=FIRE))
    await env.sleep(45)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await env.sleep(100)  # 145 s after receipt, 100 s into VERIFIED (2 min allowed)
    case = await query_case(handle)
    assert case.escalation.level == 0
    unit = unit_ref()
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await env.sleep(170)  # ROUTED allows 3 min
    assert (await query_case(handle)).escalation.level == 0
    await env.sleep(20)
    case = await eventually(lambda: level_is(handle, 1))
    assert case.state is State.ROUTED
    await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
    found = await alerts(pg_db, case.id)
    assert [(a.state, a.level) for a in found] == [("routed", 1)]
    assert found[0].resolved_at is not None
    await handle.execute_update(W.close, CloseInput(
        actor=officer(unit), outcome=Outcome.RESOLVED, summary="Xong"))
    assert (await query_case(handle)).deadline is None
    final = await handle.result()
    assert final.state is State.CLOSED


async def test_classify_changes_priority_and_deadline(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue,
                                  incident_input(category=Category.OTHER))  # priority 3
    result = await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.OTHER, priority=Priority.LOW))
    case = await query_case(handle)
    events = await timeline(pg_db, result.incident_id)
    classified = next(e for e in events if e.action == "classify")
    assert case.deadline == classified.at + timedelta(minutes=60)
    await env.sleep(59 * 60)
    assert (await query_case(handle)).escalation.level == 0
    await env.sleep(2 * 60)
    await eventually(lambda: level_is(handle, 1))


async def test_sla_scale_shrinks_every_deadline(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue,
                                  incident_input(category=FIRE, sla_scale=0.01))
    case = await query_case(handle)
    assert case.deadline == await received_at(pg_db, case.id) + timedelta(seconds=0.6)
    await env.sleep(1.3)
    case = await eventually(lambda: level_is(handle, 2))
    assert [a.level for a in await eventually(lambda: _count(alerts(pg_db, case.id), 2))] == [1, 2]


async def test_no_escalation_once_terminal(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue, incident_input(category=FIRE))
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    unit = unit_ref()
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await handle.execute_update(W.close, CloseInput(
        actor=supervisor(),
        outcome=Outcome.FALSE_ALARM, summary="Báo nhầm"))
    final = await handle.result()
    await env.sleep(3600)
    assert (await query_case(handle)).escalation.level == 0
    assert await alerts(pg_db, final.incident_id) == []


async def _count(rows_coro, n: int):  # type: ignore[no-untyped-def]
    rows = await rows_coro
    return rows if len(rows) >= n else None


async def test_sla_overrides_set_the_deadline(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    """CANHBAO_SLA overrides reach the workflow through its input and decide the timer."""
    env = time_skipping_env
    overrides = {1: {"received": 20.0}}  # fire: 20 s to verify instead of 1 min
    handle = await start_incident(skip_client, task_queue,
                                  incident_input(category=FIRE, sla=overrides))
    case = await query_case(handle)
    received = await received_at(pg_db, case.id)
    assert case.deadline == received + timedelta(seconds=20)
    await env.sleep(25)
    case = await eventually(lambda: level_is(handle, 1))
    assert case.deadline == received + timedelta(seconds=40)
    # States without an override keep the defaults.
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    case = await query_case(handle)
    assert case.deadline is not None
    verified = (await timeline(pg_db, case.id))[-1]
    assert case.deadline - verified.at == sla_deadline(Priority.CRITICAL, State.VERIFIED, 1.0)


async def test_a_week_unacknowledged_reaches_the_top_once_then_only_reminds(
        time_skipping_env: WorkflowEnvironment, skip_client: Client, task_queue: str,
        pg_db: Database) -> None:
    """Seven simulated days in ROUTED: levels 1, 2, 3 once each (one timeline line per
    level), then reminders at 15, 30, 60, 60... minutes that update the one top-level
    alert; the history stays small."""
    env = time_skipping_env
    handle = await start_incident(skip_client, task_queue, incident_input(category=FIRE))
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit_ref()))
    await env.sleep(7 * 24 * 3600)
    case = await eventually(lambda: level_is(handle, TOP_LEVEL))
    # ROUTED allows 3 min: levels at 3, 6, 9 min; reminders from 9 + 15 = 24 min on.
    minutes_left = 7 * 24 * 60 - 9 - 15 - 30
    expected_reminders = 2 + minutes_left // 60
    assert abs(case.escalation.reminders - expected_reminders) <= 1, case.escalation
    events = await timeline(pg_db, case.id)
    levels = [e.data["level"] for e in events if e.action == "escalate"]
    assert levels == [1, 2, 3]
    found = await alerts(pg_db, case.id)
    assert [a.level for a in found] == [1, 2, 3]
    assert found[-1].reminders == case.escalation.reminders and found[-1].last_reminded_at
    async with pg_db.session() as session:
        row = (await session.exec(select(Incident).where(Incident.id == case.id))).one()
    assert row.deadline == case.deadline  # the list's countdown follows the reminders
    told = await audiences(pg_db, case.id)
    assert told.count("director_on_duty") == 1 + case.escalation.reminders
    history = await handle.fetch_history()
    size = sum(e.ByteSize() for e in history.events)
    assert size < 2_000_000, size
    # Acknowledging ends it all: every alert resolved, the level back to 0.
    await handle.execute_update(W.acknowledge, AcknowledgeInput(
        actor=officer(case.unit.id if case.unit else None)))
    assert (await query_case(handle)).escalation.level == 0
    assert all(a.resolved_at is not None for a in await alerts(pg_db, case.id))
