"""Record workflow histories for the replay test.

    CANHBAO_TEST_DATABASE_URL=postgresql+psycopg://... \
        .venv/bin/python -m tests.workflows.record_histories SCENARIO...

Runs the named scenarios (v2_lifecycle, v2_escalation, v2_merge, v2_continued) on a fresh
Temporal dev server with a worker and the given database (it is reset), then writes each
history as JSON under tests/histories/. Record again only on purpose: old histories must
keep replaying, that is their point. A change to the workflow's shape adds a scenario and
its history here (tests/histories/README.md says how a shape is added and retired).
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.db import Database
from core.settings import ROOT, Settings
from schema.payloads import (
    AcknowledgeInput,
    AddInfoInput,
    ArriveInput,
    CancelInput,
    ClassifyInput,
    CloseInput,
    MergeInput,
    MessageInput,
    NoteInput,
    PublishAlertInput,
    ReassignInput,
    RejectInput,
    RouteInput,
    VerifyInput,
)
from schema.states import Category, Outcome, Priority
from tests.workflows.factories import (
    citizen,
    eventually,
    incident_input,
    new_id,
    officer,
    operator,
    query_case,
    running_worker,
    start_incident,
    supervisor,
    unit_ref,
    update_retrying,
)
from workflows.incident import IncidentWorkflow as W

OUT = ROOT / "tests" / "histories"


async def lifecycle(client: Client, tq: str,
                    name: str = "lifecycle") -> list[tuple[str, WorkflowHandle]]:
    handle = await start_incident(client, tq)
    unit = unit_ref()
    await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.CRIME, priority=Priority.HIGH))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await handle.execute_update(W.note, NoteInput(actor=officer(unit), text="Đang đến",
                                                  public=True))
    await handle.execute_update(W.arrive, ArriveInput(actor=officer(unit)))
    await handle.execute_update(W.publish_alert, PublishAlertInput(
        actor=supervisor(), alert_id=new_id(), headline="Cảnh báo", instruction="Tránh xa",
        radius_m=300))
    await handle.execute_update(W.close, CloseInput(actor=officer(unit),
                                                    outcome=Outcome.RESOLVED, summary="Xong"))
    await handle.result()
    return [(name, handle)]


async def lifecycle_local(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """The lifecycle scenario with patch `local-projection`: writes as local activities."""
    return await lifecycle(client, tq, "lifecycle_local")



async def escalation(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    handle = await start_incident(client, tq, incident_input(
        category=Category.FIRE_EXPLOSION, sla_scale=0.005))  # RECEIVED: 0.3 s

    async def level_two():  # type: ignore[no-untyped-def]
        return (await query_case(handle)).escalation.level >= 2

    await eventually(level_two)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    first, second = unit_ref(), unit_ref("Dự phòng")
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=first))
    await handle.execute_update(W.acknowledge, AcknowledgeInput(actor=officer(first)))
    await handle.execute_update(W.reassign, ReassignInput(actor=supervisor(), unit=second,
                                                          reason="Quá tải"))
    await handle.execute_update(W.arrive, ArriveInput(actor=officer(second)))
    await handle.execute_update(W.close, CloseInput(actor=supervisor(),
                                                    outcome=Outcome.REFERRED, summary="Chuyển"))
    await handle.result()
    return [("escalation", handle)]


async def merge(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    primary = await start_incident(client, tq)
    child = await start_incident(client, tq)
    await child.execute_update(W.add_info, AddInfoInput(actor=citizen(), text="Thêm ảnh"))
    await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=(await query_case(primary)).id))
    await primary.execute_update(W.verify, VerifyInput(actor=operator()))
    await primary.execute_update(W.reject, RejectInput(actor=operator(), reason="Sai sự thật"))
    await child.result()
    await primary.result()
    return [("merge_primary", primary), ("merge_child", child)]


async def cancel(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    handle = await start_incident(client, tq)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.cancel, CancelInput(actor=citizen(), reason="Đã ổn"))
    await handle.result()
    return [("cancel", handle)]


async def v2_lifecycle(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    return await lifecycle(client, tq, "v2_lifecycle")


async def v2_escalation(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Levels 1-3 in RECEIVED, two reminders past the top, then verify and cancel."""
    handle = await start_incident(client, tq, incident_input(
        category=Category.FIRE_EXPLOSION, sla_scale=0.002))  # 0.12 s a level, 1.8 s reminder

    async def reminded():  # type: ignore[no-untyped-def]
        return (await query_case(handle)).escalation.reminders >= 2

    await eventually(reminded, timeout=30)
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.cancel, CancelInput(actor=citizen(), reason="Đã ổn"))
    await handle.result()
    return [("v2_escalation", handle)]


