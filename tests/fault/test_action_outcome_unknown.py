"""A staff action while no worker runs the workflow: the update cannot finish, so the API
answers 503 with Retry-After ("outcome unknown, try again with the same key") instead of
a 500; once a worker is back, the same key gets the real answer and the action is
applied once."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from schema.tables import IncidentEvent
from tests.api.conftest import Stack, eventually


async def test_action_without_a_worker_then_retried_with_the_same_key(
        make_stack, temporal_env: WorkflowEnvironment,
        worker_db: Database) -> None:
    from worker import build_worker

    stack: Stack = await make_stack(with_worker=False)
    statuses: list[int] = []

    async def record(response: httpx.Response) -> None:
        statuses.append(response.status_code)
    stack.client.event_hooks["response"].append(record)

    worker = build_worker(temporal_env.client, stack.settings, worker_db)
    async with worker:
        iid = await stack.routed()
    # The worker is gone: nobody runs the workflow's update.
    key = str(uuid.uuid4())
    r = await stack.act(iid, "acknowledge", "officer_a", key=key)
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"] == "outcome_unknown"
    assert "Idempotency-Key" in r.json()["detail"]
    en = await stack.client.post(f"/api/v1/incidents/{iid}/actions/acknowledge", json={},
                                 headers={**stack.auth("officer_a"), "Idempotency-Key": key,
                                          "Accept-Language": "en"})
    assert en.status_code == 503 and "same Idempotency-Key" in en.json()["detail"]

    async with build_worker(temporal_env.client, stack.settings, worker_db):
        async def answered() -> bool:
            again = await stack.act(iid, "acknowledge", "officer_a", key=key)
            assert again.status_code in (200, 503), again.text
            return again.status_code == 200
        await eventually(answered, 60, interval=0.5)
        again = await stack.act(iid, "acknowledge", "officer_a", key=key)
        assert again.status_code == 200 and again.json()["state"] == "acknowledged"
        async with worker_db.session() as s:
            n = (await s.execute(select(func.count()).select_from(IncidentEvent).where(
                IncidentEvent.incident_id == iid,
                IncidentEvent.action == "acknowledge"))).scalar_one()
        assert n == 1
    assert 500 not in statuses
