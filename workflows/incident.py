"""IncidentWorkflow (type "IncidentWorkflowV2"): one durable workflow per incident, the
source of truth for its state, with a history that stays bounded whatever comes in.

- Human actions are updates named as `schema.states.Action` values. Each validator asks
  the rules of schema/rules.py (the transition, the actor's role and unit, the merge in
  progress); a refused update raises `ApplicationError` of the refusal's kind
  (IllegalTransition, Forbidden, Invalid, Stale, NoChange) with its code in the details,
  and never enters history. An accepted update returns a small `ActionResult`
  once its events are in SQL; the HTTP layer reads the case afresh.
- The workflow keeps only `IncidentState`: no texts, no timeline. Every accepted change
  becomes a `TimelineEvent` (seq + 1) handed to the projection, which writes it to SQL in
  order through one queue drained under a lock (local activities, retried forever).
- Each open state has a deadline (`sla_deadline`). When it passes the incident climbs the
  ladder of `schema.escalation` one level per SLA period, one timeline event per level;
  past the top level it only reminds, at growing intervals, updating the existing alert.
  Any transition resets the level and resolves the alerts of the state left.
- History is bounded: past HISTORY_EVENTS_BOUND events or HISTORY_BYTES_BOUND bytes, or
  when Temporal suggests it, the workflow drains its handlers and writes, then
  continues-as-new with its compact state (`IncidentInput.resume`).
- Merge is a handshake between two incidents' workflows (workflows/merge.py).

The class is assembled from parts, each in its own module: workflows/case.py (the state,
the rules it asks and how a change is recorded), workflows/merge.py (the merge update and
the signals between incidents), workflows/escalation.py (what a passed deadline records
and raises), workflows/intake.py (the ward and duplicate look-ups of a new incident) and
workflows/writes.py (the ordered SQL writes). Temporal registers the handlers the parts
define as this class's own, under the same names.

How this class (its parts included) changes: it keeps its name and type. A change that
alters the commands a running incident's history holds goes `workflow.patched` →
`workflow.deprecate_patch` → removal, one release each, with a recorded history of each
shape under tests/histories/ (its README says when each step may be taken). A handler old
histories never call needs none of it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.escalation import Escalating
from workflows.intake import Intake
from workflows.merge import MergeHandshake
from workflows.writes import Writes

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema.activity_args import PublicAlertRecord
    from schema.payloads import (
        CITIZEN_ACTOR,
        INCIDENT_WORKFLOW,
        MESSAGES_KEPT,
        AcknowledgeInput,
        ActionResult,
        AddInfoInput,
        ArriveInput,
        CancelInput,
        ClassifyInput,
        CloseInput,
        IncidentInput,
        IncidentState,
        MessageInput,
        NoteInput,
        PublishAlertInput,
        ReassignInput,
        RejectInput,
        RouteInput,
        VerifyInput,
    )
    from schema.signals import ChildInfo
    from schema.states import (
        DEFAULT_PRIORITY,
        RECEIVE_EVENT,
        REPLY_EVENT,
        STATE_PUBLIC_NOTES,
        Action,
        Role,
        State,
    )

WORKFLOW_TYPE = INCIDENT_WORKFLOW

# Continue-as-new past either bound (or when Temporal suggests it, at 4 MB / 4K events by
# default). 1 MB keeps every run far under Temporal's 50 MB hard limit even when a burst
# of 5,000-character updates lands in the hand-over's last workflow tasks.
HISTORY_EVENTS_BOUND = 2_000
HISTORY_BYTES_BOUND = 1_000_000


@workflow.defn(name=WORKFLOW_TYPE)
class IncidentWorkflow(MergeHandshake, Escalating, Intake):
    """One incident, from receipt to its end: the SLA loop, the hand-over and the human
    actions; merging, escalating and intake are its parts' (see the module docstring)."""

    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._inp = inp
        self._writes = Writes(inp.incident_id)
        self._start_merge_part()
        if inp.resume is not None:
            self._s = inp.resume.model_copy(deep=True)
            self._s.run += 1
            self._located = True
            return
        now = workflow.now()
        received = min(inp.received_at, now)
        self._s = IncidentState(
            id=inp.incident_id, tracking_code=inp.tracking_code, state=State.RECEIVED,
            category=inp.category, priority=DEFAULT_PRIORITY[inp.category],
            location=inp.location, created_at=inp.received_at, updated_at=received,
            source=inp.source, silent=inp.silent, sla_scale=inp.sla_scale, sla=inp.sla,
            reminders=inp.reminders,
        )
        self._located = False
        self._record(RECEIVE_EVENT, CITIZEN_ACTOR, None, State.RECEIVED, at=received,
                     data={"category": inp.category.value, "source": inp.source,
                           "silent": inp.silent, "attachments": list(inp.attachments)},
                     public_note=STATE_PUBLIC_NOTES[State.RECEIVED], report=inp)
        self._arm_deadline(received)

    # --- main loop --------------------------------------------------------------------
    @workflow.run
    async def run(self, inp: IncidentInput) -> ActionResult:
        # Receipt projection and look-ups run beside the SLA loop: a slow look-up must not
        # delay an escalation.
        intake = None if self._located else asyncio.create_task(self._intake())
        while True:
            await self._tell_children()
            if self._finished():
                break
            if self._history_full() and (intake is None or intake.done()):
                await self._hand_over()
            version, seq = self._s.version, self._s.seq

            def wake(version: int = version, seq: int = seq) -> bool:
                return (self._s.version != version or self._children_behind()
                        or (self._s.seq != seq and self._history_full()))

            deadline = self._s.deadline
            if deadline is None:
                await workflow.wait_condition(wake)
                continue
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining > 0:
                try:
                    await workflow.wait_condition(
                        wake, timeout=timedelta(seconds=remaining),
                        timeout_summary=f"SLA {self._s.state.value}")
                    continue
                except TimeoutError:
                    if wake():
                        continue
            await self._escalate()
        if intake is not None:
            await intake
        # Let running handlers (and late merged children) finish before completing.
        await self._settle()
        return self._result()

    def _finished(self) -> bool:
        state = self._s.state
        if state is State.MERGED:
            primary = self._s.primary_state
            return primary is not None and primary.is_terminal
        return state.is_terminal

    def _history_full(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > HISTORY_EVENTS_BOUND
                or info.get_current_history_size() > HISTORY_BYTES_BOUND)

    async def _settle(self) -> None:
        """Wait until no handler runs and every queued write is done."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            await self._tell_children()
            await self._writes.drain()
            if workflow.all_handlers_finished() and not self._writes.pending:
                return

    async def _hand_over(self) -> None:
        """Continue-as-new with the compact state. Handlers are drained first; an update
        that arrives after this point is delivered to the next run by the server."""
        await self._settle()
        workflow.logger.info("incident %s continues as new (run %d, %d events)",
                             self._s.id, self._s.run, workflow.info().get_current_history_length())
        workflow.continue_as_new(self._inp.model_copy(update={
            "resume": self._s, "description": "", "address": None, "reporter": None,
            "attachments": [], "intake": None,
        }))

    # --- queries ----------------------------------------------------------------------
    @workflow.query
    def case(self) -> IncidentState:
        return self._s

    # --- updates ----------------------------------------------------------------------
    @workflow.update
    async def verify(self, inp: VerifyInput) -> ActionResult:
        return await self._step(Action.VERIFY, inp)

    @verify.validator
    def _check_verify(self, inp: VerifyInput) -> None:
        self._authorize(Action.VERIFY, inp)

    @workflow.update
    async def reject(self, inp: RejectInput) -> ActionResult:
        return await self._step(Action.REJECT, inp, {"reason": inp.reason})

    @reject.validator
    def _check_reject(self, inp: RejectInput) -> None:
        self._authorize(Action.REJECT, inp)


    @workflow.update
    async def classify(self, inp: ClassifyInput) -> ActionResult:
        path = self._authorize(Action.CLASSIFY, inp)
        data = {"category": inp.category.value, "priority": int(inp.priority),
                "previous_category": self._s.category.value,
                "previous_priority": int(self._s.priority)}
        self._s.category = inp.category
        self._s.priority = inp.priority
        self._walk(Action.CLASSIFY, inp, path, data)
        return await self._done()

    @classify.validator
    def _check_classify(self, inp: ClassifyInput) -> None:
        self._authorize(Action.CLASSIFY, inp)

    @workflow.update
    async def route(self, inp: RouteInput) -> ActionResult:
        path = self._authorize_unit(Action.ROUTE, inp)
        data = self._unit_data(inp.unit)
        data["previous_unit_id"] = self._s.unit.id if self._s.unit else None
        self._s.unit = inp.unit
        self._walk(Action.ROUTE, inp, path, data)
        return await self._done()

    @route.validator
    def _check_route(self, inp: RouteInput) -> None:
        self._authorize_unit(Action.ROUTE, inp)

    @workflow.update
    async def acknowledge(self, inp: AcknowledgeInput) -> ActionResult:
        return await self._step(Action.ACKNOWLEDGE, inp)

    @acknowledge.validator
    def _check_acknowledge(self, inp: AcknowledgeInput) -> None:
        self._authorize(Action.ACKNOWLEDGE, inp)

    @workflow.update
    async def arrive(self, inp: ArriveInput) -> ActionResult:
        return await self._step(Action.ARRIVE, inp)

    @arrive.validator
    def _check_arrive(self, inp: ArriveInput) -> None:
        self._authorize(Action.ARRIVE, inp)

    @workflow.update
    async def note(self, inp: NoteInput) -> ActionResult:
        self._authorize(Action.NOTE, inp)
        self._record(Action.NOTE.value, inp.actor, None, None,
                     data={"text": inp.text, "attachments": inp.attachments,
                           "public": inp.public},
                     public_note=inp.text if inp.public else None, at=self._when(inp))
        return await self._done()

    @note.validator
    def _check_note(self, inp: NoteInput) -> None:
        self._authorize(Action.NOTE, inp)

    @workflow.update
    async def message(self, inp: MessageInput) -> ActionResult:
        """A question or instruction to the reporter. Keeps the state and the version (it
        changes nothing another staff member acted on). The event records the sender's role
        and, for an officer, the unit's name: what the tracking page shows instead of a
        name. A handler old histories never call, so it needs no `workflow.patched`."""
        self._authorize(Action.MESSAGE, inp)
        s = self._s
        unit_name = s.unit.name if inp.actor.role is Role.OFFICER and s.unit else None
        event = self._record(Action.MESSAGE.value, inp.actor, None, None,
                             data={"text": inp.text, "sender_role": inp.actor.role.value,
                                   "unit_name": unit_name}, at=self._when(inp))
        s.messages = [*s.messages, event.seq][-MESSAGES_KEPT:]
        return await self._done()

    @message.validator
    def _check_message(self, inp: MessageInput) -> None:
        self._authorize(Action.MESSAGE, inp)

    @workflow.update
    async def close(self, inp: CloseInput) -> ActionResult:
        path = self._authorize(Action.CLOSE, inp)
        self._s.outcome = inp.outcome
        self._walk(Action.CLOSE, inp, path,
                   {"outcome": inp.outcome.value, "summary": inp.summary})
        return await self._done()

    @close.validator
    def _check_close(self, inp: CloseInput) -> None:
        self._authorize(Action.CLOSE, inp)

    @workflow.update
    async def reassign(self, inp: ReassignInput) -> ActionResult:
        path = self._authorize_unit(Action.REASSIGN, inp)
        data = self._unit_data(inp.unit)
        data.update(reason=inp.reason,
                    previous_unit_id=self._s.unit.id if self._s.unit else None)
        self._s.unit = inp.unit
        self._walk(Action.REASSIGN, inp, path, data)
        return await self._done()

    @reassign.validator
    def _check_reassign(self, inp: ReassignInput) -> None:
        self._authorize_unit(Action.REASSIGN, inp)

    @workflow.update
    async def publish_alert(self, inp: PublishAlertInput) -> ActionResult:
        self._authorize(Action.PUBLISH_ALERT, inp)
        s = self._s
        event = self._record(Action.PUBLISH_ALERT.value, inp.actor, None, None, data={
            "alert_id": inp.alert_id, "headline": inp.headline,
            "instruction": inp.instruction, "radius_m": inp.radius_m,
        }, at=self._when(inp))
        self._enqueue(names.PUBLISH_PUBLIC_ALERT, PublicAlertRecord(
            id=inp.alert_id, incident_id=s.id, headline=inp.headline,
            instruction=inp.instruction, category=s.category, priority=s.priority,
            lat=s.location.lat, lon=s.location.lon, radius_m=inp.radius_m,
            sent_at=event.at, sender=inp.actor.username,
        ), "public alert")
        return await self._done()

    @publish_alert.validator
    def _check_publish_alert(self, inp: PublishAlertInput) -> None:
        self._authorize(Action.PUBLISH_ALERT, inp)

    @workflow.update
    async def cancel(self, inp: CancelInput) -> ActionResult:
        return await self._step(Action.CANCEL, inp, {"reason": inp.reason})

    @cancel.validator
    def _check_cancel(self, inp: CancelInput) -> None:
        self._authorize(Action.CANCEL, inp)

    @workflow.update
    async def add_info(self, inp: AddInfoInput) -> ActionResult:
        self._authorize_add_info(inp)
        data: dict[str, Any] = {"text": inp.text, "attachments": inp.attachments}
        if inp.reply_to is not None:
            data["reply_to"] = inp.reply_to
        # An answer to a staff message is a "reply" event; the commands are the same as an
        # addition's (one projection), so histories without replies replay unchanged.
        event = self._record(
            REPLY_EVENT if inp.reply_to is not None else Action.ADD_INFO.value,
            inp.actor, None, None, data=data, at=self._when(inp))
        primary = self._s.merged_into
        if self._s.state is State.MERGED and primary:
            await self._signal(primary, "child_info", ChildInfo(
                child_id=self._s.id, child_tracking_code=self._s.tracking_code,
                text=inp.text, attachments=inp.attachments, at=event.at))
        return await self._done()

    @add_info.validator
    def _check_add_info(self, inp: AddInfoInput) -> None:
        self._authorize_add_info(inp)

