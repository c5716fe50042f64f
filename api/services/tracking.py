"""The citizen's tracking link: what the report's page shows (state, public timeline and
closing, from the read model (api/services/tracking_record.py) with the live state
overlaid), adding information, answering a staff message, cancelling.

`staff_message` is the one place where a staff message becomes what the reporter reads:
its text and a sender named by role or unit (schema.labels.sender_label), never by the
staff member's name. The JSON view and the tracking page (web/tracking_story.py) both use
it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import col

from api import limits
from api.cases import CaseEnded, CaseNotFound, CaseRefused, CaseUnavailable
from api.errors import ApiError, FieldError, pydantic_messages
from api.infra import Infra
from api.services.attachments import claim_attachments, release_attachments
from api.services.tracking_record import closing, load_record
from core.db import Database
from schema import words
from schema.labels import sender_label
from schema.payloads import CITIZEN_ACTOR, AddInfoInput, CancelInput, IncidentInput
from schema.reports import (
    CancelIn,
    TrackingEvent,
    TrackingMessage,
    TrackingReply,
    TrackingView,
    unique_ids,
)
from schema.states import PRIMARY_CHANGED_EVENT, REPLY_EVENT, STAFF_MESSAGE_EVENTS, State
from schema.tables import IncidentEvent, Report
from schema.text import clean_text

log = structlog.get_logger(__name__)


class TrackingNotFound(ApiError):
    """404: no report has this tracking token."""

    def __init__(self) -> None:
        super().__init__(404, "not_found", *words.both("error.not_found.report"))


class TrackingConflict(ApiError):
    """409: the report no longer takes this (acknowledged, or ended)."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(409, "conflict", vi, en)


class WorkflowPending(ApiError):
    """503: the report is stored but its workflow cannot take the request yet."""

    def __init__(self) -> None:
        super().__init__(503, "temporal_unavailable",
                         *words.both("error.temporal_unavailable.report"),
                         headers={"Retry-After": "5"})


def staff_message(ev: Any) -> TrackingMessage:
    """What the reporter reads of a staff message event (an `incident_events` row): the
    text and who sent it as a unit or the command centre. The actor's username is never
    read here."""
    data = ev.data or {}
    vi, en = sender_label(data.get("sender_role") or ev.actor_role, data.get("unit_name"))
    return TrackingMessage(seq=ev.seq, at=ev.at, text=str(data.get("text") or ""),
                           sender=vi, sender_en=en)


def conversation(events: Sequence[Any]) -> list[TrackingMessage]:
    """The staff messages among `events`, oldest first, each with the reporter's replies."""
    messages = {ev.seq: staff_message(ev) for ev in events
                if ev.action in STAFF_MESSAGE_EVENTS}
    for ev in events:
        if ev.action == REPLY_EVENT:
            data = ev.data or {}
            asked = messages.get(data.get("reply_to"))
            if asked is not None:
                asked.replies.append(TrackingReply(seq=ev.seq, at=ev.at,
                                                   text=data.get("text") or None))
                asked.answered = True
    return list(messages.values())


def _lines(events: Sequence[Any], from_primary: bool = False) -> list[TrackingEvent]:
    timeline: list[TrackingEvent] = []
    state: State | None = None
    for ev in events:
        if ev.to_state:
            state = State(ev.to_state)
        now = state or State.RECEIVED
        if ev.action in STAFF_MESSAGE_EVENTS:
            m = staff_message(ev)
            timeline.append(TrackingEvent(at=ev.at, state=now, kind="message", seq=m.seq,
                                          text=m.text, sender=m.sender,
                                          sender_en=m.sender_en))
        elif ev.action == REPLY_EVENT:
            data = ev.data or {}
            timeline.append(TrackingEvent(at=ev.at, state=now, kind="reply", seq=ev.seq,
                                          text=data.get("text") or None,
                                          reply_to=data.get("reply_to")))
        elif ev.to_state or ev.public_note:
            timeline.append(TrackingEvent(at=ev.at, state=now, public_note=ev.public_note,
                                          from_primary=from_primary))
    return timeline


def public_timeline(events: Sequence[Any], created_at: datetime,
                    primary_events: Sequence[Any] = ()) -> list[TrackingEvent]:
    """What the citizen sees of the events, oldest first: state changes, public notes,
    staff messages and the reporter's replies, each with the state reached by then (at
    least the receipt). For a merged report, `primary_events` (the primary's public
    steps, api/services/tracking_record.py) are shown in full, marked `from_primary`
    with the primary's state, in place of the PRIMARY_CHANGED_EVENT notes the report
    recorded from them (the primary's own steps say it better)."""
    own = [ev for ev in events
           if not (primary_events and ev.action == PRIMARY_CHANGED_EVENT)]
    timeline = _lines(own) + _lines(primary_events, from_primary=True)
    timeline.sort(key=lambda e: e.at)  # stable: the report's own line first at one time
    return timeline or [TrackingEvent(at=created_at, state=State.RECEIVED)]


_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")


async def report_by_token(db: Database, token: str) -> Report | None:
    """The report of a tracking token, or None (also for an absurd token)."""
    if not _TOKEN_RE.fullmatch(token or ""):
        return None  # not a token we issue (and no NUL reaches the database)
    async with db.session() as s:
        return (await s.execute(
            select(Report).where(col(Report.tracking_token) == token))).scalar_one_or_none()


