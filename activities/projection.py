"""Project the workflow's events into the SQL read model.

`project` writes one event row and upserts the incidents row in one transaction. It
converges to the committed history: a re-delivered event changes nothing; a different
event at the same (incident, seq) — written by a workflow task that never completed
before a crash — replaces the earlier one, and an alert raised by the replaced event is
withdrawn with it; the same event again with a later time (the retried task's) takes that
time. A retried task always has a later time than the attempts before it, so a write older
than the stored event is a dead attempt's and is ignored. The incident row moves forward
only (it is rewritten when seq >= last_seq).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.exc import DataError, IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import names
from activities.sql import insert, stable_id
from core.db import Database
from schema import words
from schema.activity_args import ProjectEvent
from schema.ids import UNCHECKED_TRACKING_LENGTH, make_tracking_code
from schema.payloads import IncidentInput, IncidentState, TimelineEvent
from schema.push import push_message
from schema.search import search_document
from schema.states import RECEIVE_EVENT, Action, State
from schema.tables import (
    Alert,
    Attachment,
    Incident,
    IncidentEvent,
    Notification,
    Outbox,
    ProjectionFailure,
    PushOutbox,
    PushSubscription,
    Report,
    StaffEvent,
    utcnow,
)

log = structlog.get_logger(__name__)

EVENTS: Table = IncidentEvent.__table__  # type: ignore[attr-defined]
INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
STAFF_EVENTS: Table = StaffEvent.__table__  # type: ignore[attr-defined]
ATTACHMENTS: Table = Attachment.__table__  # type: ignore[attr-defined]
ALERTS: Table = Alert.__table__  # type: ignore[attr-defined]
FAILURES: Table = ProjectionFailure.__table__  # type: ignore[attr-defined]
NOTIFICATIONS: Table = Notification.__table__  # type: ignore[attr-defined]
PUSH_SUBSCRIPTIONS: Table = PushSubscription.__table__  # type: ignore[attr-defined]
PUSH_OUTBOX: Table = PushOutbox.__table__  # type: ignore[attr-defined]
REPORTS: Table = Report.__table__  # type: ignore[attr-defined]
OUTBOX: Table = Outbox.__table__  # type: ignore[attr-defined]
# What the database refuses for the data itself (a retry cannot help), unlike a lost
# connection or a timeout, which are retried forever.
PERMANENT = (DataError, IntegrityError)
UNREADABLE = words.t("vi", "notice.unreadable")
_FIRST_SEEN = {State.VERIFIED: "verified_at", State.ROUTED: "routed_at"}
# Written from the report only: an event without it leaves them as they are.
TEXT_COLUMNS = ("description", "address", "reporter_name", "reporter_phone", "search_text")


def incident_values(case: IncidentState, event: TimelineEvent,
                    report: IncidentInput | None = None) -> dict[str, Any]:
    """The incidents row for `case` as of `event`. The state keeps no texts, so
    description, address and reporter are written only when the report comes with the
    event (the receive event)."""
    ward, unit = case.ward, case.unit
    values: dict[str, Any] = {
        "id": case.id,
        "tracking_code": case.tracking_code,
        "state": case.state.value,
        "is_open": not case.state.is_terminal,
        "category": case.category.value,
        "priority": int(case.priority),
        "lat": case.location.lat,
        "lon": case.location.lon,
        "accuracy_m": case.location.accuracy_m,
        "ward_code": ward.code if ward else None,
        "ward_name": ward.name if ward else None,
        "ward_exact": ward.exact if ward else True,
        "outside_city": ward.outside_city if ward else False,
        "unit_id": unit.id if unit else None,
        "unit_name": unit.name if unit else None,
        "proposed_unit_id": case.proposed_unit.id if case.proposed_unit else None,
        "source": case.source,
        "outcome": case.outcome.value if case.outcome else None,
        "merged_into": case.merged_into,
        "duplicate_count": len(case.duplicates),
        "escalation_level": case.escalation.level,
        "overdue_since": case.escalation.overdue_since,
        "deadline": case.deadline,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "acknowledged_at": case.acknowledged_at,
        "on_scene_at": case.on_scene_at,
        "closed_at": case.closed_at,
        "last_seq": event.seq,
        "version": case.version,
        "silent": case.silent,
    }
    if report is not None:
        values.update(
            description=report.description, address=report.address,
            search_text=search_document(report.description, report.address),
            reporter_name=report.reporter.name if report.reporter else None,
            reporter_phone=report.reporter.phone if report.reporter else None)
    else:
        # Only a first insert uses this (the column is NOT NULL, and PostgreSQL checks
        # that before ON CONFLICT); an existing row keeps its texts (see TEXT_COLUMNS).
        values["description"] = ""
    for state, column in _FIRST_SEEN.items():
        values[column] = event.at if event.to_state == state else None
    return values


def staff_kind(event: TimelineEvent) -> str:
    return "incident.new" if event.action == RECEIVE_EVENT else "incident.changed"


class ProjectionActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=names.PROJECT)
    async def project(self, inp: ProjectEvent) -> None:
        """Write `inp.event` and the incident row from the compact state."""
        case, event, report = inp.state, inp.event, inp.report
        if event.seq < 1 or not case.id:
            raise ApplicationError(f"bad event seq {event.seq} for {case.id!r}",
                                   type="Invalid", non_retryable=True)
        try:
            await self._upsert(case, event, report)
        except PERMANENT as exc:
            # Keep the incident visible: record what was refused, then write the event and
            # the row without their texts. Nothing is retried silently forever.
            await self._dead_letter(case, event, report, exc)
            if report is not None:
                report = report.model_copy(update={"description": UNREADABLE,
                                                   "address": None, "reporter": None})
            bare = event.model_copy(update={"data": {"unreadable": True},
                                            "public_note": None})
            await self._upsert(case, bare, report)

    async def _dead_letter(self, case: IncidentState, event: TimelineEvent,
                           report: IncidentInput | None, exc: Exception) -> None:
        error = f"{exc.__class__.__name__}: {exc}"[:4000]
        log.error("projection refused by the database", incident_id=case.id, seq=event.seq,
                  error=error)
        payload = {"event": event.model_dump(mode="json"),
                   "report": report.model_dump(mode="json") if report else None}
        key = f"{case.id}:{event.seq}"
        async with self.db.engine.begin() as conn:
            await conn.execute(insert(self.db, FAILURES).values(
                id=stable_id("failure", key), incident_id=case.id, seq=event.seq,
                action=event.action, error=error,
                payload=json.loads(json.dumps(payload).replace("\\u0000", "")),
                created_at=utcnow()).on_conflict_do_nothing())
            await conn.execute(insert(self.db, NOTIFICATIONS).values(
                id=stable_id("failure-notice", key), dedupe_key=f"projection-failure:{key}",
                audience="supervisors", incident_id=case.id,
                subject=words.t("vi", "notice.write_failed.subject", code=case.tracking_code),
                body=words.t("vi", "notice.write_failed.body", seq=event.seq,
                             action=event.action, code=case.tracking_code),
                created_at=utcnow()).on_conflict_do_nothing())

    async def _upsert(self, case: IncidentState, event: TimelineEvent,
                      report: IncidentInput | None) -> None:
        """Everything `event` writes, in one transaction."""
        async with self.db.engine.begin() as conn:
            if report is not None and report.intake is not None:
                code = await self._ensure_report(conn, report)
                if code != case.tracking_code:
                    case = case.model_copy(update={"tracking_code": code})
            if not await self._write_event(conn, case.id, event):
                return
            await self._write_incident(conn, case, event, report)
            await self._tell_staff(conn, case, event)
            await self._queue_push(conn, case, event)
            await self._link_attachments(conn, case.id, event, report)

    async def _write_event(self, conn: Any, incident_id: str, event: TimelineEvent) -> bool:
        """Write the incident_events row of `event`: insert it, replace another event at
        its seq (and withdraw that one's alert), or take a later time for the same event.
        False when the stored row is newer (a dead attempt's write landing late): then
        nothing else is written."""
        values = event_values(incident_id, event)
        at_seq = (EVENTS.c.incident_id == incident_id, EVENTS.c.seq == event.seq)
        earlier = (await conn.execute(select(EVENTS).where(*at_seq))).mappings().first()
        if earlier is not None and _utc(earlier["at"]) > event.at:
            # Written by an older attempt of the workflow task than the row (a dead
            # attempt's write landing late): the row is the later attempt's, keep it.
            log.info("older write of an event ignored", incident_id=incident_id,
                     seq=event.seq, action=event.action)
            return False
        if earlier is None:
            await conn.execute(insert(self.db, EVENTS).values(**values)
                               .on_conflict_do_nothing(index_elements=["incident_id", "seq"]))
        elif _differs(earlier, values):
            log.warning("event replaced", incident_id=incident_id, seq=event.seq,
                        was=earlier["action"], now=event.action)
            await conn.execute(update(EVENTS).where(*at_seq).values(**values))
            # An alert raised by the replaced event goes with it.
            await conn.execute(delete(ALERTS).where(
                ALERTS.c.incident_id == incident_id, ALERTS.c.seq == event.seq))
        elif _utc(earlier["at"]) < event.at:
            # The same event from a later workflow task: the first one never completed
            # (Temporal or the worker died before it was recorded), and the retried task
            # has its own, later time. The committed attempt is always the last, so the
            # latest time is the history's, in whatever order the writes arrive. Found
            # by the fault suite (bench/faults): SQL and history differed in `at`.
            await conn.execute(update(EVENTS).where(*at_seq).values(at=event.at))
        return True

    async def _write_incident(self, conn: Any, case: IncidentState, event: TimelineEvent,
                              report: IncidentInput | None) -> None:
        """Upsert the incidents row, forward only (not over a row of a later seq)."""
        row = incident_values(case, event, report)
        stmt = insert(self.db, INCIDENTS).values(**row)
        # A tracking code never changes; the row keeps the one it was first written
        # with (a code re-drawn by _ensure_report, unknown to the workflow).
        keep: tuple[str, ...] = ("id", "tracking_code", "created_at", *_FIRST_SEEN.values())
        if report is None:
            keep += TEXT_COLUMNS
        set_: dict[str, Any] = {k: stmt.excluded[k] for k in row if k not in keep}
        for column in _FIRST_SEEN.values():
            set_[column] = func.coalesce(INCIDENTS.c[column], stmt.excluded[column])
        await conn.execute(stmt.on_conflict_do_update(
            index_elements=["id"], set_=set_,
            where=INCIDENTS.c.last_seq <= stmt.excluded.last_seq,
        ))

    async def _tell_staff(self, conn: Any, case: IncidentState, event: TimelineEvent) -> None:
        """The staff event of `event` (the live lists and cards), once per seq; and when
        the incident left a unit, one for that unit too (its officers' phones drop the
        card)."""
        await conn.execute(
            insert(self.db, STAFF_EVENTS).values(
                kind=staff_kind(event), incident_id=case.id,
                unit_id=case.unit.id if case.unit else None,
                ward_code=case.ward.code if case.ward else None,
                payload={
                    "state": case.state.value, "tracking_code": case.tracking_code,
                    "seq": event.seq, "action": event.action,
                    "category": case.category.value, "priority": int(case.priority),
                    "from_state": event.from_state.value if event.from_state else None,
                    "to_state": event.to_state.value if event.to_state else None,
                    "previous_unit_id": event.data.get("previous_unit_id"),
                },
                dedupe_key=f"event:{case.id}:{event.seq}",
            ).on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        left = event.data.get("previous_unit_id")
        if left and (case.unit is None or left != case.unit.id):
            await conn.execute(
                insert(self.db, STAFF_EVENTS).values(
                    kind="incident.left", incident_id=case.id, unit_id=left,
                    ward_code=case.ward.code if case.ward else None,
                    payload={"tracking_code": case.tracking_code, "seq": event.seq,
                             "action": event.action, "state": case.state.value,
                             "unit_name": case.unit.name if case.unit else None},
                    dedupe_key=f"left:{case.id}:{event.seq}",
                ).on_conflict_do_nothing(index_elements=["dedupe_key"])
            )

    async def _link_attachments(self, conn: Any, incident_id: str, event: TimelineEvent,
                                report: IncidentInput | None) -> None:
        """Link the attachments `event` names (the report's, with the receive event) to
        the incident, unless another incident has them already."""
        attachments = _event_attachments(event, report)
        if attachments:
            await conn.execute(
                update(ATTACHMENTS)
                .where(ATTACHMENTS.c.id.in_(attachments), ATTACHMENTS.c.incident_id.is_(None))
                .values(incident_id=incident_id)
            )

    async def _queue_push(self, conn: Any, case: IncidentState,
                          event: TimelineEvent) -> None:
        """Queue the reporter's notification of `event` (schema.push.PUSH_WORTHY) for each
        of the report's push subscriptions, in the event's own transaction: one row per
        (subscription, seq), so a re-delivered event queues nothing twice.
        activities/push.py sends them; nothing here waits for a push service."""
        # A staff message's words are its data's text (they are for the reporter already).
        words = (event.data or {}).get("text") if event.action == Action.MESSAGE.value \
            else event.public_note
        message = push_message(event.action, case.tracking_code,
                               words if isinstance(words, str) else None)
        if message is None:
            return
        subscriptions = (await conn.execute(select(PUSH_SUBSCRIPTIONS.c.id).where(
            PUSH_SUBSCRIPTIONS.c.incident_id == case.id))).scalars().all()
        if not subscriptions:
            return
        title, body, urgent = message
        now = utcnow()
        await conn.execute(insert(self.db, PUSH_OUTBOX).values([
            {"subscription_id": sub, "incident_id": case.id, "seq": event.seq,
             "title": title, "body": body, "urgent": urgent, "created_at": now,
             "next_attempt_at": now, "attempts": 0}
            for sub in subscriptions]).on_conflict_do_nothing(
                index_elements=["subscription_id", "seq"]))

    async def _ensure_report(self, conn: Any, report: IncidentInput) -> str:
        """Create the `reports` row (and a started outbox row, so the relay never starts
        it again) of a report accepted while the database was unreachable, unless it is
        there already; return the tracking code it has. Idempotent: a retried or replayed
        receive event finds the row. Its tracking code was drawn without the database:
        when another report holds it, a new one is drawn (the tracking page then shows
        the new code; the workflow keeps the old one in its compact state)."""
        assert report.intake is not None
        code = report.tracking_code
        payload = report.model_copy(update={"intake": None}).model_dump(mode="json")
        for _ in range(8):
            await conn.execute(insert(self.db, REPORTS).values(
                id=report.incident_id, tracking_code=code,
                tracking_token=report.intake.tracking_token,
                payload={**payload, "tracking_code": code}, source=report.source,
                created_at=report.received_at, fingerprint=report.intake.fingerprint,
            ).on_conflict_do_nothing())
            stored = (await conn.execute(select(REPORTS.c.tracking_code).where(
                REPORTS.c.id == report.incident_id))).scalar_one_or_none()
            if stored is not None:
                await conn.execute(insert(self.db, OUTBOX).values(
                    report_id=report.incident_id, created_at=report.received_at,
                    started_at=utcnow(), attempts=0).on_conflict_do_nothing())
                if stored != report.tracking_code:
                    log.warning("tracking code re-drawn", incident_id=report.incident_id,
                                drawn=report.tracking_code, kept=stored)
                return str(stored)
            code = make_tracking_code(UNCHECKED_TRACKING_LENGTH)
        raise ApplicationError("could not store the report row", type="Invalid",
                               non_retryable=True)


def event_values(incident_id: str, event: TimelineEvent) -> dict[str, Any]:
    """The incident_events row for `event`."""
    return {
        "incident_id": incident_id, "seq": event.seq, "at": event.at,
        "actor": event.actor.username, "actor_role": event.actor.role.value,
        "actor_unit_id": event.actor.unit_id, "action": event.action,
        "from_state": event.from_state.value if event.from_state else None,
        "to_state": event.to_state.value if event.to_state else None,
        "data": event.data, "public_note": event.public_note,
    }


def _differs(row: Any, values: dict[str, Any]) -> bool:
    """Whether a stored event is another event than `values` (the same event re-sent by
    a retry is equal in what identifies it: action, actor, states and data; only its time
    may differ, when a later workflow task wrote it again: then the later time is kept)."""
    keys = ("action", "actor", "from_state", "to_state", "public_note")
    if any(row[k] != values[k] for k in keys):
        return True
    return bool(_json_norm(row["data"]) != _json_norm(values["data"]))


def _utc(stored: datetime) -> datetime:
    """A stored time, aware (SQLite gives back naive UTC times)."""
    return stored if stored.tzinfo is not None else stored.replace(tzinfo=UTC)


def _json_norm(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, sort_keys=True))


def _event_attachments(event: TimelineEvent, report: IncidentInput | None) -> list[str]:
    if event.action == RECEIVE_EVENT:
        return list(report.attachments) if report else []
    found = event.data.get("attachments") or []
    return [str(a) for a in found]
