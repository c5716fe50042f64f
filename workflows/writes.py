"""The incident workflow's side effects, written in the order they were queued: one local
activity each (the projection of an event, an alert), retried forever, one at a time
under a lock by whichever handler drains first.

Only the workflow's own code runs here (no I/O): the commands are the local activities,
in queue order, exactly as when this lived in workflows/incident.py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

# Projections and alerts must land eventually: retry forever, at most every 30 s. Each
# attempt is short, and every retry waits on a durable timer (not in the workflow task).
WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=0,
    non_retryable_error_types=["Invalid"],
)
WRITE_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY_THRESHOLD = timedelta(milliseconds=500)


@dataclass
class _Op:
    """A side effect waiting to be written: one local activity call."""

    n: int
    activity: str
    arg: Any
    summary: str


class Writes:
    """The queue of an incident's side effects (`incident_id` names it in logs)."""

    def __init__(self, incident_id: str) -> None:
        self._incident_id = incident_id
        self._lock = asyncio.Lock()
        self._ops: deque[_Op] = deque()
        self._queued = 0
        self._done = 0

    def enqueue(self, activity: str, arg: Any, summary: str) -> None:
        self._queued += 1
        self._ops.append(_Op(self._queued, activity, arg, summary))

    @property
    def pending(self) -> bool:
        return bool(self._ops)

    def drain(self) -> Awaitable[None]:
        """Write queued side effects in order until every one queued by now is written
        (the later ones are the next drainer's)."""
        return self._drain(self._queued)

    async def _drain(self, upto: int) -> None:
        async with self._lock:
            while self._ops and self._done < upto:
                op = self._ops[0]
                try:
                    await workflow.execute_local_activity(
                        op.activity, op.arg, start_to_close_timeout=WRITE_TIMEOUT,
                        retry_policy=WRITE_RETRY, local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                        summary=op.summary)
                except ActivityError as exc:
                    # Only a non-retryable (Invalid) failure gets here: the projection has
                    # recorded it in its dead-letter table; keep the case going.
                    workflow.logger.error("%s failed for incident %s: %s", op.activity,
                                          self._incident_id, exc)
                self._ops.popleft()
                self._done = op.n