async def v2_merge(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Merge handshake; the merged report's citizen adds information (forwarded); the
    primary is routed then closed and the child follows."""
    primary = await start_incident(client, tq)
    child = await start_incident(client, tq)
    await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=(await query_case(primary)).id))
    await child.execute_update(W.add_info, AddInfoInput(actor=citizen(), text="Thêm chi tiết"))
    unit = unit_ref()
    await primary.execute_update(W.verify, VerifyInput(actor=operator()))
    await primary.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    await primary.execute_update(W.close, CloseInput(actor=supervisor(),
                                                     outcome=Outcome.RESOLVED, summary="Xong"))
    await child.result()
    await primary.result()
    return [("v2_merge_primary", primary), ("v2_merge_child", child)]


async def v2_continued(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Long notes until the run continues as new; the next run acknowledges and closes."""
    handle = await start_incident(client, tq)
    unit = unit_ref()
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    text = ("Diễn biến tại hiện trường được cập nhật liên tục. " * 100)[:5000]
    while (await query_case(handle)).run == 1:
        await update_retrying(handle, W.note, NoteInput(actor=officer(unit), text=text))
    await update_retrying(handle, W.acknowledge, AcknowledgeInput(actor=officer(unit)))
    await update_retrying(handle, W.close, CloseInput(actor=officer(unit),
                                                      outcome=Outcome.RESOLVED, summary="Xong"))
    await handle.result()
    first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    last = client.get_workflow_handle(handle.id)
    return [("v2_continued_first", first), ("v2_continued_next", last)]


async def v2_versions(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Actions with expected versions: a stale one and a no-op route are refused (never in
    history), the current one goes through; then top-level reminders, and a close."""
    handle = await start_incident(client, tq, incident_input(
        category=Category.FIRE_EXPLOSION, sla_scale=0.002))
    unit, other = unit_ref(), unit_ref("Dự phòng")
    seen = (await handle.execute_update(W.verify, VerifyInput(actor=operator()))).version
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit,
                                                    expected_version=seen))
    for refused_arg in (RouteInput(actor=operator(), unit=other, expected_version=seen),
                        RouteInput(actor=operator(), unit=unit)):
        try:
            await handle.execute_update(W.route, refused_arg)
        except Exception:  # noqa: BLE001 - refused, as intended
            pass
        else:
            raise AssertionError("should have been refused")

    async def reminded():  # type: ignore[no-untyped-def]
        return (await query_case(handle)).escalation.reminders >= 1

    await eventually(reminded, timeout=30)
    case = await query_case(handle)
    await handle.execute_update(W.reassign, ReassignInput(
        actor=supervisor(), unit=other, reason="Gần hơn", expected_version=case.version))
    await handle.execute_update(W.close, CloseInput(actor=supervisor(),
                                                    outcome=Outcome.RESOLVED, summary="Xong"))
    await handle.result()
    return [("v2_versions", handle)]


async def v2_message(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Two-way contact: the operator asks the reporter, who answers (reply_to); routed, the
    unit's officer gives an instruction, answered too; an addition that is no reply; then
    arrive and close. A reply to no question is refused (never in history)."""
    handle = await start_incident(client, tq)
    asked = await handle.execute_update(W.message, MessageInput(
        actor=operator(), text="Anh/chị có thấy biển số xe không?"))
    await handle.execute_update(W.add_info, AddInfoInput(
        actor=citizen(), text="Có, 59X1-234.56", reply_to=asked.seq))
    try:
        await handle.execute_update(W.add_info, AddInfoInput(
            actor=citizen(), text="?", reply_to=asked.seq + 100))
    except Exception:  # noqa: BLE001 - refused, as intended
        pass
    else:
        raise AssertionError("a reply to no question should have been refused")
    unit = unit_ref()
    await handle.execute_update(W.verify, VerifyInput(actor=operator()))
    await handle.execute_update(W.route, RouteInput(actor=operator(), unit=unit))
    told = await handle.execute_update(W.message, MessageInput(
        actor=officer(unit), text="Hãy rời khỏi khu vực nguy hiểm."))
    await handle.execute_update(W.add_info, AddInfoInput(
        actor=citizen(), text="Tôi đã ra đầu hẻm", reply_to=told.seq))
    await handle.execute_update(W.add_info, AddInfoInput(actor=citizen(), text="Thêm chi tiết"))
    await handle.execute_update(W.arrive, ArriveInput(actor=officer(unit)))
    await handle.execute_update(W.close, CloseInput(actor=officer(unit),
                                                    outcome=Outcome.RESOLVED, summary="Xong"))
    await handle.result()
    return [("v2_message", handle)]


async def v2_keyed(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """A report accepted while the database was down (its input carries the intake
    record), then actions sent as the API sends them with an Idempotency-Key (update ids
    `<action>:<key>`, recorded in the events' data), one of them sent twice; close."""
    from schema.payloads import IntakeRecord

    inp = incident_input(tracking_code="ACEFGHJKMN")
    inp.intake = IntakeRecord(tracking_token="recorded-token", fingerprint="0" * 64)
    handle = await start_incident(client, tq, inp)
    unit = unit_ref()
    await handle.execute_update(W.classify, ClassifyInput(
        actor=operator(), category=Category.CRIME, priority=Priority.HIGH), id="classify:k1")
    route = RouteInput(actor=operator(), unit=unit)
    for _ in range(2):  # the second is answered from the first (update-id dedupe)
        await handle.execute_update(W.route, route, id="route:k2")
    await handle.execute_update(W.arrive, ArriveInput(actor=officer(unit)), id="arrive:k3")
    await handle.execute_update(W.close, CloseInput(
        actor=officer(unit), outcome=Outcome.RESOLVED, summary="Xong"), id="close:k4")
    await handle.result()
    return [("v2_keyed", handle)]


async def v2_dated(client: Client, tq: str) -> list[tuple[str, WorkflowHandle]]:
    """Event times from history: updates with `at` (as the API sends them), a look-up
    result with its time, one escalation (dated at its deadline), a merge and a merged
    citizen's addition (signals with their time); the primary is verified, routed, closed."""
    def now() -> datetime:
        return datetime.now(UTC)

    primary = await start_incident(client, tq, incident_input(
        category=Category.FIRE_EXPLOSION, sla_scale=0.002))  # 0.12 s a level

    async def escalated():  # type: ignore[no-untyped-def]
        return (await query_case(primary)).escalation.level >= 1

    await eventually(escalated, timeout=30)
    child = await start_incident(client, tq)
    await child.execute_update(W.merge, MergeInput(
        actor=operator(), into_incident_id=(await query_case(primary)).id, at=now()))
    await child.execute_update(W.add_info, AddInfoInput(actor=citizen(), text="Thêm",
                                                        at=now()))
    unit = unit_ref()
    await primary.execute_update(W.verify, VerifyInput(actor=operator(), at=now()))
    await primary.execute_update(W.route, RouteInput(actor=operator(), unit=unit, at=now()))
    await primary.execute_update(W.close, CloseInput(
        actor=supervisor(), outcome=Outcome.RESOLVED, summary="Xong", at=now()))
    await child.result()
    await primary.result()
    return [("v2_dated_primary", primary), ("v2_dated_child", child)]


SCENARIOS = {"v2_lifecycle": v2_lifecycle, "v2_escalation": v2_escalation,
             "v2_merge": v2_merge, "v2_continued": v2_continued,
             "v2_versions": v2_versions, "v2_message": v2_message, "v2_keyed": v2_keyed,
             "v2_dated": v2_dated}


async def main(wanted: list[str]) -> None:
    from tests.conftest import PG_URL, WARDS_GEOJSON, reset_and_migrate

    unknown = set(wanted) - set(SCENARIOS)
    if not wanted or unknown:
        raise SystemExit(f"name the scenarios to record, among {', '.join(SCENARIOS)}")

    reset_and_migrate(PG_URL)
    settings = Settings(CANHBAO_DEMO=True, DATABASE_URL=PG_URL,
                        CANHBAO_WARDS_GEOJSON=str(WARDS_GEOJSON))
    db = Database(PG_URL)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        data_converter=pydantic_data_converter, ui=False)
    tq = f"record-{uuid.uuid4()}"
    try:
        async with running_worker(env.client, settings, db, tq):
            for scenario in (SCENARIOS[name] for name in wanted):
                for name, handle in await scenario(env.client, tq):
                    history = await handle.fetch_history()
                    (OUT / f"{name}.json").write_text(history.to_json(), encoding="utf-8")
    finally:
        await env.shutdown()
        await db.dispose()


if __name__ == "__main__":
    os.chdir(ROOT)
    asyncio.run(main(sys.argv[1:]))
