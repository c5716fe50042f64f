"""Citizen intake: attachments, durable report submission with an outbox, the relay that
starts missing workflows, and tracking (status, add info, cancel).

These are service functions: the JSON routes (api/routes/reports.py), the web pages and the
CLI call them with `app_state` (anything with `.settings`, `.db`, `.storage`, `.temporal`).

Durability: the report row and its outbox row are written in one transaction *before* the
citizen gets 202. Starting the workflow comes after; when Temporal is unreachable the
outbox row stays pending and `relay_once` (run every settings.relay_interval_s by the API
process, and by `canhbao relay`) starts it later with the same workflow id.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import filetype
import structlog
from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.errors import ApiError
from api.metrics import ACTIONS, ATTACHMENTS, REPORTS_RECEIVED, REPORTS_STARTED
from api.temporal import TemporalUnavailable
from core.temporal import workflow_id
from schema.payloads import (
    CITIZEN_ACTOR,
    INCIDENT_WORKFLOW,
    ActionResult,
    AddInfoInput,
    CancelInput,
    IncidentInput,
    IncidentState,
    Location,
    Reporter,
)
from schema.states import Category, State
from schema.tables import Attachment, Incident, IncidentEvent, Outbox, Report, utcnow

log = structlog.get_logger(__name__)

WORKFLOW_NAME = INCIDENT_WORKFLOW
# No look-alikes: no 0/O/Q/D-ish pairs, no 1/I/L, 2/Z, 5/S, 8/B.
TRACKING_ALPHABET = "ACEFGHJKMNPRTUVWXY34679"
TRACKING_LENGTH = 8
RPC_TIMEOUT = timedelta(seconds=5)
CALL_TIMEOUT_S = 8.0
REQUEST_START_TIMEOUT_S = 2.0  # a citizen waits at most this for the inline start
MAX_ATTACHMENTS = 10
SNIFF_BYTES = 8192
CHUNK = 1024 * 1024

IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
               "image/heic": "heic"}
VIDEO_TYPES = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}

_PHONE_RE = re.compile(r"^0(?:[35789]\d{8}|2\d{9})$")


def make_tracking_code() -> str:
    return "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_LENGTH))


def make_tracking_token() -> str:
    """192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def normalise_tracking_code(text: str) -> str:
    return re.sub(r"[\s\-.]", "", text).upper()


def normalise_phone(raw: str) -> str:
    """`+84 912 345 678` → `0912345678`; raises ValueError when not a Vietnamese number."""
    digits = re.sub(r"[\s.\-()]", "", raw)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if not _PHONE_RE.match(digits):
        raise ValueError(raw)
    return digits


# --- request and answer models -------------------------------------------------------------
class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, examples=[10.7769])
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, examples=[106.7009])
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000, allow_inf_nan=False)


class ReporterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32,
                              description="Vietnamese number, e.g. 0912345678 or +84912345678")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        v = (v or "").strip()
        return v or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        try:
            return normalise_phone(v)
        except ValueError:
            raise PydanticCustomError(
                "vn_phone", "Not a Vietnamese phone number (e.g. 0912345678)",
                {"vi": "Số điện thoại không hợp lệ (ví dụ 0912345678)"}) from None


class ReportCreate(BaseModel):
    """The POST /reports body."""

    model_config = ConfigDict(extra="forbid")
    report_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the client so a resubmission is idempotent")
    category: Category
    description: str = Field(min_length=1, max_length=5000)
    location: LocationIn
    address: str | None = Field(default=None, max_length=500)
    reporter: ReporterIn | None = None
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    silent: bool = Field(
        default=False, description="A silent SOS: the reporter may not be able to speak or be "
        "seen reporting; staff must not call back without care")

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise PydanticCustomError("string_too_short", "Describe what is happening",
                                      {"vi": "Vui lòng mô tả sự việc"})
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        v = (v or "").strip()
        return v or None


class ReportAccepted(BaseModel):
    incident_id: str
    tracking_code: str
    tracking_token: str
    status_url: str


class TrackingEvent(BaseModel):
    at: datetime
    state: State
    public_note: str | None = None


class TrackingView(BaseModel):
    tracking_code: str
    state: State
    category: Category
    created_at: datetime
    updated_at: datetime
    timeline: list[TrackingEvent]


