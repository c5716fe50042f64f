"""The intake relay under several API processes (issue #19): each relay claims the rows it
starts, so every pending report is started once; a new row is left to the request that
stored it, and that request marks it started itself."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest_asyncio
from sqlalchemy import func, select, update
from sqlmodel import col
from temporalio.testing import WorkflowEnvironment

from api.infra import Infra
from core.db import Database
from core.outbox import WorkflowStarter, outbox_row
from core.settings import Settings
from schema.ids import make_tracking_code, workflow_id
from schema.reports import ReportCreate
from schema.tables import Outbox, Report, utcnow
from tests.api.conftest import Stack

RelayCount = Counter[str]


def count_starts(starter: WorkflowStarter, attempts: RelayCount) -> None:
    """Count every start attempt `starter` makes (one per call of its `_start`)."""
    real = starter._start

    async def counted(incident_id: str, *args: Any) -> Any:
        attempts[incident_id] += 1
        return await real(incident_id, *args)

    starter._start = counted  # type: ignore[method-assign]


async def store_pending(db: Database, settings: Settings, n: int,
                        request_starts: bool = False) -> list[str]:
    """`n` stored reports whose workflows nobody started (as when Temporal was down), in
    one transaction."""
    ids = [str(uuid.uuid4()) for _ in range(n)]
    now = utcnow()
    async with db.session() as s:
        for rid in ids:
            body = ReportCreate.model_validate({
                "report_id": rid, "category": "fire_explosion",
                "description": "Cháy nhà dân",
                "location": {"lat": 10.7769, "lon": 106.7009}})
            code = make_tracking_code()
            inp = body.to_input(rid, code, now, "api", settings.sla_scale, None, None)
            s.add(Report(id=rid, tracking_code=code, tracking_token=f"t-{rid}",
                         payload=inp.model_dump(mode="json"), source="api", created_at=now))
        await s.flush()
        s.add_all([outbox_row(rid, now, request_starts) for rid in ids])
        await s.commit()
    return ids


async def pending(db: Database, ids: list[str]) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(Outbox).where(
            col(Outbox.report_id).in_(ids), col(Outbox.started_at).is_(None)))).scalar_one())


@pytest_asyncio.fixture
async def open_infra(api_settings: Callable[..., Settings]
                     ) -> AsyncIterator[Callable[..., Awaitable[Infra]]]:
    """Infras as separate API processes would have them: each its own pool and client."""
    opened: list[Infra] = []

    async def build(**overrides: Any) -> Infra:
        infra = Infra.open(api_settings(**overrides))
        opened.append(infra)
        return infra

    yield build
    for infra in opened:
        await infra.close()


async def test_two_relays_start_every_pending_report_once(
        open_infra: Callable[..., Awaitable[Infra]],
        temporal_env: WorkflowEnvironment) -> None:
    one = await open_infra()
    two = await open_infra(CANHBAO_TASK_QUEUE=one.settings.task_queue)
    n = 200
    ids = await store_pending(one.db, one.settings, n)
    attempts: RelayCount = Counter()
    by_relay = [Counter(), Counter()]
    for starter, mine in zip((one.starter, two.starter), by_relay, strict=True):
        count_starts(starter, mine)
    for _ in range(20):  # each pass claims at most 60 rows per relay
        await asyncio.gather(one.starter.relay_once(batch=60),
                             two.starter.relay_once(batch=60))
        if await pending(one.db, ids) == 0:
            break
    assert await pending(one.db, ids) == 0
    for mine in by_relay:
        attempts.update(mine)
    assert all(by_relay), "both relays took part"
    assert set(attempts) == set(ids)
    redundant = sum(attempts.values()) - n
    assert redundant <= n // 100, attempts.most_common(5)
    for rid in ids[:: n // 10]:
        handle = temporal_env.client.get_workflow_handle(workflow_id(rid))
        assert (await handle.describe()).id == workflow_id(rid)


async def test_a_new_row_is_left_to_its_request_and_marked_by_it(
        make_stack: Callable[..., Awaitable[Stack]]) -> None:
    stack = await make_stack(with_worker=False, CANHBAO_RELAY_INTERVAL_S=3600)
    starter = stack.infra.starter
    attempts: RelayCount = Counter()
    count_starts(starter, attempts)

    # A report the request started: its row is marked before the answer, by the request
    # (the relay never ran since).
    accepted = await stack.submit()
    async with stack.infra.db.session() as s:
        row = await s.get(Outbox, accepted["incident_id"])
    assert row is not None and row.started_at is not None
    assert attempts == {accepted["incident_id"]: 1}

    # A row whose request is still starting it (inside its grace): no relay touches it...
    [young] = await store_pending(stack.infra.db, stack.settings, 1, request_starts=True)
    assert await starter.relay_once() == 0 and attempts[young] == 0
    # ... until the grace has passed without a mark (the request died): then it is started.
    async with stack.infra.db.session() as s:
        await s.execute(update(Outbox).where(col(Outbox.report_id) == young)
                        .values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        await s.commit()
    assert await starter.relay_once() == 1 and attempts[young] == 1
    assert await pending(stack.infra.db, [young]) == 0


async def test_a_failed_request_start_hands_the_row_over_at_once(
        make_stack: Callable[..., Awaitable[Stack]], temporal_env: WorkflowEnvironment
        ) -> None:
    stack = await make_stack(with_worker=False, CANHBAO_RELAY_INTERVAL_S=3600)
    stack.infra.temporal.point_at("127.0.0.1:1")  # nothing listens on port 1
    rid = (await stack.submit())["incident_id"]
    async with stack.infra.db.session() as s:
        row = await s.get(Outbox, rid)
    assert row is not None and row.started_at is None and row.attempts == 1
    assert row.next_attempt_at is not None and row.next_attempt_at <= utcnow()
    stack.infra.temporal.point_at(temporal_env.client.service_client.config.target_host)
    assert await stack.infra.starter.relay_once() >= 1
    assert await pending(stack.infra.db, [rid]) == 0


async def test_relay_claims_on_sqlite(open_infra: Callable[..., Awaitable[Infra]],
                                      sqlite_url: str) -> None:
    """The same claim statement on SQLite (no FOR UPDATE there: one writer at a time)."""
    one = await open_infra(DATABASE_URL=sqlite_url)
    two = await open_infra(DATABASE_URL=sqlite_url,
                           CANHBAO_TASK_QUEUE=one.settings.task_queue)
    ids = await store_pending(one.db, one.settings, 20)
    attempts: RelayCount = Counter()
    count_starts(one.starter, attempts)
    count_starts(two.starter, attempts)
    started = await asyncio.gather(one.starter.relay_once(), two.starter.relay_once())
    assert sum(started) == 20 and await pending(one.db, ids) == 0
    assert sorted(attempts.values()) == [1] * 20