async def _view(infra: Infra, report: Report) -> TrackingView:
    record = await load_record(infra.db, report)
    row, events = record.row, record.events
    timeline = public_timeline(events, report.created_at, record.primary_events)
    messages = conversation(events)
    closed = closing(record)
    ending: dict[str, Any] = {"outcome": closed.outcome_out(), "summary": closed.summary} \
        if closed is not None else {}
    if row is not None:
        view = TrackingView(tracking_code=row.tracking_code, state=State(row.state),
                            category=row.category, created_at=row.created_at,
                            updated_at=row.updated_at, timeline=timeline, messages=messages,
                            **ending)
    else:
        payload = IncidentInput.model_validate(report.payload)
        view = TrackingView(tracking_code=report.tracking_code, state=State.RECEIVED,
                            category=payload.category, created_at=report.created_at,
                            updated_at=report.created_at, timeline=timeline,
                            messages=messages, **ending)
    live = await infra.cases.query(report.id)
    if live is not None and (row is None or live.seq > row.last_seq):
        # The workflow is ahead of the read model (or it has no row yet): its state wins.
        view = view.model_copy(update={
            "tracking_code": live.tracking_code, "state": live.state,
            "category": live.category, "created_at": live.created_at,
            "updated_at": live.updated_at})
    return view


async def get_tracking(infra: Infra, token: str) -> TrackingView | None:
    """What the citizen may see: state and public timeline. None for an unknown token."""
    report = await report_by_token(infra.db, token)
    if report is None:
        return None
    structlog.contextvars.bind_contextvars(incident_id=report.id)
    return await _view(infra, report)


def _conflict(name: str) -> TrackingConflict:
    if name == "cancel":
        return TrackingConflict(*words.both("error.conflict.cancel"))
    return TrackingConflict(*words.both("error.conflict.add_info_closed"))


async def _citizen_update(infra: Infra, report: Report, name: str, arg: Any) -> None:
    """Run a citizen update on the report's workflow, starting it first if the outbox
    still holds it."""
    starter = infra.starter
    if await starter.pending(report.id) \
            and not await starter.start(report.id, report.payload, by="request"):
        raise WorkflowPending()
    try:
        await infra.cases.update(report.id, name, arg)
    except CaseRefused as exc:
        if exc.kind == "Invalid":
            field = exc.details.get("field")
            if field:
                raise FieldError(str(field), exc.vi, exc.en) from exc
            raise ApiError(422, "invalid", words.t("vi", "error.validation_error"),
                           exc.en) from exc
        raise _conflict(name) from exc
    except CaseEnded as exc:
        raise _conflict(name) from exc
    except (CaseUnavailable, CaseNotFound) as exc:
        raise WorkflowPending() from exc


async def report_for(infra: Infra, token: str) -> Report:
    """The report of a tracking token, with its id bound to the request's log context;
    TrackingNotFound (404) for an unknown token. Every change made by token starts here."""
    report = await report_by_token(infra.db, token)
    if report is None:
        raise TrackingNotFound()
    structlog.contextvars.bind_contextvars(incident_id=report.id)
    return report


async def _unanswered(db: Database, report_id: str, seq: int) -> bool:
    """Whether `seq` is a staff message of the report with no reply yet (read model)."""
    async with db.session() as s:
        events = (await s.execute(select(IncidentEvent).where(
            col(IncidentEvent.incident_id) == report_id,
            col(IncidentEvent.action).in_([*STAFF_MESSAGE_EVENTS, REPLY_EVENT])))
        ).scalars().all()
    return any(m.seq == seq and not m.answered for m in conversation(events))


async def add_info(infra: Infra, token: str, text: str | None,
                   attachments: list[Any], reply_to: int | None = None) -> TrackingView:
    """The citizen adds text and/or attachments, or answers the staff message whose seq
    is `reply_to` (recorded as a "reply" event; it counts against the same limits, but
    the first answer to a question is never refused by them: api/limits.reserve). 409
    (TrackingConflict) once closed, 422 (FieldError) with neither, with an unusable
    attachment or with a `reply_to` that is not one of the report's staff messages, 429
    (limits.AdditionLimited) past the per-token limits."""
    report = await report_for(infra, token)
    text = clean_text(text or "") or None
    ids = unique_ids(attachments)
    if text is None and not ids:
        raise FieldError("text", *words.both("field.text.required"))
    limits.check_text(text)
    first_answer = reply_to is not None and await _unanswered(infra.db, report.id, reply_to)
    addition = await limits.reserve(infra.db, infra.settings, report.id, text,
                                    answer=first_answer)
    try:
        async with infra.db.session() as s:
            await claim_attachments(s, ids, report.id)
            await s.commit()
    except Exception:
        await limits.release(infra.db, addition)
        raise
    try:
        await _citizen_update(infra, report, "add_info",
                              AddInfoInput(actor=CITIZEN_ACTOR, text=text, attachments=ids,
                                           reply_to=reply_to))
    except Exception:
        # Neither the addition nor its files count: give the files back so the citizen
        # can use them elsewhere.
        await limits.release(infra.db, addition)
        await release_attachments(infra.db, ids, report.id)
        raise
    return await _view(infra, report)


async def cancel_report(infra: Infra, token: str, reason: str | None) -> TrackingView:
    """The citizen withdraws the report; 409 once acknowledged or ended, 422 (FieldError
    "reason") for a reason past CancelIn's limit (the web form sends it unchecked)."""
    try:
        reason = CancelIn(reason=reason).reason
    except ValidationError as exc:
        vi, en = pydantic_messages(exc.errors()[0])
        raise FieldError("reason", vi, en) from exc
    report = await report_for(infra, token)
    await _citizen_update(infra, report, "cancel",
                          CancelInput(actor=CITIZEN_ACTOR, reason=reason))
    return await _view(infra, report)