class AttachmentOut(BaseModel):
    attachment_id: str
    content_type: str
    size: int
    sha256: str


class InfoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, max_length=5000)
    attachments: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)


# --- errors ----------------------------------------------------------------------------------
class IntakeFieldError(ApiError):
    """A field problem pydantic cannot see (unknown or already used attachment)."""

    def __init__(self, field: str, message_vi: str, message_en: str) -> None:
        super().__init__(422, "validation_error", "Dữ liệu không hợp lệ", "Invalid input",
                         fields=[{"field": field, "message": message_vi,
                                  "message_en": message_en}])
        self.field = field
        self.message_vi = message_vi
        self.message_en = message_en


class TrackingNotFound(ApiError):
    def __init__(self) -> None:
        super().__init__(404, "not_found", "Không tìm thấy tin báo",
                         "No report with this tracking link")


class TrackingConflict(ApiError):
    def __init__(self, vi: str, en: str) -> None:
        super().__init__(409, "conflict", vi, en)


class AttachmentTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        mb = limit // (1024 * 1024)
        # The rest of the body is not read: the connection cannot be reused.
        super().__init__(413, "too_large", f"Tệp quá lớn (tối đa {mb} MB)",
                         f"File too large (at most {mb} MB)", limit=limit,
                         headers={"Connection": "close"})


class AttachmentTypeRejected(ApiError):
    def __init__(self) -> None:
        super().__init__(
            415, "unsupported_media_type",
            "Chỉ nhận ảnh (JPEG, PNG, WebP, HEIC) hoặc video (MP4, MOV, WebM)",
            "Only images (JPEG, PNG, WebP, HEIC) or videos (MP4, MOV, WebM) are accepted")


class WorkflowPending(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "temporal_unavailable",
                         "Tin báo đã được lưu nhưng hệ thống xử lý chưa sẵn sàng, "
                         "vui lòng thử lại sau ít phút",
                         "The report is saved but processing is not available yet; "
                         "try again in a few minutes", headers={"Retry-After": "5"})


