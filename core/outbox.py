"""Starting the workflows of accepted reports: the outbox relay.

A report and its outbox row are stored before the citizen gets 202; starting the workflow
comes after. When Temporal is unreachable the outbox row stays pending and `relay_once`
(every settings.relay_interval_s in the API process, and `canhbao relay-once`) starts it
later with the same workflow id, so a workflow is started once whoever starts it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import structlog
from prometheus_client import Counter
from sqlalchemy import or_, select, update
from sqlmodel import col
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from core.db import Database, overloaded, unreachable
from core.settings import Settings
from core.temporal import TemporalHolder, TemporalUnavailable
from schema.ids import workflow_id
from schema.payloads import INCIDENT_WORKFLOW, IncidentInput
from schema.tables import Outbox, Report, utcnow

log = structlog.get_logger(__name__)

Started = Literal["started", "existing"]

START_TIMEOUT_S = 8.0
REPORTS_STARTED = Counter(
    "canhbao_intake_workflows_started_total",
    "Incident workflows started, by the request itself or by the outbox relay", ["by"])


class StartUnconfirmed(TemporalUnavailable):
    """A direct start got no answer in time: the workflow may or may not have started."""


# RPC outcomes after which the server may have done the call (a refused connection,
# UNAVAILABLE, is taken for "not done").
_UNCONFIRMED = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN)


@dataclass
class OutboxMarks:
    """Ids being started now (`starting`) and ids a request started whose outbox row is
    not yet marked (`started`; the relay writes them in batches)."""

    starting: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)


@dataclass
class WorkflowStarter:
    """Starts incident workflows and keeps their outbox rows."""

    settings: Settings
    db: Database
    temporal: TemporalHolder
    marks: OutboxMarks

    async def start(self, incident_id: str, payload: dict, by: str = "relay",
                    timeout_s: float = START_TIMEOUT_S) -> bool:
        """Start the incident's workflow (an existing one counts as started) and mark the
        outbox row. False when Temporal could not be reached or refused (the relay tries
        again later)."""
        return await self.start_checked(incident_id, payload, by, timeout_s) is not None

    async def start_checked(self, incident_id: str, payload: dict, by: str = "relay",
                            timeout_s: float = START_TIMEOUT_S) -> Started | None:
        """As `start`, telling whether this call started it ("started") or found it
        running ("existing"); None when it could not."""
        if by == "relay" and incident_id in self.marks.starting:
            return None  # the request that accepted it is starting it right now
        self.marks.starting.add(incident_id)
        try:
            outcome = await self._start(incident_id, payload, by, timeout_s)
            if outcome is None:
                return None
            if by == "request":
                # Marked in batches by the relay: one commit less per report. If the process
                # dies first, the relay starts it again, finds it running, marks it then.
                self.marks.started.add(incident_id)
                return outcome
        finally:
            self.marks.starting.discard(incident_id)
        await self._mark([incident_id])
        return outcome

    async def _start(self, incident_id: str, payload: dict, by: str,
                     timeout_s: float) -> Started | None:
        try:
            client = await self.temporal.get()
        except TemporalUnavailable as exc:
            log.warning("workflow start deferred", incident_id=incident_id, error=str(exc))
            return None
        outcome: Started = "started"
        try:
            await asyncio.wait_for(client.start_workflow(
                INCIDENT_WORKFLOW, IncidentInput.model_validate(payload),
                id=workflow_id(incident_id), task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=timeout_s)), timeout_s + 1)
            REPORTS_STARTED.labels(by).inc()
        except WorkflowAlreadyStartedError:
            outcome = "existing"
        except Exception as exc:  # noqa: BLE001 - the relay retries
            reason = f"{exc.__class__.__name__}: {exc}"
            if isinstance(exc, RPCError | TimeoutError):
                self.temporal.note_failure(reason)
            await self._record_failure(incident_id, reason)
            log.warning("workflow start failed", incident_id=incident_id, error=reason)
            return None
        self.temporal.note_success()
        return outcome

    async def start_direct(self, inp: IncidentInput, timeout_s: float = START_TIMEOUT_S
                           ) -> IncidentInput:
        """Start the workflow of a report the database could not take (no outbox row:
        Temporal keeps it) with the id the relay would use. Returns the input the
        workflow runs with: `inp`, or the first input when it was already started (a
        resubmission; the caller compares them). Raises TemporalUnavailable when the
        server cannot be reached, StartUnconfirmed when it did not confirm in time (then
        it may or may not have started: the same report_id again finds it)."""
        client = await self.temporal.get()
        wid = workflow_id(inp.incident_id)
        try:
            await asyncio.wait_for(client.start_workflow(
                INCIDENT_WORKFLOW, inp, id=wid, task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=timeout_s)), timeout_s + 1)
        except WorkflowAlreadyStartedError:
            return await self.first_input(inp.incident_id, timeout_s)
        except (RPCError, TimeoutError) as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
            self.temporal.note_failure(reason)
            if isinstance(exc, TimeoutError) or exc.status in _UNCONFIRMED:
                raise StartUnconfirmed(reason) from exc
            raise TemporalUnavailable(reason) from exc
        REPORTS_STARTED.labels("direct").inc()
        self.temporal.note_success()
        return inp

    async def first_input(self, incident_id: str, timeout_s: float = START_TIMEOUT_S
                          ) -> IncidentInput:
        """The input the current run of the incident's workflow started with (the first
        event of its history: after a continue-as-new, the compact input without the
        report). Raises TemporalUnavailable when it cannot be read now."""
        wid = workflow_id(incident_id)
        client = await self.temporal.get()
        try:
            async def first() -> IncidentInput:
                async for ev in client.get_workflow_handle(wid).fetch_history_events(
                        rpc_timeout=timedelta(seconds=timeout_s)):
                    attrs = ev.workflow_execution_started_event_attributes
                    values = await client.data_converter.decode(
                        attrs.input.payloads, [IncidentInput])
                    return IncidentInput.model_validate(values[0])
                raise TemporalUnavailable(f"{wid} has no history")
            return await asyncio.wait_for(first(), timeout_s + 1)
        except (RPCError, TimeoutError) as exc:
            raise TemporalUnavailable(f"{exc.__class__.__name__}: {exc}") from exc

    async def _mark(self, ids: list[str]) -> None:
        async with self.db.session() as s:
            await s.execute(update(Outbox).where(col(Outbox.report_id).in_(ids),
                                                 col(Outbox.started_at).is_(None))
                            .values(started_at=utcnow()))
            await s.commit()

    async def flush_started(self) -> int:
        """Write the outbox marks of workflows that requests started."""
        ids = list(self.marks.started)
        if not ids:
            return 0
        await self._mark(ids)
        self.marks.started.difference_update(ids)
        return len(ids)

    async def _record_failure(self, incident_id: str, reason: str) -> None:
        async with self.db.session() as s:
            row = await s.get(Outbox, incident_id)
            if row is None or row.started_at is not None:
                return
            row.attempts += 1
            row.last_error = reason[:2000]
            row.next_attempt_at = utcnow() + timedelta(seconds=min(2 ** row.attempts, 10))
            s.add(row)
            await s.commit()

    async def pending(self, report_id: str) -> bool:
        """Whether the report's workflow is not known to be started yet."""
        if report_id in self.marks.started:
            return False
        async with self.db.session() as s:
            row = await s.get(Outbox, report_id)
        return row is not None and row.started_at is None

    async def relay_once(self, batch: int = 200, concurrency: int = 16) -> int:
        """Start the workflows of reports whose outbox row is still pending. Returns how
        many were started (or found running). Safe to run in several processes at once."""
        await self.flush_started()
        now = utcnow()
        async with self.db.session() as s:
            rows = (await s.execute(
                select(col(Outbox.report_id), col(Report.payload))
                .join(Report, col(Report.id) == col(Outbox.report_id))
                .where(col(Outbox.started_at).is_(None),
                       or_(col(Outbox.next_attempt_at).is_(None),
                           col(Outbox.next_attempt_at) <= now))
                .order_by(col(Outbox.created_at)).limit(batch))).all()
        if not rows or not await self.temporal.reachable():
            return 0
        sem = asyncio.Semaphore(concurrency)

        async def one(report_id: str, payload: dict) -> bool:
            async with sem:
                return await self.start(report_id, payload, by="relay")

        started = sum(await asyncio.gather(*(one(r[0], r[1]) for r in rows)))
        if started:
            log.info("relay started workflows", count=started, pending=len(rows) - started)
        return started


async def relay_forever(starter: WorkflowStarter) -> None:
    """The API process's background relay loop, one pass every `relay_interval_s`."""
    while True:
        try:
            await starter.relay_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - keep relaying
            if unreachable(exc) or overloaded(exc):
                log.warning("relay pass skipped: database unreachable or busy",
                            error=f"{exc.__class__.__name__}: {str(exc)[:200]}")
            else:
                log.exception("relay pass failed")
        await asyncio.sleep(starter.settings.relay_interval_s)


async def run_relay_once_standalone(settings: Settings) -> int:
    """One relay pass outside the API process (`canhbao relay-once`)."""
    db = Database.from_settings(settings)
    starter = WorkflowStarter(settings, db, TemporalHolder(settings, connect_timeout_s=10),
                              OutboxMarks())
    try:
        return await starter.relay_once(batch=10_000)
    finally:
        await db.dispose()
