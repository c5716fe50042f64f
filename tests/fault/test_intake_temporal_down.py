"""Intake while Temporal is unreachable: every report is accepted (202), kept with an
outbox row, and reaches its workflow once Temporal is back, through the relay."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from sqlalchemy import func, select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from schema.ids import workflow_id
from schema.payloads import IncidentState
from schema.tables import Attachment, Incident, Outbox
from tests.api.conftest import Stack, eventually


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _pending(stack: Stack, ids: list[str]) -> int:
    async with stack.infra.db.session() as s:
        return (await s.execute(select(func.count()).select_from(Outbox).where(
            Outbox.report_id.in_(ids), Outbox.started_at.is_(None)))).scalar_one()


async def _no_pending(stack: Stack, ids: list[str]) -> bool:
    return await _pending(stack, ids) == 0


async def _all_projected(stack: Stack, ids: list[str]) -> bool:
    async with stack.infra.db.session() as s:
        n = (await s.execute(select(func.count()).select_from(Incident).where(
            Incident.id.in_(ids)))).scalar_one()
    return n == len(ids)


async def test_reports_while_temporal_unreachable_then_relayed(
        make_stack, temporal_env: WorkflowEnvironment) -> None:
    stack = await make_stack()
    # Point the API at a port where nothing listens.
    stack.infra.temporal.point_at(f"127.0.0.1:{_free_port()}")
    photo = await stack.upload("jpeg")
    answers = []
    for i in range(4):
        extra = {"attachments": [photo["attachment_id"]]} if i == 0 else {}
        r = await stack.client.post("/api/v1/reports", json=stack.report_body(**extra))
        assert r.status_code == 202, r.text
        answers.append(r.json())
    ids = [a["incident_id"] for a in answers]
    assert await _pending(stack, ids) == 4
    # The citizen can already see the report; changing it waits for Temporal.
    view = (await stack.client.get(f"/api/v1/track/{answers[1]['tracking_token']}")).json()
    assert view["state"] == "received" and view["tracking_code"] == answers[1]["tracking_code"]
    r = await stack.client.post(f"/api/v1/track/{answers[1]['tracking_token']}/cancel", json={})
    assert r.status_code == 503 and r.json()["error"] == "temporal_unavailable"
    assert (await stack.client.get("/readyz")).json()["down"] == ["temporal"]
    # A resubmission while down is still the same report.
    again = await stack.client.post("/api/v1/reports", json={
        **stack.report_body(), "report_id": ids[2]})
    assert again.json() == answers[2]
    assert await stack.infra.starter.relay_once() == 0

    # Temporal is back: the background relay starts every workflow.
    stack.infra.temporal.point_at(temporal_env.client.service_client.config.target_host)

    async def relayed() -> bool:
        return await _pending(stack, ids) == 0
    await eventually(relayed, 15)
    await eventually(lambda: _all_projected(stack, ids), 15)
    client = temporal_env.client
    for a in answers:
        case = await client.get_workflow_handle(workflow_id(a["incident_id"])).query(
            "case", result_type=IncidentState)
        assert case.tracking_code == a["tracking_code"]
    assert case.state.value == "received"
    async with stack.infra.db.session() as s:
        attached = await s.get(Attachment, photo["attachment_id"])
    assert attached is not None and attached.incident_id == ids[0]


async def test_temporal_stopped_and_started_again(make_stack, pg_url: str) -> None:
    """A real dev server is stopped under the API and started again on the same port."""
    from worker import build_worker

    binary = str(Path(sys.executable).parent / "temporal")
    port = _free_port()
    env = await WorkflowEnvironment.start_local(
        port=port, dev_server_existing_path=binary, data_converter=pydantic_data_converter,
        ui=False, dev_server_log_level="error")
    stack = await make_stack(with_worker=False, TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    db = Database(pg_url, pool_size=3)
    try:
        first = await stack.submit()
        await eventually(lambda: _no_pending(stack, [first["incident_id"]]))
        await env.shutdown()  # Temporal goes away under a connected client
        answers = [await stack.submit() for _ in range(3)]
        ids = [a["incident_id"] for a in answers]
        assert await _pending(stack, ids) == 3
        env = await WorkflowEnvironment.start_local(
            port=port, dev_server_existing_path=binary,
            data_converter=pydantic_data_converter, ui=False, dev_server_log_level="error")
        async with build_worker(env.client, stack.settings, db):
            async def relayed() -> bool:
                return await _pending(stack, ids) == 0
            await eventually(relayed, 30)
            await eventually(lambda: _all_projected(stack, ids), 30)
    finally:
        await env.shutdown()
        await db.dispose()


async def test_cli_relay_once_starts_what_the_api_could_not(make_stack) -> None:
    """`canhbao relay-once` (run_relay_once_standalone) in another process's shoes."""
    from core.outbox import run_relay_once_standalone

    stack = await make_stack(with_worker=False)
    stack.infra.temporal.point_at(f"127.0.0.1:{_free_port()}")
    ids = [(await stack.submit())["incident_id"] for _ in range(2)]
    assert await _pending(stack, ids) == 2
    assert await run_relay_once_standalone(stack.settings) >= 2
    assert await _pending(stack, ids) == 0