# --- attachments -----------------------------------------------------------------------------
async def _chunks(source: UploadFile | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if hasattr(source, "read"):  # fastapi's or starlette's UploadFile
        while chunk := await source.read(CHUNK):
            yield chunk
    else:
        async for chunk in source:
            if chunk:
                yield chunk


async def store_attachment(app_state: Any, upload: UploadFile | AsyncIterable[bytes],
                           filename: str | None = None, declared_type: str | None = None,
                           uploaded_by: str | None = None) -> AttachmentOut:
    """Stream an upload into storage. The type comes from the bytes (the declared type is
    only logged); the size limit from the type. Raises AttachmentTypeRejected (415) or
    AttachmentTooLarge (413); nothing is kept then."""
    settings = app_state.settings
    source = _chunks(upload).__aiter__()
    head = b""
    exhausted = False
    while len(head) < SNIFF_BYTES:
        try:
            head += await source.__anext__()
        except StopAsyncIteration:
            exhausted = True
            break
    kind = filetype.guess(head[:SNIFF_BYTES]) if head else None
    mime = kind.mime if kind else None
    if mime in IMAGE_TYPES:
        limit, ext = settings.max_image_bytes, IMAGE_TYPES[mime]
    elif mime in VIDEO_TYPES:
        limit, ext = settings.max_video_bytes, VIDEO_TYPES[mime]
    else:
        ATTACHMENTS.labels("rejected_type").inc()
        log.info("attachment type rejected", sniffed=mime, declared=declared_type)
        raise AttachmentTypeRejected()
    digest = hashlib.sha256()
    size = 0

    async def guarded() -> AsyncIterator[bytes]:
        nonlocal size
        pending = [head]
        for chunk in pending:
            size += len(chunk)
            if size > limit:
                raise AttachmentTooLarge(limit)
            digest.update(chunk)
            yield chunk
        if exhausted:
            return
        async for chunk in source:
            size += len(chunk)
            if size > limit:
                raise AttachmentTooLarge(limit)
            digest.update(chunk)
            yield chunk

    att_id = str(uuid.uuid4())
    now = utcnow()
    key = f"attachments/{now:%Y/%m/%d}/{att_id}.{ext}"
    try:
        await app_state.storage.put(key, guarded(), mime)
    except AttachmentTooLarge:
        ATTACHMENTS.labels("too_large").inc()
        raise
    row = Attachment(id=att_id, content_type=mime, size=size, sha256=digest.hexdigest(),
                     storage_key=key, original_name=(filename or None) and filename[:255],
                     uploaded_by=uploaded_by, created_at=now)
    try:
        async with app_state.db.session() as s:
            s.add(row)
            await s.commit()
    except BaseException:
        # No row, no object: an unreferenced file would never be cleaned up.
        await asyncio.shield(app_state.storage.delete(key))
        raise
    ATTACHMENTS.labels("stored").inc()
    log.info("attachment stored", attachment_id=att_id, content_type=mime, size=size)
    return AttachmentOut(attachment_id=att_id, content_type=mime, size=size,
                         sha256=row.sha256)


async def claim_attachments(session: Any, ids: list[str], incident_id: str,
                            field: str = "attachments") -> None:
    """Link unused attachments to `incident_id` inside the caller's transaction, or raise
    IntakeFieldError naming the first id that is unknown or belongs to another report."""
    if not ids:
        return
    rows = (await session.execute(
        select(col(Attachment.id), col(Attachment.incident_id))
        .where(col(Attachment.id).in_(ids)))).all()
    owner = {r[0]: r[1] for r in rows}
    for i, aid in enumerate(ids):
        if aid not in owner:
            raise IntakeFieldError(f"{field}.{i}", "Không tìm thấy tệp đính kèm này",
                                   "No such attachment")
        if owner[aid] is not None and owner[aid] != incident_id:
            raise IntakeFieldError(f"{field}.{i}", "Tệp đính kèm này đã được dùng",
                                   "This attachment is already used")
    free = [a for a in ids if owner[a] is None]
    if free:
        res = await session.execute(
            update(Attachment)
            .where(col(Attachment.id).in_(free), col(Attachment.incident_id).is_(None))
            .values(incident_id=incident_id))
        if res.rowcount != len(free):
            raise IntakeFieldError(field, "Tệp đính kèm này đã được dùng",
                                   "This attachment is already used")


# --- submission --------------------------------------------------------------------------
def _status_url(settings: Any, token: str) -> str:
    base = (settings.public_url or "").rstrip("/")
    return f"{base}/t/{token}"


def _accepted(settings: Any, report: Report) -> ReportAccepted:
    return ReportAccepted(incident_id=report.id, tracking_code=report.tracking_code,
                          tracking_token=report.tracking_token,
                          status_url=_status_url(settings, report.tracking_token))


async def _find_report(db: Any, report_id: str) -> Report | None:
    async with db.session() as s:
        return await s.get(Report, report_id)


def _dedupe(ids: list[uuid.UUID]) -> list[str]:
    seen: dict[str, None] = {}
    for a in ids:
        seen.setdefault(str(a), None)
    return list(seen)


async def submit_report(app_state: Any, body: ReportCreate, source: str = "web") -> ReportAccepted:
    """Store the report and its outbox row in one transaction, then try to start the
    workflow. Idempotent on body.report_id: the same id returns the first answer."""
    settings = app_state.settings
    db = app_state.db
    if body.report_id is not None:
        existing = await _find_report(db, str(body.report_id))
        if existing is not None:
            log.info("report resubmitted", incident_id=existing.id)
            return _accepted(settings, existing)
    incident_id = str(body.report_id or uuid.uuid4())
    attachments = _dedupe(body.attachments)
    received_at = utcnow()
    reporter = None
    if body.reporter and (body.reporter.name or body.reporter.phone):
        reporter = Reporter(name=body.reporter.name, phone=body.reporter.phone)
    report: Report | None = None
    for _ in range(5):
        inp = IncidentInput(
            incident_id=incident_id, tracking_code=make_tracking_code(),
            category=body.category, description=body.description,
            location=Location(**body.location.model_dump()), received_at=received_at,
            address=body.address, reporter=reporter, attachments=attachments, source=source,
            silent=body.silent, sla_scale=settings.sla_scale,
            sla=settings.sla_overrides or None,
        )
        report = Report(id=incident_id, tracking_code=inp.tracking_code,
                        tracking_token=make_tracking_token(),
                        payload=inp.model_dump(mode="json"), source=source,
                        created_at=received_at)
        try:
            async with db.session() as s:
                await claim_attachments(s, attachments, incident_id)
                s.add(report)
                await s.flush()
                s.add(Outbox(report_id=incident_id, created_at=received_at))
                await s.commit()
            break
        except IntegrityError:
            existing = await _find_report(db, incident_id)
            if existing is not None:  # the same report_id, submitted concurrently
                return _accepted(settings, existing)
            report = None  # a tracking code collision: draw again
    if report is None:
        raise RuntimeError("could not allocate a tracking code")
    REPORTS_RECEIVED.labels(source).inc()
    structlog.contextvars.bind_contextvars(incident_id=incident_id)
    log.info("report accepted", tracking_code=report.tracking_code, source=source,
             attachments=len(attachments))
    if not app_state.temporal.recently_failed():
        await start_workflow_for(app_state, incident_id, report.payload, by="request",
                                 timeout_s=REQUEST_START_TIMEOUT_S)
    return _accepted(settings, report)


async def start_workflow_for(app_state: Any, incident_id: str, payload: dict,
                             by: str = "relay", timeout_s: float = CALL_TIMEOUT_S) -> bool:
    """Start the incident's workflow (idempotent: an existing one counts as started) and
    mark the outbox row. False when Temporal could not be reached or refused."""
    settings = app_state.settings
    inflight = _inflight(app_state)
    if by == "relay" and incident_id in inflight:
        return False  # the request that accepted it is starting it right now
    inflight.add(incident_id)
    try:
        return await _start(app_state, settings, incident_id, payload, by, timeout_s)
    finally:
        inflight.discard(incident_id)


def _inflight(app_state: Any) -> set[str]:
    found = getattr(app_state, "intake_inflight", None)
    if found is None:
        found = set()
        app_state.intake_inflight = found
    return found


async def _start(app_state: Any, settings: Any, incident_id: str, payload: dict, by: str,
                 timeout_s: float) -> bool:
    try:
        client = await app_state.temporal.get()
        await asyncio.wait_for(
            client.start_workflow(
                WORKFLOW_NAME, IncidentInput.model_validate(payload),
                id=workflow_id(incident_id), task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=timedelta(seconds=timeout_s),
            ),
            timeout_s + 1,
        )
        REPORTS_STARTED.labels(by).inc()
    except WorkflowAlreadyStartedError:
        pass
    except TemporalUnavailable as exc:
        log.warning("workflow start deferred", incident_id=incident_id, error=str(exc))
        return False
    except Exception as exc:  # noqa: BLE001 - the relay retries
        if isinstance(exc, RPCError | TimeoutError):
            app_state.temporal.note_failure(f"{exc.__class__.__name__}: {exc}")
        await _record_failure(app_state.db, incident_id, exc)
        log.warning("workflow start failed", incident_id=incident_id,
                    error=f"{exc.__class__.__name__}: {exc}")
        return False
    app_state.temporal.note_success()
    if by == "request":
        # Marked in batches by the relay: one commit less per report. If the process dies
        # first, the relay starts it again, finds it running, and marks it then.
        _started(app_state).add(incident_id)
        return True
    await mark_started(app_state, [incident_id])
    return True


def _started(app_state: Any) -> set[str]:
    found = getattr(app_state, "intake_started", None)
    if found is None:
        found = set()
        app_state.intake_started = found
    return found


async def mark_started(app_state: Any, ids: list[str]) -> None:
    async with app_state.db.session() as s:
        await s.execute(update(Outbox).where(col(Outbox.report_id).in_(ids),
                                             col(Outbox.started_at).is_(None))
                        .values(started_at=utcnow()))
        await s.commit()


async def flush_started(app_state: Any) -> int:
    """Write the outbox marks of workflows that requests started."""
    pending = _started(app_state)
    if not pending:
        return 0
    ids = list(pending)
    await mark_started(app_state, ids)
    pending.difference_update(ids)
    return len(ids)


async def _record_failure(db: Any, incident_id: str, exc: Exception) -> None:
    async with db.session() as s:
        row = await s.get(Outbox, incident_id)
        if row is None or row.started_at is not None:
            return
        row.attempts += 1
        row.last_error = f"{exc.__class__.__name__}: {exc}"[:2000]
        row.next_attempt_at = utcnow() + timedelta(seconds=min(2 ** row.attempts, 10))
        s.add(row)
        await s.commit()


async def relay_once(app_state: Any, batch: int = 200, concurrency: int = 16) -> int:
    """Start the workflows of reports whose outbox row is still pending. Returns how many
    were started (or found already running). Safe to run in several processes at once."""
    await flush_started(app_state)
    now = utcnow()
    async with app_state.db.session() as s:
        rows = (await s.execute(
            select(col(Outbox.report_id), col(Report.payload))
            .join(Report, col(Report.id) == col(Outbox.report_id))
            .where(col(Outbox.started_at).is_(None),
                   or_(col(Outbox.next_attempt_at).is_(None),
                       col(Outbox.next_attempt_at) <= now))
            .order_by(col(Outbox.created_at)).limit(batch))).all()
    if not rows:
        return 0
    try:
        await app_state.temporal.get()
    except TemporalUnavailable:
        return 0
    sem = asyncio.Semaphore(concurrency)

    async def one(report_id: str, payload: dict) -> bool:
        async with sem:
            return await start_workflow_for(app_state, report_id, payload, by="relay")

    results = await asyncio.gather(*(one(r[0], r[1]) for r in rows))
    started = sum(results)
    if started:
        log.info("relay started workflows", count=started, pending=len(rows) - started)
    return started


async def relay_forever(app_state: Any) -> None:
    """The API process's background relay loop."""
    interval = app_state.settings.relay_interval_s
    while True:
        try:
            await relay_once(app_state)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep relaying
            log.exception("relay pass failed")
        await asyncio.sleep(interval)


# --- tracking -----------------------------------------------------------------------------
async def _report_by_token(db: Any, token: str) -> Report | None:
    if not token or len(token) > 200:
        return None
    async with db.session() as s:
        return (await s.execute(
            select(Report).where(col(Report.tracking_token) == token))).scalar_one_or_none()


async def query_case(app_state: Any, incident_id: str) -> IncidentState | None:
    """The live state from the workflow (v2's compact state, or the fields of a v1 case
    that it shares), or None when it cannot be asked now."""
    try:
        client = await app_state.temporal.get()
        handle = client.get_workflow_handle(workflow_id(incident_id))
        return await asyncio.wait_for(
            handle.query("case", result_type=IncidentState, rpc_timeout=RPC_TIMEOUT),
            CALL_TIMEOUT_S)
    except (TemporalUnavailable, RPCError, WorkflowQueryFailedError, TimeoutError) as exc:
        log.info("case query failed", incident_id=incident_id, error=str(exc))
        return None


async def _view_from_sql(app_state: Any, report: Report,
                         live: IncidentState | None = None) -> TrackingView:
    """The citizen's view from the read model; `live` (the workflow's state) wins for the
    current state when it is newer than the row."""
    async with app_state.db.session() as s:
        row = await s.get(Incident, report.id)
        events = (await s.execute(
            select(IncidentEvent).where(col(IncidentEvent.incident_id) == report.id)
            .order_by(col(IncidentEvent.seq)))).scalars().all()
    payload = IncidentInput.model_validate(report.payload)
    timeline: list[TrackingEvent] = []
    state: State | None = None
    for ev in events:
        if ev.to_state:
            state = State(ev.to_state)
        if ev.to_state or ev.public_note:
            timeline.append(TrackingEvent(at=ev.at, state=state or State.RECEIVED,
                                          public_note=ev.public_note))
    if not timeline:
        timeline.append(TrackingEvent(at=report.created_at, state=State.RECEIVED))
    if live is not None and (row is None or live.seq > row.last_seq):
        return TrackingView(tracking_code=live.tracking_code, state=live.state,
                            category=live.category, created_at=live.created_at,
                            updated_at=live.updated_at, timeline=timeline)
    if row is not None:
        return TrackingView(tracking_code=row.tracking_code, state=State(row.state),
                            category=Category(row.category), created_at=row.created_at,
                            updated_at=row.updated_at, timeline=timeline)
    return TrackingView(tracking_code=report.tracking_code, state=State.RECEIVED,
                        category=payload.category, created_at=report.created_at,
                        updated_at=report.created_at, timeline=timeline)


async def get_tracking(app_state: Any, token: str) -> TrackingView | None:
    """What the citizen may see: state and public timeline. None for an unknown token."""
    report = await _report_by_token(app_state.db, token)
    if report is None:
        return None
    structlog.contextvars.bind_contextvars(incident_id=report.id)
    return await _view_from_sql(app_state, report, await query_case(app_state, report.id))


async def _citizen_update(app_state: Any, report: Report, name: str, arg: Any) -> ActionResult:
    """Run a citizen update on the report's workflow, starting it first if the outbox
    still holds it."""
    async with app_state.db.session() as s:
        pending = await s.get(Outbox, report.id)
    if pending is not None and pending.started_at is None \
            and report.id not in _started(app_state):
        if not await start_workflow_for(app_state, report.id, report.payload, by="request"):
            raise WorkflowPending()
    try:
        client = await app_state.temporal.get()
        handle = client.get_workflow_handle(workflow_id(report.id))
        case = await asyncio.wait_for(
            handle.execute_update(name, arg, result_type=ActionResult,
                                  rpc_timeout=RPC_TIMEOUT),
            CALL_TIMEOUT_S * 2)
    except WorkflowUpdateFailedError as exc:
        ACTIONS.labels(name, "refused").inc()
        cause = exc.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if kind in ("IllegalTransition", "Forbidden", None):
            raise _conflict(name) from exc
        raise ApiError(422, "invalid", "Dữ liệu không hợp lệ", str(cause)) from exc
    except (TemporalUnavailable, TimeoutError) as exc:
        raise WorkflowPending() from exc
    except RPCError as exc:
        # A finished workflow no longer takes updates: same answer as a refused one.
        if "complet" in str(exc).lower() or "closed" in str(exc).lower():
            raise _conflict(name) from exc
        raise WorkflowPending() from exc
    ACTIONS.labels(name, "ok").inc()
    return case


def _conflict(name: str) -> TrackingConflict:
    if name == "cancel":
        return TrackingConflict(
            "Không thể hủy: tin báo đã được lực lượng tiếp nhận hoặc đã kết thúc",
            "Cannot cancel: the report was already acknowledged or has ended")
    return TrackingConflict("Tin báo đã kết thúc, không thể bổ sung thông tin",
                            "The report is closed; no more information can be added")


async def add_info(app_state: Any, token: str, text: str | None,
                   attachments: list[uuid.UUID] | list[str]) -> TrackingView:
    """The citizen adds text and/or attachments. 409 (TrackingConflict) once closed."""
    report = await _report_by_token(app_state.db, token)
    if report is None:
        raise TrackingNotFound()
    structlog.contextvars.bind_contextvars(incident_id=report.id)
    text = (text or "").strip() or None
    ids = _dedupe([uuid.UUID(str(a)) for a in attachments])
    if text is None and not ids:
        raise IntakeFieldError("text", "Vui lòng nhập thông tin hoặc đính kèm tệp",
                               "Give some text or an attachment")
    async with app_state.db.session() as s:
        await claim_attachments(s, ids, report.id)
        await s.commit()
    try:
        await _citizen_update(app_state, report, "add_info",
                                     AddInfoInput(actor=CITIZEN_ACTOR, text=text,
                                                  attachments=ids))
    except Exception:
        if ids:  # give the files back so the citizen can use them elsewhere
            async with app_state.db.session() as s:
                await s.execute(update(Attachment).where(
                    col(Attachment.id).in_(ids), col(Attachment.incident_id) == report.id)
                    .values(incident_id=None))
                await s.commit()
        raise
    return await _view_from_sql(app_state, report)


async def cancel_report(app_state: Any, token: str, reason: str | None) -> TrackingView:
    """The citizen withdraws the report; 409 once acknowledged or ended."""
    report = await _report_by_token(app_state.db, token)
    if report is None:
        raise TrackingNotFound()
    structlog.contextvars.bind_contextvars(incident_id=report.id)
    await _citizen_update(app_state, report, "cancel",
                          CancelInput(actor=CITIZEN_ACTOR,
                                      reason=(reason or "").strip() or None))
    return await _view_from_sql(app_state, report)


async def run_relay_once_standalone(settings: Any) -> int:
    """One relay pass outside the API process (`canhbao relay-once`)."""
    from types import SimpleNamespace

    from api.temporal import TemporalHolder
    from core.db import Database
    from core.storage import make_storage

    state = SimpleNamespace(settings=settings, db=Database.from_settings(settings),
                            storage=make_storage(settings),
                            temporal=TemporalHolder(settings, connect_timeout_s=10))
    try:
        return await relay_once(state, batch=10_000)
    finally:
        await state.db.dispose()
