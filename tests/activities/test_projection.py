"""project on PostgreSQL and SQLite: append-only events, forward-only incident row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import func, select

from activities.projection import ProjectionActivities
from core.db import Database
from schema.activity_args import ProjectEvent
from schema.payloads import WardInfo
from schema.states import State
from schema.tables import Attachment, Incident, StaffEvent
from tests.workflows.factories import (
    event,
    incident_input,
    new_id,
    operator,
    receipt,
    state_for,
    stored_events,
    unit_ref,
)


async def incident_row(db: Database, incident_id: str) -> Incident:
    async with db.session() as session:
        return (await session.exec(select(Incident).where(Incident.id == incident_id))).one()


async def staff_events(db: Database, incident_id: str) -> list[StaffEvent]:
    async with db.session() as session:
        rows = await session.exec(select(StaffEvent).where(StaffEvent.incident_id == incident_id)
                                  .order_by(StaffEvent.id))
        return list(rows.all())


async def test_redelivery_of_the_same_event_is_a_no_op(any_db: Database) -> None:
    acts = ProjectionActivities(any_db)
    inp = incident_input()
    received = receipt(inp)
    for _ in range(3):
        await acts.project(received)
    rows = await stored_events(any_db, inp.incident_id)
    assert [(r.seq, r.action, r.to_state) for r in rows] == [(1, "receive", "received")]
    row = await incident_row(any_db, inp.incident_id)
    assert (row.state, row.is_open, row.last_seq) == ("received", True, 1)
    assert row.created_at == inp.received_at
    assert [s.kind for s in await staff_events(any_db, inp.incident_id)] == ["incident.new"]


async def test_row_moves_forward_only(any_db: Database) -> None:
    acts = ProjectionActivities(any_db)
    inp = incident_input()
    case = state_for(inp)
    t0 = case.created_at
    await acts.project(receipt(inp))
    unit = unit_ref()
    verified = case.model_copy(update={
        "state": State.VERIFIED, "updated_at": t0 + timedelta(seconds=5),
        "ward": WardInfo(code=26743, name="Phường Bến Thành")})
    verify = event(2, "verify", State.VERIFIED, State.RECEIVED, operator(),
                   at=t0 + timedelta(seconds=5))
    routed = verified.model_copy(update={"state": State.ROUTED, "unit": unit})
    route = event(3, "route", State.ROUTED, State.VERIFIED, operator(),
                  at=t0 + timedelta(seconds=9), unit_id=unit.id)
    await acts.project(ProjectEvent(state=verified, event=verify))
    await acts.project(ProjectEvent(state=routed, event=route))
    # A late re-delivery of seq 2 must not move the row back.
    await acts.project(ProjectEvent(state=verified, event=verify))
    row = await incident_row(any_db, case.id)
    assert (row.state, row.last_seq, row.unit_id, row.ward_code) == ("routed", 3, unit.id, 26743)
    assert row.verified_at == t0 + timedelta(seconds=5)
    assert row.routed_at == t0 + timedelta(seconds=9)
    rows = await stored_events(any_db, case.id)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[2].data == {"unit_id": unit.id} and rows[2].actor_role == "operator"
    assert [s.kind for s in await staff_events(any_db, case.id)] == [
        "incident.new", "incident.changed", "incident.changed"]


async def test_terminal_state_closes_the_row_and_links_attachments(any_db: Database) -> None:
    acts = ProjectionActivities(any_db)
    attachment = Attachment(content_type="image/jpeg", size=10, sha256="0" * 64,
                            storage_key=f"k/{new_id()}")
    note_attachment = Attachment(content_type="image/png", size=10, sha256="1" * 64,
                                 storage_key=f"k/{new_id()}")
    async with any_db.session() as session:
        session.add(attachment)
        session.add(note_attachment)
        await session.commit()
    inp = incident_input(attachments=[attachment.id])
    case = state_for(inp)
    await acts.project(receipt(inp))
    note = event(2, "note", None, None, operator(), text="ảnh", attachments=[note_attachment.id])
    await acts.project(ProjectEvent(state=case, event=note))
    done = case.model_copy(update={"state": State.CANCELLED, "closed_at": datetime.now(UTC)})
    await acts.project(ProjectEvent(
        state=done, event=event(3, "cancel", State.CANCELLED, State.RECEIVED)))
    row = await incident_row(any_db, case.id)
    assert (row.state, row.is_open) == ("cancelled", False) and row.closed_at is not None
    async with any_db.session() as session:
        linked = (await session.exec(select(func.count()).select_from(Attachment).where(
            Attachment.incident_id == case.id))).one()
    assert linked == 2


async def test_a_different_event_at_the_same_seq_replaces_it_and_its_alert(
        any_db: Database) -> None:
    """A workflow task that never completed wrote an escalation at seq 2 (and its alert);
    the committed history has a verify there: the read model follows the history."""
    from activities.notify import NotifyActivities
    from schema.activity_args import EscalationInput
    from schema.tables import Alert

    inp = incident_input()
    acts, notify = ProjectionActivities(any_db), NotifyActivities(any_db)
    state = state_for(inp)
    await acts.project(ProjectEvent(state=state, event=event(1), report=inp))
    phantom = event(2, action="escalate", to_state=None, level=1)
    await acts.project(ProjectEvent(state=state, event=phantom))
    await notify.raise_alert(EscalationInput(
        incident_id=inp.incident_id, tracking_code=inp.tracking_code, level=1,
        state=State.RECEIVED, priority=state.priority, category=inp.category,
        overdue_since=datetime.now(UTC), seq=2))
    verified = state.model_copy(update={"state": State.VERIFIED, "seq": 2, "version": 1})
    real = event(2, action="verify", from_state=State.RECEIVED, to_state=State.VERIFIED,
                 actor=operator())
    await acts.project(ProjectEvent(state=verified, event=real))
    rows = await stored_events(any_db, inp.incident_id)
    assert [(r.seq, r.action) for r in rows] == [(1, "receive"), (2, "verify")]
    async with any_db.session() as session:
        alerts = (await session.exec(select(Alert).where(
            Alert.incident_id == inp.incident_id))).all()
    assert alerts == []
    row = await incident_row(any_db, inp.incident_id)
    assert (row.state, row.version, row.description) == ("verified", 1, inp.description)


async def test_the_same_event_from_a_later_workflow_task_takes_its_time(
        any_db: Database) -> None:
    """Temporal died before the task that wrote seq 2 was recorded; the retried task makes
    the same event with its own (later) time: the row takes the history's time, whatever
    the order the writes land in, and nothing else moves (no second staff event)."""

    inp = incident_input()
    acts = ProjectionActivities(any_db)
    state = state_for(inp)
    await acts.project(ProjectEvent(state=state, event=event(1), report=inp))
    first = event(2, action="note", to_state=None, actor=operator(), text="Đã liên hệ")
    later = first.model_copy(update={"at": first.at + timedelta(seconds=5)})
    await acts.project(ProjectEvent(state=state, event=first))
    await acts.project(ProjectEvent(state=state, event=later))
    await acts.project(ProjectEvent(state=state, event=later))
    # A late write of the dead attempt takes back neither the time nor the event.
    await acts.project(ProjectEvent(state=state, event=first))
    await acts.project(ProjectEvent(state=state, event=first.model_copy(
        update={"action": "escalate", "data": {"level": 1}})))
    rows = await stored_events(any_db, inp.incident_id)
    assert [(r.seq, r.action, r.data) for r in rows] == [
        (1, "receive", {}), (2, "note", {"text": "Đã liên hệ"})]
    stored = rows[1].at if rows[1].at.tzinfo else rows[1].at.replace(tzinfo=UTC)
    assert stored == later.at
    assert len(await staff_events(any_db, inp.incident_id)) == 2


async def test_text_the_database_refuses_is_dead_lettered_and_the_incident_stays_visible(
        pg_db: Database) -> None:
    """PostgreSQL refuses a NUL in text. The boundary removes it; should one get past
    (an older client, a new field), the event is written without its texts, the refused
    content is kept in projection_failures and supervisors are told."""
    from schema.tables import Notification, ProjectionFailure

    inp = incident_input(description="Cháy\x00 nhà")
    acts = ProjectionActivities(pg_db)
    await acts.project(ProjectEvent(state=state_for(inp), event=event(1), report=inp))
    row = await incident_row(pg_db, inp.incident_id)
    assert row.state == "received" and "Không lưu được nội dung" in row.description
    async with pg_db.session() as session:
        failures = (await session.exec(select(ProjectionFailure).where(
            ProjectionFailure.incident_id == inp.incident_id))).all()
        notices = (await session.exec(select(Notification).where(
            Notification.incident_id == inp.incident_id))).all()
    assert len(failures) == 1 and failures[0].seq == 1 and "NUL" in failures[0].error.upper()
    assert failures[0].payload["report"]["description"] == "Cháy nhà"
    assert [n.audience for n in notices] == ["supervisors"]
    # A retry of the same write changes nothing more.
    await acts.project(ProjectEvent(state=state_for(inp), event=event(1), report=inp))
    async with pg_db.session() as session:
        assert len((await session.exec(select(ProjectionFailure).where(
            ProjectionFailure.incident_id == inp.incident_id))).all()) == 1


async def test_report_accepted_without_the_database_gets_its_row(any_db: Database) -> None:
    """Intake while the database was down: the receipt creates the reports row (and a
    started outbox row) from the workflow input, once, however often it is delivered; a
    tracking code another report holds already is drawn again, for both rows."""
    from schema.ids import UNCHECKED_TRACKING_LENGTH
    from schema.payloads import IntakeRecord
    from schema.tables import Outbox, Report

    acts = ProjectionActivities(any_db)
    taken = incident_input(tracking_code="ACEFGHJKMN")
    async with any_db.session() as session:
        session.add(Report(id=taken.incident_id, tracking_code=taken.tracking_code,
                           tracking_token=f"tok-{taken.incident_id}",
                           payload=taken.model_dump(mode="json")))
        await session.commit()
    for inp in (incident_input(tracking_code="ACEFGHJKMP"),
                incident_input(tracking_code=taken.tracking_code)):
        inp.intake = IntakeRecord(tracking_token=f"token-{inp.incident_id}", fingerprint="f" * 64)
        for _ in range(2):
            await acts.project(ProjectEvent(state=state_for(inp), event=event(1), report=inp))
        async with any_db.session() as session:
            report = await session.get(Report, inp.incident_id)
            outbox = await session.get(Outbox, inp.incident_id)
        row = await incident_row(any_db, inp.incident_id)
        assert report is not None and outbox is not None and outbox.started_at is not None
        assert report.tracking_token == f"token-{inp.incident_id}"
        assert report.fingerprint == "f" * 64 and report.payload["intake"] is None
        assert row.tracking_code == report.tracking_code
        if inp.tracking_code == taken.tracking_code:
            assert report.tracking_code != taken.tracking_code
            assert len(report.tracking_code) == UNCHECKED_TRACKING_LENGTH
        else:
            assert report.tracking_code == inp.tracking_code
        # A later event (the workflow still holds the old code) keeps the row's code.
        later = state_for(inp, state=State.VERIFIED, seq=2, version=1)
        await acts.project(ProjectEvent(state=later, event=event(
            2, action="verify", from_state=State.RECEIVED, to_state=State.VERIFIED,
            actor=operator())))
        row = await incident_row(any_db, inp.incident_id)
        assert (row.state, row.tracking_code) == ("verified", report.tracking_code)
