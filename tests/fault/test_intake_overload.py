"""Intake under a burst (issue #19): every connection of the pool busy is overload, not an
outage. A pool checkout timeout sheds the request with 503 `overloaded` and Retry-After,
stores nothing and never switches to the no-database path; a report whose commit went
through is answered 202 whatever fails after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.services import submission
from core.db import Database
from schema.ids import TRACKING_LENGTH, workflow_id
from schema.tables import Outbox, Report
from tests.api.conftest import Stack


@asynccontextmanager
async def pool_held(db: Database, n: int) -> AsyncIterator[None]:
    """Every one of the pool's `n` connections checked out, as by requests in a burst."""
    conns = [await db.engine.connect() for _ in range(n)]
    try:
        yield
    finally:
        for conn in conns:
            await conn.close()


async def _stored(stack: Stack, report_id: str) -> int:
    async with stack.infra.db.session() as s:
        return int((await s.execute(select(func.count()).select_from(Report).where(
            Report.id == report_id))).scalar_one())


async def test_a_busy_pool_sheds_reports_and_is_no_outage(
        make_stack: Callable[..., Awaitable[Stack]],
        temporal_env: WorkflowEnvironment) -> None:
    # One connection and one overflow: two requests' worth.
    stack = await make_stack(with_worker=False, CANHBAO_DB_POOL_SIZE=1,
                             CANHBAO_DB_POOL_TIMEOUT_S=1, CANHBAO_RELAY_INTERVAL_S=3600)
    body = stack.report_body()
    async with pool_held(stack.infra.db, 2):
        r = await stack.client.post("/api/v1/reports", json=body)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "overloaded" and int(r.headers["Retry-After"]) >= 1
        assert "quá tải" in r.json()["detail"]
        en = await stack.client.post("/api/v1/reports", json=body,
                                     headers={"Accept-Language": "en"})
        assert en.status_code == 503 and "overloaded" in en.json()["detail"]
        # Any other call that needs a connection is shed the same way, never 500.
        staff = await stack.client.get("/api/v1/incidents", headers=stack.auth("operator"))
        assert staff.status_code == 503 and staff.json()["error"] == "overloaded"
        assert staff.headers["Retry-After"]
        # The no-JS form comes back as typed, with the same answer.
        form = await stack.client.post("/report", data={
            "report_id": body["report_id"], "category": "crime",
            "description": body["description"], "lat": "10.7731", "lon": "106.7012"})
        assert form.status_code == 503 and form.headers["Retry-After"]
        assert form.headers["content-type"].startswith("text/html")
        assert "quá tải" in form.text and body["description"] in form.text
        # Not an outage: intake keeps using the database.
        assert not stack.infra.db.recently_unreachable()
    # Nothing was stored, and no workflow was started without the database.
    assert await _stored(stack, body["report_id"]) == 0
    with pytest.raises(RPCError):
        await temporal_env.client.get_workflow_handle(workflow_id(body["report_id"])).describe()
    # Sent again once connections are free: accepted through the database, once.
    r = await stack.client.post("/api/v1/reports", json=body)
    assert r.status_code == 202, r.text
    assert len(r.json()["tracking_code"]) == TRACKING_LENGTH
    assert await _stored(stack, body["report_id"]) == 1


FAILURES = {
    "pool busy": sa_exc.TimeoutError("QueuePool limit of size 1 overflow 1 reached"),
    "connection lost": sa_exc.OperationalError(
        "UPDATE intake_outbox", {}, psycopg.OperationalError("server closed the connection")),
}


class Refusing:
    """A Temporal client whose starts fail as under load (no answer in time)."""

    async def start_workflow(self, *_: Any, **__: Any) -> None:
        raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")


@pytest.mark.parametrize("temporal_up", [False, True], ids=["start fails", "temporal up"])
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_a_stored_report_is_answered_202_whatever_fails_after_its_commit(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch,
        failure: str, temporal_up: bool) -> None:
    """Once the report's transaction committed, every database call fails (the start's
    failure record, the outbox mark): the answer is still 202 with the stored report,
    never 503 (issue #19: 148 reports told 503 were stored, when a failed start's record
    found no connection and the request went on to the no-database path)."""
    stack = await make_stack(with_worker=False, CANHBAO_RELAY_INTERVAL_S=3600)
    if not temporal_up:
        stack.infra.temporal.use(Refusing())  # type: ignore[arg-type]
    db = stack.infra.db
    committed = False
    real_session = db.session

    class Received:  # REPORTS_RECEIVED is counted right after the report's commit
        def labels(self, *_: Any) -> Received:
            return self

        def inc(self) -> None:
            nonlocal committed
            committed = True

    @asynccontextmanager
    async def session() -> AsyncIterator[Any]:
        if committed:
            raise FAILURES[failure]
        async with real_session() as s:
            yield s

    monkeypatch.setattr(submission, "REPORTS_RECEIVED", Received())
    monkeypatch.setattr(db, "session", session)
    body = stack.report_body()
    r = await stack.client.post("/api/v1/reports", json=body)
    monkeypatch.undo()
    assert committed
    assert r.status_code == 202, r.text
    async with db.session() as s:
        report = await s.get(Report, body["report_id"])
        outbox = await s.get(Outbox, body["report_id"])
    assert report is not None and outbox is not None
    assert r.json()["tracking_token"] == report.tracking_token
    assert r.json()["tracking_code"] == report.tracking_code
    if temporal_up:
        # Started, but the mark could not be written: the next relay pass writes it.
        assert outbox.started_at is None and await stack.infra.starter.pending(report.id) is False
        await stack.infra.starter.relay_once()
        async with db.session() as s:
            marked = await s.get(Outbox, body["report_id"])
        assert marked is not None and marked.started_at is not None
