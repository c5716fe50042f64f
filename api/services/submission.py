"""Submitting a report: the report row and its outbox row in one transaction *before*
the citizen gets 202, then one quick try to start the workflow (api.services.relay starts
it later when that fails). Idempotent on the client's report_id, for the same body only
(api/idempotency.py)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace

import structlog
from sqlalchemy.exc import IntegrityError

from api import abuse, idempotency
from api.abuse import ReportOrigin
from api.infra import Infra
from api.metrics import REPORTS_RECEIVED
from api.services.attachments import claim_attachments
from core.db import Database
from core.settings import Settings
from schema.reports import ReportAccepted, ReportCreate, unique_ids
from schema.tables import Outbox, Report, ReportSource, utcnow

log = structlog.get_logger(__name__)

# No look-alikes: no 0/O/Q/D-ish pairs, no 1/I/L, 2/Z, 5/S, 8/B.
TRACKING_ALPHABET = "ACEFGHJKMNPRTUVWXY34679"
TRACKING_LENGTH = 8
REQUEST_START_TIMEOUT_S = 2.0  # a citizen waits at most this for the inline start


def make_tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def make_tracking_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def status_url(settings: Settings, token: str) -> str:
    """The citizen's tracking page for `token` (absolute when a public URL is set)."""
    return f"{(settings.public_url or '').rstrip('/')}/t/{token}"


def _accepted(settings: Settings, report: Report) -> ReportAccepted:
    return ReportAccepted(incident_id=report.id, tracking_code=report.tracking_code,
                          tracking_token=report.tracking_token,
                          status_url=status_url(settings, report.tracking_token))


async def _find_report(db: Database, report_id: str) -> Report | None:
    async with db.session() as s:
        return await s.get(Report, report_id)


async def submit_report(infra: Infra, body: ReportCreate, source: str = "web",
                        origin: ReportOrigin | None = None) -> ReportAccepted:
    """Store the report and its outbox row in one transaction, count it under its sources
    (`origin`'s address and device, the reporter's phone: api/abuse.py marks it as suspected
    spam past a limit, never refuses it), then try to start the workflow. Idempotent on
    body.report_id: the same id with the same body returns the first answer (counted once);
    with another body, idempotency.ReportIdReused (409, nothing revealed).
    Raises FieldError (422) for an unknown or used attachment."""
    settings, db = infra.settings, infra.db
    fingerprint = await idempotency.report_fingerprint(db, body.model_dump(mode="json"),
                                                       unique_ids(body.attachments))
    if body.report_id is not None:
        existing = await _find_report(db, str(body.report_id))
        if existing is not None:
            idempotency.check_same(existing, fingerprint)
            log.info("report resubmitted", incident_id=existing.id)
            return _accepted(settings, existing)
    incident_id = str(body.report_id or uuid.uuid4())
    received_at = utcnow()
    report: Report | None = None
    origin = replace(origin or ReportOrigin(), device=body.device_id)
    phone = body.reporter.phone if body.reporter else None
    sources: list[ReportSource] = []
    for _ in range(5):
        inp = body.to_input(incident_id, make_tracking_code(), received_at, source,
                            settings.sla_scale, settings.sla_overrides or None,
                            settings.reminders or None)
        report = Report(id=incident_id, tracking_code=inp.tracking_code,
                        tracking_token=make_tracking_token(),
                        payload=inp.model_dump(mode="json"), source=source,
                        created_at=received_at, fingerprint=fingerprint)
        try:
            async with db.session() as s:
                await claim_attachments(s, inp.attachments, incident_id)
                s.add(report)
                sources = abuse.source_rows(incident_id, origin, phone, received_at)
                s.add_all(sources)
                await s.flush()
                s.add(Outbox(report_id=incident_id, created_at=received_at))
                await s.commit()
            break
        except IntegrityError:
            existing = await _find_report(db, incident_id)
            if existing is not None:  # the same report_id, submitted concurrently
                idempotency.check_same(existing, fingerprint)
                return _accepted(settings, existing)
            report = None  # a tracking code collision: draw again
    if report is None:
        raise RuntimeError("could not allocate a tracking code")
    REPORTS_RECEIVED.labels(source).inc()
    structlog.contextvars.bind_contextvars(incident_id=incident_id)
    log.info("report accepted", tracking_code=report.tracking_code, source=source,
             attachments=len(inp.attachments))
    await abuse.mark(db, settings.abuse_policy, incident_id, sources, received_at)
    if not infra.temporal.recently_failed():
        await infra.starter.start(incident_id, report.payload, by="request",
                                  timeout_s=REQUEST_START_TIMEOUT_S)
    return _accepted(settings, report)
