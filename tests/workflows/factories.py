"""Factories and helpers for workflow, activity and fault tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.projection import ProjectionActivities
from api.cases import send_update
from core.db import Database
from core.settings import Settings
from core.temporal import workflow_id
from schema.activity_args import ProjectEvent
from schema.payloads import (
    Actor,
    IncidentInput,
    IncidentState,
    Location,
    Reporter,
    TimelineEvent,
    UnitRef,
)
from schema.states import DEFAULT_PRIORITY, Category, Role, State
from schema.tables import IncidentEvent, Unit
from worker import build_activities, build_worker
from workflows.incident import IncidentWorkflow

T = TypeVar("T")

BEN_THANH = Location(lat=10.7725, lon=106.6980, accuracy_m=15)


def new_id() -> str:
    return str(uuid.uuid4())


def tracking_code() -> str:
    return "CB-" + uuid.uuid4().hex[:10].upper()


def incident_input(**overrides: Any) -> IncidentInput:
    values: dict[str, Any] = {
        "incident_id": new_id(),
        "tracking_code": tracking_code(),
        "category": Category.CRIME,
        "description": "Cướp giật điện thoại trước cửa Nam chợ Bến Thành",
        "location": BEN_THANH,
        "received_at": datetime.now(UTC),
        "address": "Cửa Nam chợ Bến Thành, Quận 1",
        "reporter": Reporter(name="Nguyễn Văn A", phone="0900000000"),
        "sla_scale": 1.0,
    }
    values.update(overrides)
    return IncidentInput(**values)


def operator() -> Actor:
    return Actor(username="operator1", role=Role.OPERATOR, user_id=new_id())


def supervisor() -> Actor:
    return Actor(username="supervisor1", role=Role.SUPERVISOR, user_id=new_id())


def officer(unit: UnitRef | str | None) -> Actor:
    unit_id = unit.id if isinstance(unit, UnitRef) else unit
    return Actor(username=f"officer.{unit_id}", role=Role.OFFICER, unit_id=unit_id)


def citizen() -> Actor:
    return Actor(username="citizen", role=Role.CITIZEN)


def unit_ref(name: str = "Đội test", kind: str = "rapid_response") -> UnitRef:
    return UnitRef(id=new_id(), name=name, kind=kind)


async def ward_unit(db: Database, short_codename: str = "ben_thanh") -> UnitRef:
    async with db.session() as session:
        unit = (await session.exec(
            select(Unit).where(Unit.code == f"cand-{short_codename}"))).one()
    return UnitRef(id=unit.id, name=unit.name, kind=unit.kind, ward_code=unit.ward_code)


def state_for(inp: IncidentInput, **overrides: Any) -> IncidentState:
    """The state the workflow keeps right after receipt of `inp` (for activity tests)."""
    values: dict[str, Any] = {
        "id": inp.incident_id, "tracking_code": inp.tracking_code, "state": State.RECEIVED,
        "category": inp.category, "priority": DEFAULT_PRIORITY[inp.category],
        "location": inp.location, "created_at": inp.received_at,
        "updated_at": inp.received_at,
    }
    values.update(overrides)
    return IncidentState(**values)


def event(seq: int, action: str = "receive", to_state: State | None = State.RECEIVED,
          from_state: State | None = None, actor: Actor | None = None,
          at: datetime | None = None, **data: Any) -> TimelineEvent:
    return TimelineEvent(seq=seq, at=at or datetime.now(UTC), actor=actor or citizen(),
                         action=action, from_state=from_state, to_state=to_state, data=data)


def receipt(inp: IncidentInput, **overrides: Any) -> ProjectEvent:
    """The receive event of `inp` as the workflow hands it to the projection: the state
    (`state_for`, with `overrides`), seq 1 at the report's time, and the report itself."""
    return ProjectEvent(state=state_for(inp, **overrides),
                        event=event(1, at=inp.received_at), report=inp)


# --- running workflows ----------------------------------------------------------------------
@asynccontextmanager
async def running_worker(client: Client, settings: Settings, db: Database,
                         task_queue: str) -> AsyncIterator[Worker]:
    worker = build_worker(client, settings, db, task_queue=task_queue)
    async with worker:
        yield worker


def worker_with_projection(client: Client, settings: Settings, db: Database, task_queue: str,
                           projection: ProjectionActivities) -> Worker:
    """A worker (not started) whose SQL writes go through `projection.project` (a test's
    subclass that fails, stalls or counts), with every other activity the real one."""
    others = [a for a in build_activities(settings, db)
              if getattr(a, "__name__", "") != "project"]
    return Worker(client, task_queue=task_queue, workflows=[IncidentWorkflow],
                  activities=[projection.project, *others])


async def start_incident(client: Client, task_queue: str,
                         inp: IncidentInput | None = None) -> WorkflowHandle:
    """Start an incident workflow."""
    inp = inp or incident_input()
    return await client.start_workflow(IncidentWorkflow.run, inp, id=workflow_id(inp.incident_id),
                                       task_queue=task_queue)


async def update_retrying(handle: WorkflowHandle, update: Any, arg: Any) -> Any:
    """An update sent as the API's gateway sends it: again while the server could not take
    it yet (continue-as-new hand-over, too many updates in flight)."""
    return await send_update(handle, update, arg)


async def refused(call: Awaitable[Any]) -> ApplicationError:
    """Await an update that must be refused and return the ApplicationError it carried."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await call
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 15.0,
                     interval: float = 0.05) -> T:
    """Poll `check` until it returns a truthy value (or raise its last AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def query_case(handle: WorkflowHandle) -> IncidentState:
    return await handle.query(IncidentWorkflow.case)


async def timeline(db: Database, incident_id: str) -> list[TimelineEvent]:
    """The incident's timeline as the read model holds it (the workflow keeps none)."""
    return [TimelineEvent(
        seq=r.seq, at=r.at, actor=Actor(username=r.actor, role=Role(r.actor_role),
                                        unit_id=r.actor_unit_id),
        action=r.action, from_state=State(r.from_state) if r.from_state else None,
        to_state=State(r.to_state) if r.to_state else None, data=r.data or {},
        public_note=r.public_note) for r in await stored_events(db, incident_id)]


async def stored_events(db: Database, incident_id: str) -> list[IncidentEvent]:
    async with db.session() as session:
        rows = await session.exec(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.seq))
        return list(rows.all())
