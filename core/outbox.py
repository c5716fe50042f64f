"""Starting the workflows of accepted reports: the outbox relay.

A report and its outbox row are stored before the citizen gets 202; starting the workflow
comes after, by the request itself, which then marks the row started. When that start
fails (Temporal unreachable, slow) the row stays pending and `relay_once` (every
settings.relay_interval_s in each API process, and `canhbao relay-once`) starts it later
with the same workflow id, so a workflow is started once whoever starts it.

Each pending row is started by one relay: a relay *claims* the rows it starts, pushing
their `next_attempt_at` CLAIM_S ahead in the same statement that picks them
(`_claim`), so other relays (other API processes) skip them. The row's `next_attempt_at`
says when a relay may try it:

- a new row gets `now + REQUEST_GRACE_S` when its request is about to start it (the relay
  does not race the request), or `now` when the request will not (Temporal failing);
- a request whose start failed hands the row over at once (`now`);
- a relay's failed start backs off (2, 4, 8, then 10 s);
- a claim whose relay died runs out after CLAIM_S, and another relay takes the row.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import structlog
from prometheus_client import Counter
from sqlalchemy import Select, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
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
# A new row is its request's for this long: longer than the request's own start (its
# 2 s RPC timeout plus a second) and the commit that marks it, with room for clocks of
# several API hosts that disagree by a few seconds.
REQUEST_GRACE_S = 10.0
# A relay's claim on the rows of one pass: longer than a pass's starts (16 at a time,
# each at most START_TIMEOUT_S + 1).
CLAIM_S = 60.0
REPORTS_STARTED = Counter(
    "canhbao_intake_workflows_started_total",
    "Incident workflows started, by the request itself or by the outbox relay", ["by"])


class StartUnconfirmed(TemporalUnavailable):
    """A direct start got no answer in time: the workflow may or may not have started."""


# RPC outcomes after which the server may have done the call (a refused connection,
# UNAVAILABLE, is taken for "not done").
_UNCONFIRMED = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED, RPCStatusCode.UNKNOWN)


class _StartFailed(Exception):
    """A start that did not happen (Temporal unreachable or refused); its reason."""


def outbox_row(report_id: str, created_at: datetime, request_starts: bool) -> Outbox:
    """The outbox row of a report being stored. `request_starts`: the request will start
    the workflow right after its commit, so relays leave the row alone for
    REQUEST_GRACE_S; otherwise it is theirs at once."""
    now = utcnow()
    first = now + timedelta(seconds=REQUEST_GRACE_S) if request_starts else now
    return Outbox(report_id=report_id, created_at=created_at, next_attempt_at=first)


@dataclass
class OutboxMarks:
    """Ids whose workflow was started but whose outbox row could not be marked then (the
    database was busy or unreachable); the next relay pass writes them."""

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
        running ("existing"); None when it could not. `by` "relay" is a relay's claimed
        row; anything else is a request, whose failure hands the row to the relays at
        once. Database failures are logged, never raised: the row stays pending, or
        its mark waits in `marks` for the next relay pass."""
        try:
            outcome = await self._start(incident_id, payload, by, timeout_s)
        except _StartFailed as exc:
            log.warning("workflow start failed", incident_id=incident_id, by=by,
                        error=str(exc))
            await self._note_failure(incident_id, str(exc), hand_over=by != "relay")
            return None
        await self._mark([incident_id])
        return outcome

    async def _start(self, incident_id: str, payload: dict, by: str,
                     timeout_s: float) -> Started:
        try:
            client = await self.temporal.get()
        except TemporalUnavailable as exc:
            raise _StartFailed(str(exc)) from exc
        try:
            await asyncio.wait_for(client.start_workflow(
                INCIDENT_WORKFLOW, IncidentInput.model_validate(payload),
                id=workflow_id(incident_id), task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=timeout_s)), timeout_s + 1)
        except WorkflowAlreadyStartedError:
            self.temporal.note_success()
            return "existing"
        except Exception as exc:  # noqa: BLE001 - the relay retries
            reason = f"{exc.__class__.__name__}: {exc}"
            if isinstance(exc, RPCError | TimeoutError):
                self.temporal.note_failure(reason)
            raise _StartFailed(reason) from exc
        REPORTS_STARTED.labels(by).inc()
        self.temporal.note_success()
        return "started"

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

    async def _mark(self, ids: list[str]) -> bool:
        """Mark the rows of `ids` started. When the database cannot take it now, the ids
        wait in `marks` for the next relay pass (meanwhile a relay that claims one finds
        its workflow running and marks it). Whether it was written."""
        try:
            async with self.db.session() as s:
                await s.execute(update(Outbox).where(col(Outbox.report_id).in_(ids),
                                                     col(Outbox.started_at).is_(None))
                                .values(started_at=utcnow()))
                await s.commit()
        except SQLAlchemyError as exc:
            self.marks.started.update(ids)
            log.warning("outbox mark deferred", count=len(ids), error=_brief(exc))
            return False
        self.marks.started.difference_update(ids)
        return True

    async def flush_started(self) -> int:
        """Write the outbox marks that could not be written when their workflows
        started."""
        ids = list(self.marks.started)
        if not ids or not await self._mark(ids):
            return 0
        return len(ids)

    async def _note_failure(self, incident_id: str, reason: str, hand_over: bool) -> None:
        """Count a failed start on the pending row: due again at once when a request
        hands it over (`hand_over`), else after a back-off. A database failure here
        leaves the row as it was (its grace or claim runs out)."""
        try:
            async with self.db.session() as s:
                row = await s.get(Outbox, incident_id)
                if row is None or row.started_at is not None:
                    return
                row.attempts += 1
                row.last_error = reason[:2000]
                wait = 0 if hand_over else min(2 ** row.attempts, 10)
                row.next_attempt_at = utcnow() + timedelta(seconds=wait)
                s.add(row)
                await s.commit()
        except SQLAlchemyError as exc:
            log.warning("outbox failure not recorded", incident_id=incident_id,
                        error=_brief(exc))

    async def pending(self, report_id: str) -> bool:
        """Whether the report's workflow is not known to be started yet."""
        if report_id in self.marks.started:
            return False
        async with self.db.session() as s:
            row = await s.get(Outbox, report_id)
        return row is not None and row.started_at is None

    async def _claim(self, batch: int) -> list[tuple[str, dict]]:
        """Claim up to `batch` pending rows that are due (oldest first) for this relay,
        and read their reports. One statement picks and claims them, so two relays
        never claim one row: on PostgreSQL `UPDATE … WHERE report_id IN (SELECT … FOR
        UPDATE SKIP LOCKED) RETURNING`, rows another relay is claiming being skipped, not
        waited for. SQLite has one writer at a time, so there the same conditional
        UPDATE (SQLite has no FOR UPDATE: SQLAlchemy leaves it out) is enough."""
        now = utcnow()
        due = (_due(now).order_by(col(Outbox.created_at)).limit(batch)
               .with_for_update(skip_locked=True))
        async with self.db.session() as s:
            ids = list((await s.execute(
                update(Outbox).where(col(Outbox.report_id).in_(due.scalar_subquery()))
                .values(next_attempt_at=now + timedelta(seconds=CLAIM_S))
                .returning(col(Outbox.report_id)))).scalars().all())
            rows = (await s.execute(select(col(Report.id), col(Report.payload)).where(
                col(Report.id).in_(ids)).order_by(col(Report.created_at)))).all() if ids else []
            await s.commit()
        return [(r[0], r[1]) for r in rows]

    async def relay_once(self, batch: int = 200, concurrency: int = 16) -> int:
        """Start the workflows of reports whose outbox row is pending and due, each
        claimed by this pass (`_claim`). Returns how many were started (or found
        running). Safe to run in several processes at once: each row is started by one."""
        await self.flush_started()
        async with self.db.session() as s:  # nothing due: no need to reach Temporal
            if (await s.execute(_due(utcnow()).limit(1))).first() is None:
                return 0
        if not await self.temporal.reachable():
            return 0  # claimed now, they would wait for their claims to run out
        rows = await self._claim(batch)
        if not rows:
            return 0
        sem = asyncio.Semaphore(concurrency)

        async def one(report_id: str, payload: dict) -> bool:
            async with sem:
                return await self.start(report_id, payload, by="relay")

        started = sum(await asyncio.gather(*(one(r, p) for r, p in rows)))
        if started:
            log.info("relay started workflows", count=started, pending=len(rows) - started)
        return started


def _due(now: datetime) -> Select[str]:
    """The ids of pending rows a relay may try at `now`."""
    return select(col(Outbox.report_id)).where(
        col(Outbox.started_at).is_(None),
        or_(col(Outbox.next_attempt_at).is_(None), col(Outbox.next_attempt_at) <= now))


def _brief(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:200]}"


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
                            error=_brief(exc))
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
