"""Escalation alerts, notifications up the ladder of `schema.escalation`, reminders past
its top level, public warnings.

Every write is idempotent: alerts by the event that raised them (incident + seq),
notifications and staff events by a dedupe key, public alerts by id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Table, select, update
from temporalio import activity

from activities import names
from activities.sql import insert, stable_id
from core.db import Database
from core.settings import HCMC_TZ
from schema import words
from schema.activity_args import (
    EscalationInput,
    PublicAlertRecord,
    ReminderInput,
    ResolveAlertsInput,
)
from schema.escalation import audiences
from schema.tables import Alert, Incident, Notification, PublicAlert, StaffEvent, utcnow

log = structlog.get_logger(__name__)

ALERTS: Table = Alert.__table__  # type: ignore[attr-defined]
INCIDENTS: Table = Incident.__table__  # type: ignore[attr-defined]
NOTIFICATIONS: Table = Notification.__table__  # type: ignore[attr-defined]
PUBLIC_ALERTS: Table = PublicAlert.__table__  # type: ignore[attr-defined]
STAFF_EVENTS: Table = StaffEvent.__table__  # type: ignore[attr-defined]

# What an overdue incident in a state is waiting for (catalogue keys `alert.waiting.*`).
STATE_VI: dict[str, str] = words.with_prefix("vi", "alert.waiting.")


def _local(at: datetime) -> str:
    return at.astimezone(HCMC_TZ).strftime("%H:%M %d/%m/%Y")


class NotifyActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name=names.RAISE_ALERT)
    async def raise_alert(self, inp: EscalationInput) -> None:
        key = (f"{inp.incident_id}:{inp.state.value}:{inp.level}:"
               f"{inp.overdue_since.isoformat()}")
        alert_id = stable_id("alert", f"{inp.incident_id}:{inp.seq}")
        waiting = STATE_VI.get(inp.state.value, inp.state.value)
        subject = words.t("vi", "notice.overdue.subject", level=inp.level,
                          code=inp.tracking_code)
        body = words.t("vi", "notice.overdue.body", code=inp.tracking_code,
                       priority=int(inp.priority), waiting=waiting,
                       since=_local(inp.overdue_since), level=inp.level,
                       state=inp.state.value)
        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(self.db, ALERTS).values(
                    id=alert_id, seq=inp.seq,
                    incident_id=inp.incident_id, tracking_code=inp.tracking_code,
                    level=inp.level, state=inp.state.value, priority=int(inp.priority),
                    category=inp.category.value, ward_code=inp.ward_code, unit_id=inp.unit_id,
                    overdue_since=inp.overdue_since, created_at=utcnow(),
                ).on_conflict_do_nothing()
            )
            await self._announce(
                conn, inp, subject, body, ("notification", key), f"escalation:{key}",
                "alert.raised", f"alert:{key}",
                {"priority": int(inp.priority), "overdue_since": inp.overdue_since.isoformat()})
        log.info("escalation raised", incident_id=inp.incident_id, level=inp.level,
                 state=inp.state.value)

    @activity.defn(name=names.REMIND_ALERT)
    async def remind_alert(self, inp: ReminderInput) -> None:
        """Past the top level: count a reminder on the open alert of this state and tell
        the top level's audiences again (one notification per reminder)."""
        waiting = STATE_VI.get(inp.state.value, inp.state.value)
        subject = words.t("vi", "notice.reminder.subject", reminder=inp.reminder,
                          code=inp.tracking_code)
        body = words.t("vi", "notice.reminder.body", code=inp.tracking_code,
                       priority=int(inp.priority), waiting=waiting,
                       since=_local(inp.overdue_since), reminder=inp.reminder,
                       state=inp.state.value)
        key = f"{inp.incident_id}:{inp.state.value}:{inp.overdue_since.isoformat()}"
        async with self.db.engine.begin() as conn:
            await conn.execute(
                update(ALERTS).where(
                    ALERTS.c.incident_id == inp.incident_id, ALERTS.c.state == inp.state.value,
                    ALERTS.c.level == inp.level, ALERTS.c.resolved_at.is_(None),
                    ALERTS.c.reminders < inp.reminder,
                ).values(reminders=inp.reminder, last_reminded_at=inp.at))
            if inp.next_deadline is not None:
                # No timeline event comes with a reminder: the list's countdown moves here.
                await conn.execute(update(INCIDENTS).where(
                    INCIDENTS.c.id == inp.incident_id, INCIDENTS.c.state == inp.state.value,
                    INCIDENTS.c.escalation_level == inp.level,
                ).values(deadline=inp.next_deadline))
            once = f"reminder:{key}:{inp.reminder}"
            await self._announce(
                conn, inp, subject, body, ("reminder", key, str(inp.reminder)), once,
                "alert.reminded", once, {"reminder": inp.reminder})
        log.info("escalation reminder", incident_id=inp.incident_id, level=inp.level,
                 reminder=inp.reminder)

    async def _announce(self, conn: Any, inp: EscalationInput | ReminderInput, subject: str,
                        body: str, notice_id: tuple[str, ...], notice_key: str, kind: str,
                        event_key: str, extra: dict[str, Any]) -> None:
        """Tell every audience of `inp.level` (one notification each, idempotent by
        `notice_key`:audience) and the staff screens (one `kind` event, by `event_key`)."""
        for audience in audiences(inp.level):
            await conn.execute(
                insert(self.db, NOTIFICATIONS).values(
                    id=stable_id(*notice_id, audience), dedupe_key=f"{notice_key}:{audience}",
                    audience=audience, incident_id=inp.incident_id, subject=subject,
                    body=body, created_at=utcnow(),
                ).on_conflict_do_nothing()
            )
        await conn.execute(
            insert(self.db, STAFF_EVENTS).values(
                kind=kind, incident_id=inp.incident_id, unit_id=inp.unit_id,
                ward_code=inp.ward_code, at=utcnow(),
                payload={"state": inp.state.value, "tracking_code": inp.tracking_code,
                         "level": inp.level, **extra},
                dedupe_key=event_key,
            ).on_conflict_do_nothing(index_elements=["dedupe_key"])
        )

    @activity.defn(name=names.RESOLVE_ALERTS)
    async def resolve_alerts(self, inp: ResolveAlertsInput) -> int:
        alerts = ALERTS
        still_open = (alerts.c.incident_id == inp.incident_id,
                      alerts.c.state == inp.state.value, alerts.c.resolved_at.is_(None))
        async with self.db.engine.begin() as conn:
            first = (await conn.execute(
                select(alerts.c.tracking_code, alerts.c.unit_id, alerts.c.ward_code)
                .where(*still_open).order_by(alerts.c.level.desc()).limit(1)
            )).first()
            result = await conn.execute(update(alerts).where(*still_open)
                                        .values(resolved_at=inp.at))
            count = result.rowcount or 0
            if count and first is not None:
                await conn.execute(
                    insert(self.db, STAFF_EVENTS).values(
                        kind="alert.resolved", incident_id=inp.incident_id, at=utcnow(),
                        unit_id=first.unit_id, ward_code=first.ward_code,
                        payload={"state": inp.state.value, "resolved": count,
                                 "tracking_code": first.tracking_code},
                        dedupe_key=f"resolved:{inp.incident_id}:{inp.state.value}:"
                                   f"{inp.at.isoformat()}",
                    ).on_conflict_do_nothing(index_elements=["dedupe_key"])
                )
        return count

    @activity.defn(name=names.PUBLISH_PUBLIC_ALERT)
    async def publish_public_alert(self, inp: PublicAlertRecord) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(
                insert(self.db, PUBLIC_ALERTS).values(
                    id=inp.id, incident_id=inp.incident_id, headline=inp.headline,
                    instruction=inp.instruction, category=inp.category.value,
                    priority=int(inp.priority), lat=inp.lat, lon=inp.lon,
                    radius_m=inp.radius_m, sent_at=inp.sent_at, sender=inp.sender,
                ).on_conflict_do_nothing(index_elements=["id"])
            )
