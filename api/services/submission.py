"""Submitting a report, accepted if either store is up.

- The database is up: the report row and its outbox row in one transaction *before* the
  citizen gets 202, then one quick try to start the workflow (core/outbox.py's relay starts
  it later when that fails).
- The database is unreachable (core.db.unreachable, or found so less than
  CANHBAO_DB_RETRY_S ago): the workflow is started at once with the whole report in its
  input, plus the tracking token and fingerprint (schema.payloads.IntakeRecord), under the
  workflow id the relay would use; its projection creates the report row when the database
  returns (activities/projection.py). The tracking code is then drawn without a collision
  check, so it is longer (schema/ids.py). A report naming attachments is refused (503):
  claiming them needs the database, and the client sends it again.
- Both are down: 503 with Retry-After (StoresUnavailable); nothing is stored, the phone keeps
  the report in its queue.
- Every connection of the pool is busy (core.db.overloaded: a checkout timed out): 503
  `overloaded` with Retry-After (ReportOverloaded). Load is shed, nothing is stored, and
  the database is not taken for unreachable: a burst never turns into the no-database path.

The answer tells the truth about storage: a 503 is given only before the report's commit
(nothing stored), or when it cannot be known (the connection broke during the commit, or a
direct start was not confirmed, and the other store cannot take it either): then the 503
is ReportMaybeReceived, and the same report_id again gets the first answer. Once the
commit went through, the answer is 202 whatever fails after it (marking, the start, its
outbox mark: the relay starts it later).

Idempotent on the client's report_id, for the same body only (api/idempotency.py), on both
paths: while the database is down a resubmission finds the started workflow and compares
the fingerprint kept in its input.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from api import abuse, idempotency
from api.abuse import ReportOrigin
from api.errors import ReportMaybeReceived, ReportOverloaded, StoresUnavailable
from api.infra import Infra
from api.metrics import REPORTS_RECEIVED
from api.services.attachments import claim_attachments, release_attachments
from core.db import Database, overloaded, unreachable
from core.outbox import StartUnconfirmed, outbox_row
from core.settings import Settings
from core.temporal import TemporalUnavailable
from schema.ids import (
    TRACKING_ALPHABET,
    TRACKING_LENGTH,
    UNCHECKED_TRACKING_LENGTH,
    make_tracking_code,
)
from schema.payloads import IncidentInput, IntakeRecord
from schema.reports import ReportAccepted, ReportCreate, unique_ids
from schema.tables import Outbox, Report, ReportSource, utcnow

__all__ = ["TRACKING_ALPHABET", "TRACKING_LENGTH", "make_tracking_code",
           "make_tracking_token", "status_url", "submit_report"]

log = structlog.get_logger(__name__)

REQUEST_START_TIMEOUT_S = 2.0  # a citizen waits at most this for the inline start
DIRECT_START_TIMEOUT_S = 5.0  # ... and this for the start that replaces the database


def make_tracking_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def status_url(settings: Settings, token: str, base_url: str | None = None) -> str:
    """The citizen's tracking page for `token`: absolute when a public URL is set, else
    under `base_url` (the request's) when given, else relative."""
    return f"{(settings.public_url or base_url or '').rstrip('/')}/t/{token}"


def _accepted(settings: Settings, incident_id: str, code: str, token: str) -> ReportAccepted:
    return ReportAccepted(incident_id=incident_id, tracking_code=code, tracking_token=token,
                          status_url=status_url(settings, token))


async def _find_report(db: Database, report_id: str) -> Report | None:
    async with db.session() as s:
        return await s.get(Report, report_id)


@dataclass
class _Drawn:
    """The tracking code, token and time of one submission. When a write fails because
    the database went away, it may still have committed: the workflow is then started
    with the same values, so the row and the workflow agree whichever way it went."""

    code: str
    received_at: datetime = field(default_factory=utcnow)
    token: str = field(default_factory=lambda: make_tracking_token())
    committing: bool = False  # a commit was sent: the row may exist with `code`


async def submit_report(infra: Infra, body: ReportCreate, source: str = "web",
                        origin: ReportOrigin | None = None) -> ReportAccepted:
    """Accept a report (202 shape) on whichever store is up (see the module's words).
    With the database up it is counted under its sources (`origin`'s address, the body's
    device_id, the reporter's phone): api/abuse.py marks it as suspected spam past a limit
    (schema/abuse.py), never refuses it; without the database it is not counted.
    The same body.report_id with the same body returns the first answer; with another
    body, idempotency.ReportIdReused (409, nothing revealed). Raises FieldError (422) for
    an unknown or used attachment, StoresUnavailable (503, Retry-After) when neither store
    can take it, or when the database is down and the report names attachments,
    ReportOverloaded (503 `overloaded`, Retry-After) when no database connection was free
    in time, ReportMaybeReceived (503) when whether it was stored cannot be known."""
    db = infra.db
    incident_id = str(body.report_id or uuid.uuid4())
    if db.recently_unreachable():
        drawn = _Drawn(make_tracking_code(UNCHECKED_TRACKING_LENGTH))
    else:
        drawn = _Drawn(make_tracking_code())
        try:
            return await _submit_stored(infra, body, source, incident_id, drawn, origin)
        except SQLAlchemyError as exc:
            # Raised before the report's commit or by it: nothing after it raises these.
            if overloaded(exc):
                # A checkout timed out, so no statement of this session ran: not stored.
                log.warning("report shed: every database connection is busy",
                            incident_id=incident_id)
                raise ReportOverloaded(infra.settings.db_retry_s) from exc
            if not unreachable(exc):
                raise
            db.note_unreachable()
            log.warning("database unreachable: intake goes straight to the workflow",
                        error=f"{exc.__class__.__name__}: {str(exc)[:200]}")
            if not drawn.committing:  # nothing can have been stored: the longer code
                drawn = _Drawn(make_tracking_code(UNCHECKED_TRACKING_LENGTH))
    return await _submit_direct(infra, body, source, incident_id, drawn)


async def _submit_stored(infra: Infra, body: ReportCreate, source: str, incident_id: str,
                         drawn: _Drawn, origin: ReportOrigin | None) -> ReportAccepted:
    settings, db = infra.settings, infra.db
    fingerprint = await idempotency.report_fingerprint(db, body.model_dump(mode="json"),
                                                       unique_ids(body.attachments))
    if body.report_id is not None:
        existing = await _find_report(db, str(body.report_id))
        if existing is not None:
            idempotency.check_same(existing, fingerprint)
            log.info("report resubmitted", incident_id=existing.id)
            return _accepted(settings, existing.id, existing.tracking_code,
                             existing.tracking_token)
    report: Report | None = None
    origin = replace(origin or ReportOrigin(), device=body.device_id)
    phone = body.reporter.phone if body.reporter else None
    sources: list[ReportSource] = []
    # Whether this request starts the workflow after its commit: the relays then leave
    # the outbox row to it for a while (core/outbox.py).
    request_starts = not infra.temporal.recently_failed()
    for attempt in range(5):
        if attempt:
            drawn.code, drawn.token = make_tracking_code(), make_tracking_token()
            drawn.committing = False
        inp = _input(infra, body, source, incident_id, drawn.received_at, drawn.code)
        report = Report(id=incident_id, tracking_code=drawn.code, tracking_token=drawn.token,
                        payload=inp.model_dump(mode="json"), source=source,
                        created_at=drawn.received_at, fingerprint=fingerprint)
        try:
            async with db.session() as s:
                await claim_attachments(s, inp.attachments, incident_id)
                s.add(report)
                sources = abuse.source_rows(incident_id, origin, phone, drawn.received_at)
                s.add_all(sources)
                await s.flush()
                s.add(outbox_row(incident_id, drawn.received_at, request_starts))
                drawn.committing = True
                await s.commit()
            break
        except IntegrityError:
            existing = await _find_report(db, incident_id)
            if existing is not None:  # the same report_id, submitted concurrently
                idempotency.check_same(existing, fingerprint)
                return _accepted(settings, existing.id, existing.tracking_code,
                                 existing.tracking_token)
            report = None  # a tracking code collision: draw again
    if report is None:
        raise RuntimeError("could not allocate a tracking code")
    db.note_reachable()
    REPORTS_RECEIVED.labels(source).inc()
    structlog.contextvars.bind_contextvars(incident_id=incident_id)
    log.info("report accepted", tracking_code=report.tracking_code, source=source,
             attachments=len(inp.attachments))
    return await _after_commit(infra, body, report, sources, request_starts)


async def _after_commit(infra: Infra, body: ReportCreate, report: Report,
                        sources: list[ReportSource], request_starts: bool) -> ReportAccepted:
    """Mark the stored report's sources and start its workflow (when `request_starts`;
    the starter marks the outbox row). The report is stored, so the answer is 202
    whatever fails here (a busy pool, the database gone, Temporal slow: the relay starts
    the workflow later), but for `_adopt` finding another body under the report_id (it
    deletes the row: 409)."""
    answer = _accepted(infra.settings, report.id, report.tracking_code, report.tracking_token)
    try:
        await abuse.mark(infra.db, infra.settings.abuse_policy, report.id, sources,
                         report.created_at)
    except SQLAlchemyError as exc:  # the report is stored: a mark never blocks it
        log.warning("could not mark the report's sources", error=str(exc)[:200])
    if not request_starts:
        return answer
    try:
        started = await infra.starter.start_checked(report.id, report.payload, by="request",
                                                    timeout_s=REQUEST_START_TIMEOUT_S)
        if started == "existing" and body.report_id is not None:
            return await _adopt(infra, report) or answer
    except idempotency.ReportIdReused:
        raise
    except Exception:  # noqa: BLE001 - stored: nothing after the commit turns 202 into 5xx
        log.exception("starting a stored report's workflow failed: the relay will")
    return answer


async def _adopt(infra: Infra, report: Report) -> ReportAccepted | None:
    """The report's workflow was running already: when it was started without the database
    (a resubmission after the database returned, before the projection wrote the row),
    its input is the first answer. The row just stored takes that code and token, and
    the answer is the first one; another body under this report_id is a 409 (the row goes,
    the projection writes the first one). None when the workflow's input says nothing."""
    try:
        running = await infra.starter.first_input(report.id, REQUEST_START_TIMEOUT_S)
    except TemporalUnavailable:
        return None
    if running.intake is None:
        return None
    async with infra.db.session() as s:
        row = await s.get(Report, report.id)
        if row is None:
            return None
        if running.intake.fingerprint != report.fingerprint:
            outbox = await s.get(Outbox, report.id)
            if outbox is not None:
                await s.delete(outbox)
                await s.flush()
            await s.delete(row)
            await s.commit()
            try:  # the row is gone: the answer is 409 whatever happens to its photos
                await release_attachments(
                    infra.db, list(report.payload.get("attachments", [])), report.id)
            except SQLAlchemyError as exc:
                log.warning("could not release the attachments of a refused report",
                            incident_id=report.id, error=str(exc)[:200])
            raise idempotency.ReportIdReused()
        row.tracking_code = running.tracking_code
        row.tracking_token = running.intake.tracking_token
        row.payload = running.model_copy(update={"intake": None}).model_dump(mode="json")
        row.created_at = running.received_at
        try:
            await s.commit()
        except IntegrityError:  # its code was taken meanwhile: the stored answer stands
            return None
    log.info("report resubmitted: the answer given without the database",
             incident_id=report.id)
    return _accepted(infra.settings, report.id, running.tracking_code,
                     running.intake.tracking_token)


def _input(infra: Infra, body: ReportCreate, source: str, incident_id: str,
           received_at: datetime, code: str) -> IncidentInput:
    s = infra.settings
    return body.to_input(incident_id, code, received_at, source, s.sla_scale,
                         s.sla_overrides or None, s.reminders or None)


async def _submit_direct(infra: Infra, body: ReportCreate, source: str, incident_id: str,
                         drawn: _Drawn) -> ReportAccepted:
    """The database is unreachable: the workflow's input carries the report. When its
    commit was on its way (`drawn.committing`) the report may be stored: a refusal then
    says it may have been received (ReportMaybeReceived), not that nothing was stored."""
    settings = infra.settings
    retry_s = settings.db_retry_s
    if body.attachments:
        # Claiming a photo needs the database: the phone keeps the report and retries.
        raise ReportMaybeReceived(retry_s) if drawn.committing else StoresUnavailable(retry_s)
    # No attachments: the fingerprint needs no look-up.
    fingerprint = idempotency.fingerprint(body.model_dump(mode="json"), [])
    inp = _input(infra, body, source, incident_id, drawn.received_at, drawn.code)
    inp.intake = IntakeRecord(tracking_token=drawn.token, fingerprint=fingerprint)
    try:
        running = await infra.starter.start_direct(inp, timeout_s=DIRECT_START_TIMEOUT_S)
    except TemporalUnavailable as exc:
        log.warning("report refused: database and Temporal both unreachable",
                    error=str(exc)[:200], maybe_stored=drawn.committing)
        if drawn.committing or isinstance(exc, StartUnconfirmed):
            raise ReportMaybeReceived(retry_s) from exc  # the same report_id finds it
        raise StoresUnavailable(retry_s) from exc
    if running.intake is None:
        # Started from the database (the relay) or continued as new: the report was
        # received, and its answer is in the database, which is down.
        raise ReportMaybeReceived(retry_s)
    if running.intake.fingerprint != fingerprint:
        raise idempotency.ReportIdReused()
    if running is inp:
        REPORTS_RECEIVED.labels(source).inc()
        log.info("report accepted without the database", incident_id=incident_id,
                 tracking_code=inp.tracking_code, source=source)
    else:
        log.info("report resubmitted without the database", incident_id=incident_id)
    return _accepted(settings, incident_id, running.tracking_code,
                     running.intake.tracking_token)
