"""Alerts, notifications and public alerts on PostgreSQL and SQLite, written idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from activities.notify import NotifyActivities
from core.db import Database
from schema.activity_args import EscalationInput, PublicAlertRecord, ResolveAlertsInput
from schema.states import Category, Priority, State
from schema.tables import Alert, Notification, PublicAlert, StaffEvent
from tests.workflows.factories import new_id, tracking_code


def escalation(incident_id: str, level: int, since: datetime) -> EscalationInput:
    """The alert raised by the escalate event of `level` (here at seq `level`)."""
    return EscalationInput(incident_id=incident_id, seq=level, tracking_code=tracking_code(),
                           level=level, state=State.ROUTED, priority=Priority.CRITICAL,
                           category=Category.CRIME, overdue_since=since, ward_code=26743)


async def rows(db: Database, model, incident_id: str) -> list:  # type: ignore[no-untyped-def]
    async with db.session() as session:
        return list((await session.exec(
            select(model).where(model.incident_id == incident_id))).all())


async def test_alerts_and_notifications_once_per_level(any_db: Database) -> None:
    acts = NotifyActivities(any_db)
    incident_id = new_id()
    since = datetime.now(UTC).replace(microsecond=0)
    for _ in range(2):  # re-delivery
        await acts.raise_alert(escalation(incident_id, 1, since))
    assert [a.level for a in await rows(any_db, Alert, incident_id)] == [1]
    notes = await rows(any_db, Notification, incident_id)
    assert [n.audience for n in notes] == ["supervisors"]
    assert "Quá hạn cấp 1" in notes[0].subject
    await acts.raise_alert(escalation(incident_id, 2, since))
    await acts.raise_alert(escalation(incident_id, 2, since))
    assert sorted(n.audience for n in await rows(any_db, Notification, incident_id)) == [
        "city_command", "supervisors", "supervisors"]
    assert len(await rows(any_db, StaffEvent, incident_id)) == 2

    at = since + timedelta(minutes=3)
    resolved = await acts.resolve_alerts(ResolveAlertsInput(incident_id=incident_id,
                                                            state=State.ROUTED, at=at))
    assert resolved == 2
    assert await acts.resolve_alerts(ResolveAlertsInput(incident_id=incident_id,
                                                        state=State.ROUTED, at=at)) == 0
    alerts = await rows(any_db, Alert, incident_id)
    assert {a.resolved_at for a in alerts} == {at}
    events = await rows(any_db, StaffEvent, incident_id)
    assert sorted(e.kind for e in events) == ["alert.raised", "alert.raised", "alert.resolved"]
    resolved_event = next(e for e in events if e.kind == "alert.resolved")
    assert resolved_event.ward_code == 26743
    assert resolved_event.payload["tracking_code"].startswith("CB-")


async def test_resolve_touches_only_the_state_left(any_db: Database) -> None:
    acts = NotifyActivities(any_db)
    incident_id = new_id()
    since = datetime.now(UTC)
    await acts.raise_alert(escalation(incident_id, 1, since))
    count = await acts.resolve_alerts(ResolveAlertsInput(
        incident_id=incident_id, state=State.RECEIVED, at=since))
    assert count == 0
    assert [a.resolved_at for a in await rows(any_db, Alert, incident_id)] == [None]


async def test_public_alert_is_stored_once(any_db: Database) -> None:
    acts = NotifyActivities(any_db)
    record = PublicAlertRecord(
        id=new_id(), incident_id=new_id(), headline="Cháy lớn", instruction="Tránh xa",
        category=Category.FIRE_EXPLOSION, priority=Priority.CRITICAL, lat=10.77, lon=106.7,
        radius_m=500, sent_at=datetime.now(UTC), sender="supervisor1")
    await acts.publish_public_alert(record)
    await acts.publish_public_alert(record)
    stored = await rows(any_db, PublicAlert, record.incident_id)
    assert [(p.id, p.headline, p.radius_m) for p in stored] == [(record.id, "Cháy lớn", 500)]
