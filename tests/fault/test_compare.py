"""bench.faults.compare: the SQL timeline against the replayed Temporal history. Equal
after a plain lifecycle; every kind of disagreement is found when the read model is
tampered with."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, update
from temporalio.testing import WorkflowEnvironment

from activities.projection import EVENTS, event_values
from bench.faults.compare import compare_incident
from core.db import Database
from core.settings import Settings
from schema.payloads import (
    AcknowledgeInput,
    ArriveInput,
    CloseInput,
    RouteInput,
    VerifyInput,
)
from schema.states import Outcome
from tests.workflows.factories import (
    event,
    officer,
    operator,
    running_worker,
    start_incident,
    unit_ref,
)
from workflows.incident import IncidentWorkflow as W


async def test_sql_and_history_agree_then_tampering_is_found(
        temporal_env: WorkflowEnvironment, pg_db: Database,
        make_settings: Callable[..., Settings], task_queue: str) -> None:
    client = temporal_env.client
    unit = unit_ref()
    async with running_worker(client, make_settings(), pg_db, task_queue):
        handle = await start_incident(client, task_queue)
        await handle.execute_update(W.verify, VerifyInput(actor=operator()))
        await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
        await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(unit)))
        await handle.execute_update(W.arrive, ArriveInput(actor=officer(unit)))
        await handle.execute_update(W.close, CloseInput(
            actor=officer(unit), outcome=Outcome.RESOLVED, summary="Đã xử lý"))
        final = await handle.result()
    iid = final.incident_id

    history, diffs = await compare_incident(client, pg_db, iid)
    assert diffs == []
    assert (history.runs, history.starts, history.replay_failures) == (1, 1, [])
    assert sorted(history.events) == list(range(1, final.seq + 1))
    assert sorted(e.action for e in history.events.values()) == sorted([
        "receive", "locate", "verify", "route", "acknowledge", "arrive", "close"])

    # Tamper: another time, other data, a lost event, an extra one, a stale row.
    at = history.events[1].at + timedelta(seconds=1)
    async with pg_db.engine.begin() as conn:
        await conn.execute(update(EVENTS).where(EVENTS.c.incident_id == iid,
                                                EVENTS.c.seq == 1).values(at=at))
        await conn.execute(update(EVENTS).where(EVENTS.c.incident_id == iid,
                                                EVENTS.c.seq == 4).values(data={"x": 1}))
        await conn.execute(delete(EVENTS).where(EVENTS.c.incident_id == iid,
                                                EVENTS.c.seq == 5))
        await conn.execute(EVENTS.insert().values(**event_values(iid, event(final.seq + 1,
                                                                            "note", None))))
        await conn.execute(update(EVENTS.metadata.tables["incidents"]).where(
            EVENTS.metadata.tables["incidents"].c.id == iid).values(state="on_scene"))
    _, diffs = await compare_incident(client, pg_db, iid)
    found = {(d.seq, d.field) for d in diffs}
    assert found == {(1, "at"), (4, "data"), (5, "missing"), (final.seq + 1, "extra"),
                     (None, "state")}, diffs
