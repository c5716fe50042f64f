"""IncidentWorkflowV1: the first shape of the incident workflow, kept so that incidents
started before v2 (workflow type "IncidentWorkflow") run to their end and their recorded
histories keep replaying. New incidents start `workflows.incident.IncidentWorkflow`
(type "IncidentWorkflowV2"). Do not change the behaviour of this class; remove it once no
"IncidentWorkflow" execution is open (Temporal UI: WorkflowType="IncidentWorkflow").

What it does:

- Human actions are updates named as `schema.states.Action` values. Each validator checks
  the transition (`steps()`), the actor's role (`role_may()`) and, for an officer, the unit;
  a refused update raises `ApplicationError` of type IllegalTransition, Forbidden or Invalid
  and never enters history. An accepted update returns the case once its events are in SQL.
- Every accepted change appends a `TimelineEvent` (seq + 1) to the case. Side effects
  (projections, alerts, resolutions, public alerts) go through one ordered queue drained
  under a lock, so SQL sees them in the order they happened.
- Since patch `local-projection` those writes run as local activities in the worker that
  runs the workflow task, so an update completes in one workflow task; incidents started
  before it keep regular activities (`workflow.patched` decides once per run).
- Each open state has a deadline (`sla_deadline`); the main loop escalates when it passes
  and re-arms it for the next level. Any transition resets the level and resolves the
  alerts of the state left.
- `merge` tells the primary (signal `merged_child`); the primary reports each later state
  to its merged children (signal `primary_changed`), which complete when it is terminal.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema.ids import workflow_id
    from schema.payloads import (
        CITIZEN_ACTOR,
        SYSTEM_ACTOR,
        AcknowledgeInput,
        Actor,
        AddInfoInput,
        ArriveInput,
        CancelInput,
        ClassifyInput,
        CloseInput,
        DuplicatesInput,
        DuplicateSuggestion,
        Escalation,
        EscalationInput,
        IncidentCase,
        IncidentInput,
        LocateInput,
        LocateResult,
        MergedChild,
        MergeInput,
        MergeReply,
        MergeRequest,
        NoteInput,
        PrimaryChanged,
        ProjectInput,
        PublicAlertRecord,
        PublishAlertInput,
        ReassignInput,
        RejectInput,
        ResolveAlertsInput,
        RouteInput,
        TimelineEvent,
        VerifyInput,
    )
    from schema.states import (
        ACTION_ROLES,
        DEFAULT_PRIORITY,
        PRIMARY_CHANGED_EVENT,
        STATE_PUBLIC_NOTES,
        UNIT_SCOPED,
        Action,
        Role,
        State,
        role_may,
        sla_deadline,
        steps,
    )

# Projections and alerts must land eventually: retry forever, at most every 30 s.
WRITE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30), maximum_attempts=0,
    non_retryable_error_types=["Invalid"],
)
# Ward and duplicate look-ups help the operator but must not hold the incident up.
LOOKUP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
    maximum_attempts=5, non_retryable_error_types=["Invalid"],
)
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Patch id: side-effect writes run as local activities (same retry policy, forever).
LOCAL_WRITES_PATCH = "local-projection"
# A local attempt is short (a stuck one must not hold a worker's shutdown for long), and
# every retry waits on a durable timer instead of holding the workflow task open.
LOCAL_TIMEOUT = timedelta(seconds=10)
LOCAL_RETRY_THRESHOLD = timedelta(milliseconds=500)

# The action recorded for the state an implied step passes through.
IMPLIED_ACTION: dict[State, Action] = {
    State.VERIFIED: Action.VERIFY,
    State.ACKNOWLEDGED: Action.ACKNOWLEDGE,
}



def refuse(kind: str, message_vi: str, message_en: str, **details: Any) -> ApplicationError:
    """A non-retryable refusal: kind is IllegalTransition, Forbidden or Invalid."""
    return ApplicationError(f"{message_vi} / {message_en}", dict(details, message_en=message_en),
                            type=kind, non_retryable=True)


@dataclass
class _Op:
    """A side effect waiting to be written: kind is project, alert, resolve or public_alert."""

    n: int
    kind: str
    arg: Any


@workflow.defn(name="IncidentWorkflow")
class IncidentWorkflowV1:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        now = workflow.now()
        received = min(inp.received_at, now)
        self._case = IncidentCase(
            id=inp.incident_id, tracking_code=inp.tracking_code, state=State.RECEIVED,
            category=inp.category, priority=DEFAULT_PRIORITY[inp.category],
            description=inp.description, location=inp.location, address=inp.address,
            reporter=inp.reporter, attachments=list(inp.attachments), source=inp.source,
            created_at=inp.received_at, updated_at=received, sla_scale=inp.sla_scale,
            sla=inp.sla,
        )
        self._lock = asyncio.Lock()
        self._ops: deque[_Op] = deque()
        self._ops_queued = 0
        self._ops_done = 0
        self._version = 0  # +1 on every state change: wakes the main loop
        self._told: dict[str, State | None] = {}  # merged child → last state told
        self._primary_at: datetime | None = None
        self._record("receive", CITIZEN_ACTOR, None, State.RECEIVED, at=received,
                     data={"category": inp.category.value, "source": inp.source,
                           "attachments": list(inp.attachments)},
                     public_note=STATE_PUBLIC_NOTES[State.RECEIVED])
        self._arm_deadline(received)

    # --- main loop --------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: IncidentInput) -> IncidentCase:
        # Receipt projection and look-ups run beside the SLA loop: a slow look-up must not
        # delay an escalation.
        intake = asyncio.create_task(self._intake())
        while True:
            await self._tell_children()
            if self._finished():
                break
            version = self._version

            def wake(version: int = version) -> bool:
                return self._version != version or self._children_behind()

            deadline = self._case.deadline
            if deadline is None:
                await workflow.wait_condition(wake)
                continue
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining > 0:
                try:
                    await workflow.wait_condition(
                        wake, timeout=timedelta(seconds=remaining),
                        timeout_summary=f"SLA {self._case.state.value}")
                    continue
                except TimeoutError:
                    if wake():
                        continue
            await self._escalate()
        await intake
        # Let running handlers (and late merged children) finish before completing.
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._tell_children()
            await self._drain(self._ops_queued)
            if workflow.all_handlers_finished() and not self._ops:
                break
        return self._case

    def _finished(self) -> bool:
        state = self._case.state
        if state is State.MERGED:
            primary = self._case.primary_state
            return primary is not None and primary.is_terminal
        return state.is_terminal

    async def _intake(self) -> None:
        """Project the receipt; meanwhile find the ward, the proposed unit and duplicate
        suggestions, and record them as a `locate` event."""
        loc = self._case.location
        results: tuple[Any, Any, Any] = await asyncio.gather(
            self._drain(self._ops_queued),
            workflow.execute_activity(
                names.LOCATE_WARD, LocateInput(lat=loc.lat, lon=loc.lon),
                result_type=LocateResult, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="locate ward"),
            workflow.execute_activity(
                names.FIND_DUPLICATES,
                DuplicatesInput(incident_id=self._case.id, category=self._case.category,
                                lat=loc.lat, lon=loc.lon, at=self._case.created_at),
                result_type=list[DuplicateSuggestion], start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="find duplicates"),
            return_exceptions=True,
        )
        _, located, duplicates = results
        data: dict[str, Any] = {}
        if isinstance(located, LocateResult):
            self._case.ward = located.ward
            self._case.proposed_unit = located.unit
            if located.ward:
                data.update(ward_code=located.ward.code, ward_name=located.ward.name,
                            exact=located.ward.exact, outside_city=located.ward.outside_city,
                            distance_m=located.ward.distance_m)
            data["proposed_unit_id"] = located.unit.id if located.unit else None
        else:
            workflow.logger.warning("ward lookup failed: %s", located)
            data["ward_error"] = str(located)
        if isinstance(duplicates, list):
            self._case.duplicates = duplicates
            data["duplicates"] = [d.incident_id for d in duplicates]
        else:
            workflow.logger.warning("duplicate search failed: %s", duplicates)
            data["duplicates_error"] = str(duplicates)
        self._record("locate", SYSTEM_ACTOR, None, None, data=data)
        await self._drain(self._ops_queued)

    async def _escalate(self) -> None:
        case = self._case
        assert case.deadline is not None
        now = workflow.now()
        level = case.escalation.level + 1
        overdue_since = case.escalation.overdue_since or case.deadline
        case.escalation = Escalation(level=level, overdue_since=overdue_since)
        step = (sla_deadline(case.priority, case.state, case.sla_scale, case.sla)
                or timedelta(minutes=1))
        next_deadline = case.deadline + step
        if next_deadline <= now:  # the worker was away for long: do not burst levels
            next_deadline = now + step
        case.deadline = next_deadline
        self._record("escalate", SYSTEM_ACTOR, None, None, data={
            "level": level, "state": case.state.value,
            "overdue_since": overdue_since.isoformat(), "next_deadline": next_deadline.isoformat(),
        })
        self._enqueue("alert", EscalationInput(
            incident_id=case.id, tracking_code=case.tracking_code, level=level,
            state=case.state, priority=case.priority, category=case.category,
            overdue_since=overdue_since, ward_code=case.ward.code if case.ward else None,
            unit_id=case.unit.id if case.unit else None,
        ))
        workflow.logger.info("incident %s overdue in %s: level %d", case.id, case.state, level)
        await self._drain(self._ops_queued)

    # --- queries ----------------------------------------------------------------------
    @workflow.query
    def case(self) -> IncidentCase:
        return self._case

    # --- updates ----------------------------------------------------------------------
    @workflow.update
    async def verify(self, inp: VerifyInput) -> IncidentCase:
        path = self._authorize(Action.VERIFY, inp.actor)
        self._walk(Action.VERIFY, inp.actor, path)
        return await self._done()

    @verify.validator
    def _check_verify(self, inp: VerifyInput) -> None:
        self._authorize(Action.VERIFY, inp.actor)

    @workflow.update
    async def reject(self, inp: RejectInput) -> IncidentCase:
        path = self._authorize(Action.REJECT, inp.actor)
        self._walk(Action.REJECT, inp.actor, path, {"reason": inp.reason})
        return await self._done()

    @reject.validator
    def _check_reject(self, inp: RejectInput) -> None:
        self._authorize(Action.REJECT, inp.actor)

    @workflow.update
    async def merge(self, inp: MergeInput) -> IncidentCase:
        self._authorize_merge(inp)
        primary = workflow.get_external_workflow_handle(workflow_id(inp.into_incident_id))
        try:
            await primary.signal("merged_child", MergedChild(
                incident_id=self._case.id, tracking_code=self._case.tracking_code, by=inp.actor))
        except FailureError as exc:
            raise refuse("IllegalTransition", "Vụ việc chính không còn mở",
                         "the primary incident is not open",
                         into_incident_id=inp.into_incident_id) from exc
        path = self._authorize_merge(inp)  # the state may have moved while signalling
        self._case.merged_into = inp.into_incident_id
        self._walk(Action.MERGE, inp.actor, path, {
            "into_incident_id": inp.into_incident_id,
            "into_tracking_code": inp.into_tracking_code,
        })
        return await self._done()

    @merge.validator
    def _check_merge(self, inp: MergeInput) -> None:
        self._authorize_merge(inp)

    @workflow.update
    async def classify(self, inp: ClassifyInput) -> IncidentCase:
        path = self._authorize(Action.CLASSIFY, inp.actor)
        data = {"category": inp.category.value, "priority": int(inp.priority),
                "previous_category": self._case.category.value,
                "previous_priority": int(self._case.priority)}
        self._case.category = inp.category
        self._case.priority = inp.priority
        self._walk(Action.CLASSIFY, inp.actor, path, data)
        return await self._done()

    @classify.validator
    def _check_classify(self, inp: ClassifyInput) -> None:
        self._authorize(Action.CLASSIFY, inp.actor)

    @workflow.update
    async def route(self, inp: RouteInput) -> IncidentCase:
        path = self._authorize(Action.ROUTE, inp.actor)
        data = self._unit_data(inp.unit)
        self._case.unit = inp.unit
        self._walk(Action.ROUTE, inp.actor, path, data)
        return await self._done()

    @route.validator
    def _check_route(self, inp: RouteInput) -> None:
        self._authorize(Action.ROUTE, inp.actor)

    @workflow.update
    async def acknowledge(self, inp: AcknowledgeInput) -> IncidentCase:
        path = self._authorize(Action.ACKNOWLEDGE, inp.actor)
        self._walk(Action.ACKNOWLEDGE, inp.actor, path)
        return await self._done()

    @acknowledge.validator
    def _check_acknowledge(self, inp: AcknowledgeInput) -> None:
        self._authorize(Action.ACKNOWLEDGE, inp.actor)

    @workflow.update
    async def arrive(self, inp: ArriveInput) -> IncidentCase:
        path = self._authorize(Action.ARRIVE, inp.actor)
        self._walk(Action.ARRIVE, inp.actor, path)
        return await self._done()

    @arrive.validator
    def _check_arrive(self, inp: ArriveInput) -> None:
        self._authorize(Action.ARRIVE, inp.actor)

    @workflow.update
    async def note(self, inp: NoteInput) -> IncidentCase:
        self._authorize(Action.NOTE, inp.actor)
        self._add_attachments(inp.attachments)
        self._record(Action.NOTE.value, inp.actor, None, None,
                     data={"text": inp.text, "attachments": inp.attachments,
                           "public": inp.public},
                     public_note=inp.text if inp.public else None)
        return await self._done()

    @note.validator
    def _check_note(self, inp: NoteInput) -> None:
        self._authorize(Action.NOTE, inp.actor)

    @workflow.update
    async def close(self, inp: CloseInput) -> IncidentCase:
        path = self._authorize(Action.CLOSE, inp.actor)
        self._case.outcome = inp.outcome
        self._walk(Action.CLOSE, inp.actor, path,
                   {"outcome": inp.outcome.value, "summary": inp.summary})
        return await self._done()

    @close.validator
    def _check_close(self, inp: CloseInput) -> None:
        self._authorize(Action.CLOSE, inp.actor)

    @workflow.update
    async def reassign(self, inp: ReassignInput) -> IncidentCase:
        path = self._authorize(Action.REASSIGN, inp.actor)
        data = self._unit_data(inp.unit)
        data.update(reason=inp.reason,
                    previous_unit_id=self._case.unit.id if self._case.unit else None)
        self._case.unit = inp.unit
        self._walk(Action.REASSIGN, inp.actor, path, data)
        return await self._done()

    @reassign.validator
    def _check_reassign(self, inp: ReassignInput) -> None:
        self._authorize(Action.REASSIGN, inp.actor)

    @workflow.update
    async def publish_alert(self, inp: PublishAlertInput) -> IncidentCase:
        self._authorize(Action.PUBLISH_ALERT, inp.actor)
        case = self._case
        event = self._record(Action.PUBLISH_ALERT.value, inp.actor, None, None, data={
            "alert_id": inp.alert_id, "headline": inp.headline,
            "instruction": inp.instruction, "radius_m": inp.radius_m,
        })
        self._enqueue("public_alert", PublicAlertRecord(
            id=inp.alert_id, incident_id=case.id, headline=inp.headline,
            instruction=inp.instruction, category=case.category, priority=case.priority,
            lat=case.location.lat, lon=case.location.lon, radius_m=inp.radius_m,
            sent_at=event.at, sender=inp.actor.username,
        ))
        return await self._done()

    @publish_alert.validator
    def _check_publish_alert(self, inp: PublishAlertInput) -> None:
        self._authorize(Action.PUBLISH_ALERT, inp.actor)

    @workflow.update
    async def cancel(self, inp: CancelInput) -> IncidentCase:
        path = self._authorize(Action.CANCEL, inp.actor)
        self._walk(Action.CANCEL, inp.actor, path, {"reason": inp.reason})
        return await self._done()

    @cancel.validator
    def _check_cancel(self, inp: CancelInput) -> None:
        self._authorize(Action.CANCEL, inp.actor)

    @workflow.update
    async def add_info(self, inp: AddInfoInput) -> IncidentCase:
        self._authorize_add_info(inp)
        self._add_attachments(inp.attachments)
        self._record(Action.ADD_INFO.value, inp.actor, None, None,
                     data={"text": inp.text, "attachments": inp.attachments})
        return await self._done()

    @add_info.validator
    def _check_add_info(self, inp: AddInfoInput) -> None:
        self._authorize_add_info(inp)

    # --- signals between incidents ----------------------------------------------------
    @workflow.signal(name="merged_child")
    async def merged_child(self, sig: MergedChild) -> None:
        """Another report was merged into this one."""
        if sig.incident_id in self._told or sig.incident_id == self._case.id:
            return
        self._told[sig.incident_id] = None
        self._case.merged_incidents.append(sig.incident_id)
        self._record("merged_in", sig.by, None, None, data={
            "incident_id": sig.incident_id, "tracking_code": sig.tracking_code})
        await self._drain(self._ops_queued)

    @workflow.signal(name="primary_changed")
    async def primary_changed(self, sig: PrimaryChanged) -> None:
        """The incident this one was merged into changed state."""
        # The primary may answer before this incident's merge update has finished.
        await workflow.wait_condition(lambda: self._case.state.is_terminal)
        if self._case.state is not State.MERGED or sig.primary_id != self._case.merged_into:
            return
        if self._primary_at is not None and sig.at < self._primary_at:
            return
        self._primary_at = sig.at
        if sig.state == self._case.primary_state:
            return
        self._case.primary_state = sig.state
        self._version += 1
        self._record(PRIMARY_CHANGED_EVENT, SYSTEM_ACTOR, None, None,
                     data={"primary_id": sig.primary_id, "state": sig.state.value},
                     public_note=STATE_PUBLIC_NOTES[sig.state])
        await self._drain(self._ops_queued)

    @workflow.signal(name="merge_request")
    async def merge_request(self, req: MergeRequest) -> None:
        """A v2 incident asks to be merged into this one: answer at once (v2's merge
        protocol; histories recorded before it never carry this signal)."""
        case = self._case
        accepted = not case.state.is_terminal and req.child_id != case.id
        reply = MergeReply(
            request_id=req.request_id, target_id=case.id, accepted=accepted,
            target_tracking_code=case.tracking_code, target_state=case.state,
            reason_vi=None if accepted else "Vụ việc đích đã kết thúc",
            reason_en=None if accepted else "the target incident is no longer open")
        handle = workflow.get_external_workflow_handle(workflow_id(req.child_id))
        try:
            await handle.signal("merge_reply", reply)
        except FailureError as exc:
            workflow.logger.warning("could not answer merge request of %s: %s",
                                    req.child_id, exc)

    def _children_behind(self) -> bool:
        return any(told != self._case.state for told in self._told.values())

    async def _tell_children(self) -> None:
        for child, told in list(self._told.items()):
            state = self._case.state
            if told == state:
                continue
            self._told[child] = state
            handle = workflow.get_external_workflow_handle(workflow_id(child))
            try:
                await handle.signal("primary_changed", PrimaryChanged(
                    primary_id=self._case.id, state=state, at=workflow.now()))
            except FailureError as exc:
                workflow.logger.warning("could not tell merged incident %s: %s", child, exc)

    # --- rules --------------------------------------------------------------------------
    def _authorize(self, action: Action, actor: Actor) -> list[State]:
        """The path `action` takes, or a refusal. Read-only: validators call it too."""
        state = self._case.state
        path = steps(action, state)
        if path is None:
            raise refuse("IllegalTransition",
                         f"Không thể thực hiện '{action.value}' khi vụ việc ở trạng thái "
                         f"'{state.value}'",
                         f"'{action.value}' is not allowed in state '{state.value}'",
                         action=action.value, state=state.value)
        if not role_may(action, actor.role, state):
            if actor.role in ACTION_ROLES[action]:
                # The role may do this, just not now (an officer closing what nobody took).
                raise refuse("IllegalTransition",
                             f"Vai trò '{actor.role.value}' không thể '{action.value}' khi vụ "
                             f"việc ở trạng thái '{state.value}'",
                             f"role '{actor.role.value}' cannot '{action.value}' in state "
                             f"'{state.value}'", action=action.value, state=state.value)
            raise refuse("Forbidden",
                         f"Vai trò '{actor.role.value}' không được phép '{action.value}'",
                         f"role '{actor.role.value}' may not '{action.value}'",
                         action=action.value, state=state.value)
        if actor.role is Role.OFFICER and action in UNIT_SCOPED:
            unit = self._case.unit
            if unit is None or actor.unit_id != unit.id:
                raise refuse("Forbidden", "Vụ việc không được giao cho đơn vị của bạn",
                             "the incident is not assigned to your unit",
                             action=action.value, state=state.value)
        return path

    def _authorize_merge(self, inp: MergeInput) -> list[State]:
        path = self._authorize(Action.MERGE, inp.actor)
        if inp.into_incident_id == self._case.id:
            raise refuse("Invalid", "Không thể gộp vụ việc vào chính nó",
                         "an incident cannot be merged into itself")
        return path

    def _authorize_add_info(self, inp: AddInfoInput) -> None:
        self._authorize(Action.ADD_INFO, inp.actor)
        if not (inp.text and inp.text.strip()) and not inp.attachments:
            raise refuse("Invalid", "Cần có nội dung hoặc tệp đính kèm",
                         "text or an attachment is required")

    # --- changing the case -------------------------------------------------------------
    def _walk(self, action: Action, actor: Actor, path: list[State],
              data: dict[str, Any] | None = None) -> None:
        """Move through `path`, one event per state; implied steps name their own action."""
        for i, target in enumerate(path):
            last = i == len(path) - 1
            if last:
                self._transition(action.value, actor, target, data or {})
            else:
                implied = IMPLIED_ACTION.get(target, action)
                self._transition(implied.value, actor, target, {"implied_by": action.value})

    def _transition(self, action: str, actor: Actor, target: State,
                    data: dict[str, Any]) -> None:
        case = self._case
        left = case.state
        now = workflow.now()
        if case.escalation.level > 0:
            self._enqueue("resolve", ResolveAlertsInput(incident_id=case.id, state=left, at=now))
        case.state = target
        case.escalation = Escalation()
        if target is State.ACKNOWLEDGED and case.acknowledged_at is None:
            case.acknowledged_at = now
        elif target is State.ON_SCENE and case.on_scene_at is None:
            case.on_scene_at = now
        elif target.is_terminal:
            case.closed_at = now
        self._version += 1
        self._arm_deadline(now)
        self._record(action, actor, left, target, data=data, public_note=STATE_PUBLIC_NOTES[target])

    def _arm_deadline(self, entered_at: datetime) -> None:
        case = self._case
        allowed = sla_deadline(case.priority, case.state, case.sla_scale, case.sla)
        case.deadline = None if allowed is None else entered_at + allowed

    def _record(self, action: str, actor: Actor, from_state: State | None,
                to_state: State | None, *, data: dict[str, Any] | None = None,
                public_note: str | None = None, at: datetime | None = None) -> TimelineEvent:
        at = at or workflow.now()
        event = TimelineEvent(seq=self._case.last_seq + 1, at=at, actor=actor, action=action,
                              from_state=from_state, to_state=to_state, data=data or {},
                              public_note=public_note)
        self._case.timeline.append(event)
        self._case.updated_at = at
        self._enqueue("project", event)
        return event

    def _add_attachments(self, ids: list[str]) -> None:
        for attachment_id in ids:
            if attachment_id not in self._case.attachments:
                self._case.attachments.append(attachment_id)

    @staticmethod
    def _unit_data(unit: Any) -> dict[str, Any]:
        return {"unit_id": unit.id, "unit_name": unit.name, "unit_kind": unit.kind,
                "ward_code": unit.ward_code}

    # --- side effects, in order ----------------------------------------------------------
    def _enqueue(self, kind: str, arg: Any) -> None:
        self._ops_queued += 1
        self._ops.append(_Op(self._ops_queued, kind, arg))

    async def _done(self) -> IncidentCase:
        await self._drain(self._ops_queued)
        return self._case

    async def _drain(self, upto: int) -> None:
        """Write queued side effects in order until op `upto` is written."""
        async with self._lock:
            while self._ops and self._ops_done < upto:
                op = self._ops[0]
                await self._write(op)
                self._ops.popleft()
                self._ops_done = op.n

    async def _write(self, op: _Op) -> None:
        if op.kind == "project":
            # The row reflects the case now; the timeline travels once, in the event.
            snapshot = self._case.model_copy(update={"timeline": []})
            name, arg = names.PROJECT_EVENT, ProjectInput(case=snapshot, event=op.arg)
            summary = f"event {op.arg.seq} {op.arg.action}"
        elif op.kind == "alert":
            name, arg, summary = names.RAISE_ALERT, op.arg, f"alert level {op.arg.level}"
        elif op.kind == "resolve":
            name, arg, summary = names.RESOLVE_ALERTS, op.arg, f"resolve {op.arg.state.value}"
        else:
            name, arg, summary = names.PUBLISH_PUBLIC_ALERT, op.arg, "public alert"
        try:
            if workflow.patched(LOCAL_WRITES_PATCH):  # memoized: one answer per run
                await workflow.execute_local_activity(
                    name, arg, start_to_close_timeout=LOCAL_TIMEOUT,
                    retry_policy=WRITE_RETRY, local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                    summary=summary)
            else:
                await workflow.execute_activity(
                    name, arg, start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=WRITE_RETRY, summary=summary)
        except ActivityError as exc:
            # Only a non-retryable (Invalid) failure gets here: log it, keep the case going.
            workflow.logger.error("%s failed for incident %s: %s", name, self._case.id, exc)
