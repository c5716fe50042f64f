"""A repeated Idempotency-Key returns the first answer, also after the incident ended; the
same key with another request is a 409 that reveals nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from schema.ids import workflow_id
from schema.tables import ActionReceipt, IncidentEvent
from tests.api.conftest import Stack, eventually


async def _closed_workflow(stack: Stack, temporal_env: WorkflowEnvironment, iid: str) -> None:
    handle = temporal_env.client.get_workflow_handle(workflow_id(iid))

    async def ended() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    await eventually(ended, 30)


async def test_repeated_close_after_the_incident_ended(
        stack: Stack, temporal_env: WorkflowEnvironment) -> None:
    iid = await stack.routed()
    assert (await stack.act(iid, "acknowledge", "officer_a")).status_code == 200
    assert (await stack.act(iid, "arrive", "officer_a")).status_code == 200
    key = str(uuid.uuid4())
    body = {"outcome": "resolved", "summary": "Đã xử lý xong"}
    first = await stack.act(iid, "close", "officer_a", body, key=key)
    assert first.status_code == 200, first.text
    await _closed_workflow(stack, temporal_env, iid)  # Temporal's update dedupe is gone

    again = await stack.act(iid, "close", "officer_a", body, key=key)
    assert again.status_code == 200, again.text
    assert again.json() == first.json() and again.headers["ETag"] == first.headers["ETag"]

    # The same key with another body, action, user or If-Match: 409, nothing revealed.
    other = await stack.act(iid, "close", "officer_a", {**body, "summary": "Khác"}, key=key)
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert "summary" not in other.text
    by_other = await stack.act(iid, "close", "supervisor", body, key=key)
    assert by_other.status_code == 409 and by_other.json()["error"] == "idempotency_key_reused"
    # A new key on the ended incident: the usual refusal.
    fresh = await stack.act(iid, "close", "officer_a", body, key=str(uuid.uuid4()))
    assert fresh.status_code == 409 and fresh.json()["error"] == "illegal_transition"

    # The close was applied but its answer never kept (the API timed out or died): the
    # workflow's event carries the key, so the repeat is still told it was done.
    async with stack.infra.db.session() as s:
        await s.execute(delete(ActionReceipt).where(ActionReceipt.incident_id == iid))
        await s.commit()
        events = (await s.execute(select(IncidentEvent).where(
            IncidentEvent.incident_id == iid, IncidentEvent.action == "close"))).scalars().all()
    assert [e.data.get("request") for e in events] == [f"close:{key}"]
    late = await stack.act(iid, "close", "officer_a", body, key=key)
    assert late.status_code == 200, late.text
    assert late.json()["state"] == "closed"
    assert late.json()["timeline"] == first.json()["timeline"]


async def test_a_refusal_is_the_first_answer_too(stack: Stack) -> None:
    iid = await stack.routed()
    key = str(uuid.uuid4())
    body = {"outcome": "resolved", "summary": "Xong"}
    early = await stack.act(iid, "close", "officer_a", body, key=key)  # not there yet
    assert early.status_code == 409, early.text
    assert (await stack.act(iid, "arrive", "officer_a")).status_code == 200
    # Closing would now be allowed, but this key's answer was the refusal.
    again = await stack.act(iid, "close", "officer_a", body, key=key)
    assert again.status_code == 409 and again.json() == early.json()
    done = await stack.act(iid, "close", "officer_a", body, key=str(uuid.uuid4()))
    assert done.status_code == 200 and done.json()["state"] == "closed"
