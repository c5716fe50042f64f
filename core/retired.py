"""Open executions of retired workflow types, found and ended (`canhbao retired-workflows`).

A workflow type is retired when no worker registers it any more: its open executions then
wait for a worker that never comes, and nothing tells anyone. Before a type's code is
removed its executions are ended this way (listed first, then terminated with a reason
that stays in their history). `schema.payloads.RETIRED_WORKFLOW_TYPES` names them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode


@dataclass(frozen=True)
class OpenExecution:
    workflow_id: str
    run_id: str
    workflow_type: str
    started: datetime


def _query(types: tuple[str, ...]) -> str:
    named = " OR ".join(f'WorkflowType = "{t}"' for t in types)
    return f'({named}) AND ExecutionStatus = "Running"'


async def open_executions(client: Client, types: tuple[str, ...]) -> list[OpenExecution]:
    """The running executions of `types` in the client's namespace, oldest first (as the
    visibility store has them: a start of the last second may be missing)."""
    found = [OpenExecution(ex.id, ex.run_id, ex.workflow_type, ex.start_time)
             async for ex in client.list_workflows(_query(types))]
    return sorted(found, key=lambda ex: ex.started)


async def terminate(client: Client, executions: list[OpenExecution], reason: str) -> int:
    """Terminate each of `executions` (that run exactly) with `reason`; how many were still
    running and are now terminated."""
    ended = 0
    for ex in executions:
        handle = client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id)
        try:
            await handle.terminate(reason=reason)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            continue  # it ended meanwhile
        ended += 1
    return ended
