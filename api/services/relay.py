"""Starting the workflows of accepted reports (the outbox relay).

A report and its outbox row are stored before the citizen gets 202; starting the workflow
comes after. When Temporal is unreachable the outbox row stays pending and `relay_once`
(every settings.relay_interval_s in the API process, and `canhbao relay-once`) starts it
later with the same workflow id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import structlog
from sqlalchemy import or_, select, update
from sqlmodel import col

from api.cases import CALL_TIMEOUT_S, CaseUnavailable
from api.infra import Infra
from api.metrics import REPORTS_STARTED
from core.db import Database
from core.settings import Settings
from schema.payloads import IncidentInput
from schema.tables import Outbox, Report, utcnow

log = structlog.get_logger(__name__)


async def start_workflow_for(infra: Infra, incident_id: str, payload: dict,
                             by: str = "relay", timeout_s: float = CALL_TIMEOUT_S) -> bool:
    """Start the incident's workflow (idempotent: an existing one counts as started) and
    mark the outbox row. False when Temporal could not be reached or refused."""
    marks = infra.marks
    if by == "relay" and incident_id in marks.starting:
        return False  # the request that accepted it is starting it right now
    marks.starting.add(incident_id)
    try:
        return await _start(infra, incident_id, payload, by, timeout_s)
    finally:
        marks.starting.discard(incident_id)


async def _start(infra: Infra, incident_id: str, payload: dict, by: str,
                 timeout_s: float) -> bool:
    try:
        if await infra.cases.start(IncidentInput.model_validate(payload),
                                   infra.settings.task_queue, timeout_s):
            REPORTS_STARTED.labels(by).inc()
    except CaseUnavailable as exc:
        if not exc.reached:
            log.warning("workflow start deferred", incident_id=incident_id, error=exc.reason)
            return False
        await _record_failure(infra.db, incident_id, exc.reason)
        log.warning("workflow start failed", incident_id=incident_id, error=exc.reason)
        return False
    except Exception as exc:  # noqa: BLE001 - the relay retries
        reason = f"{exc.__class__.__name__}: {exc}"
        await _record_failure(infra.db, incident_id, reason)
        log.warning("workflow start failed", incident_id=incident_id, error=reason)
        return False
    if by == "request":
        # Marked in batches by the relay: one commit less per report. If the process dies
        # first, the relay starts it again, finds it running, and marks it then.
        infra.marks.started.add(incident_id)
        return True
    await mark_started(infra.db, [incident_id])
    return True


async def mark_started(db: Database, ids: list[str]) -> None:
    """Write the outbox rows of `ids` as started."""
    async with db.session() as s:
        await s.execute(update(Outbox).where(col(Outbox.report_id).in_(ids),
                                             col(Outbox.started_at).is_(None))
                        .values(started_at=utcnow()))
        await s.commit()


async def flush_started(infra: Infra) -> int:
    """Write the outbox marks of workflows that requests started."""
    pending = infra.marks.started
    if not pending:
        return 0
    ids = list(pending)
    await mark_started(infra.db, ids)
    pending.difference_update(ids)
    return len(ids)


async def _record_failure(db: Database, incident_id: str, reason: str) -> None:
    async with db.session() as s:
        row = await s.get(Outbox, incident_id)
        if row is None or row.started_at is not None:
            return
        row.attempts += 1
        row.last_error = reason[:2000]
        row.next_attempt_at = utcnow() + timedelta(seconds=min(2 ** row.attempts, 10))
        s.add(row)
        await s.commit()


async def relay_once(infra: Infra, batch: int = 200, concurrency: int = 16) -> int:
    """Start the workflows of reports whose outbox row is still pending. Returns how many
    were started (or found already running). Safe to run in several processes at once."""
    await flush_started(infra)
    now = utcnow()
    async with infra.db.session() as s:
        rows = (await s.execute(
            select(col(Outbox.report_id), col(Report.payload))
            .join(Report, col(Report.id) == col(Outbox.report_id))
            .where(col(Outbox.started_at).is_(None),
                   or_(col(Outbox.next_attempt_at).is_(None),
                       col(Outbox.next_attempt_at) <= now))
            .order_by(col(Outbox.created_at)).limit(batch))).all()
    if not rows:
        return 0
    if not await infra.temporal.reachable():
        return 0
    sem = asyncio.Semaphore(concurrency)

    async def one(report_id: str, payload: dict) -> bool:
        async with sem:
            return await start_workflow_for(infra, report_id, payload, by="relay")

    results = await asyncio.gather(*(one(r[0], r[1]) for r in rows))
    started = sum(results)
    if started:
        log.info("relay started workflows", count=started, pending=len(rows) - started)
    return started


async def relay_forever(current: Callable[[], Infra]) -> None:
    """The API process's background relay loop; `current()` gives the infra for each pass
    (the app's Temporal holder may be replaced while it runs)."""
    while True:
        infra = current()
        try:
            await relay_once(infra)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep relaying
            log.exception("relay pass failed")
        await asyncio.sleep(infra.settings.relay_interval_s)


async def run_relay_once_standalone(settings: Settings) -> int:
    """One relay pass outside the API process (`canhbao relay-once`)."""
    infra = Infra.open(settings, connect_timeout_s=10)
    try:
        return await relay_once(infra, batch=10_000)
    finally:
        await infra.close()
