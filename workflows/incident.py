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
- Merge is a handshake: the merging incident asks its target (`merge_request`), which
  accepts only if it is open, not merged and not merging elsewhere. Of two opposite
  merges at once (each incident asking the other), the one into the larger id wins: a
  target that is itself merging into the asker accepts only an asker with the smaller
  id (`_absorb_refusal`). The merging incident then commits and confirms
  (`merged_child`). The primary reports each later state to its merged children
  (`primary_changed`), which complete when it is terminal. A citizen of a merged report
  may still add information: it is recorded on both.

How this class changes: it keeps its name and type. A change that alters the commands a
running incident's history holds goes `workflow.patched` → `workflow.deprecate_patch` →
removal, one release each, with a recorded history of each shape under tests/histories/
(its README says when each step may be taken). A handler old histories never call needs
none of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, FailureError

from workflows.writes import Writes

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema import rules
    from schema.escalation import TOP_LEVEL, reminder_delay
    from schema.ids import workflow_id
    from schema.payloads import (
        CITIZEN_ACTOR,
        INCIDENT_WORKFLOW,
        MESSAGES_KEPT,
        SYSTEM_ACTOR,
        AcknowledgeInput,
        ActionInput,
        ActionResult,
        Actor,
        AddInfoInput,
        ArriveInput,
        CancelInput,
        ChangeNote,
        ChildInfo,
        ClassifyInput,
        CloseInput,
        DuplicatesInput,
        DuplicateSuggestion,
        Escalation,
        EscalationInput,
        IncidentInput,
        IncidentState,
        LocateInput,
        LocateResult,
        MergeCancel,
        MergedChild,
        MergeInput,
        MergeReply,
        MergeRequest,
        MessageInput,
        NoteInput,
        PrimaryChanged,
        ProjectEvent,
        PublicAlertRecord,
        PublishAlertInput,
        ReassignInput,
        RejectInput,
        ReminderInput,
        ResolveAlertsInput,
        RouteInput,
        TimelineEvent,
        UnitRef,
        VerifyInput,
    )
    from schema.rules import Kind, Refusal
    from schema.states import (
        DEFAULT_PRIORITY,
        ESCALATE_EVENT,
        IMPLIED_ACTION,
        LOCATE_EVENT,
        MERGED_IN_EVENT,
        PRIMARY_CHANGED_EVENT,
        RECEIVE_EVENT,
        REPLY_EVENT,
        STATE_PUBLIC_NOTES,
        Action,
        Role,
        State,
        sla_deadline,
    )

WORKFLOW_TYPE = INCIDENT_WORKFLOW

# Ward and duplicate look-ups help the operator but must not hold the incident up.
LOOKUP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10),
    maximum_attempts=5, non_retryable_error_types=["Invalid"],
)
LOOKUP_TIMEOUT = timedelta(seconds=30)

# Continue-as-new past either bound (or when Temporal suggests it, at 4 MB / 4K events by
# default). 1 MB keeps every run far under Temporal's 50 MB hard limit even when a burst
# of 5,000-character updates lands in the hand-over's last workflow tasks.
HISTORY_EVENTS_BOUND = 2_000
HISTORY_BYTES_BOUND = 1_000_000
# How long a merging incident waits for its target's answer (how long the target holds
# a merge it accepted is schema.rules.MERGE_HOLD).
MERGE_REPLY_TIMEOUT = timedelta(seconds=20)
MAX_DUPLICATES = 10


def refused(refusal: Refusal) -> ApplicationError:
    """A rule's refusal as the update's failure: its kind is the error's type, its code
    and details are the error's details (the API words them: api/wording.py); the
    message is plain English for logs."""
    return ApplicationError(str(refusal), dict(refusal.details, code=refusal.code),
                            type=refusal.kind, non_retryable=True)


def refusing(kind: Kind, code: str, **details: Any) -> ApplicationError:
    return refused(Refusal(kind, code, **details))


P = ParamSpec("P")
T = TypeVar("T")


def obey(rule: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`rule`'s answer, its refusal raised as the update's failure."""
    try:
        return rule(*args, **kwargs)
    except Refusal as refusal:
        raise refused(refusal) from None


def _request_key() -> str | None:
    """The update id of the update being handled when the API named it from an
    Idempotency-Key (`<action>:<key>`, api/services/actions.py), else None. Recorded in
    the event's data as `request`, so the API can tell that a keyed action was applied
    after the workflow has ended (Temporal's update-id dedupe ends with the run). Only
    event data, no new command: histories recorded before replay unchanged."""
    info = workflow.current_update_info()
    return info.id if info is not None and ":" in info.id else None


@workflow.defn(name=WORKFLOW_TYPE)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, inp: IncidentInput) -> None:
        self._inp = inp
        self._writes = Writes(inp.incident_id)
        self._replies: dict[str, MergeReply] = {}
        self._merge_request: str | None = None  # this incident's merge in progress
        self._early_primary: PrimaryChanged | None = None  # came before our merge committed
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

    async def _intake(self) -> None:
        """Project the receipt; meanwhile find the ward, the proposed unit and duplicate
        suggestions, and record them as a `locate` event."""
        s = self._s
        loc = s.location
        results: tuple[Any, Any, Any] = await asyncio.gather(
            self._writes.drain(),
            workflow.execute_activity(
                names.LOCATE_WARD, LocateInput(lat=loc.lat, lon=loc.lon),
                result_type=LocateResult, start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="locate ward"),
            workflow.execute_activity(
                names.FIND_DUPLICATES,
                DuplicatesInput(incident_id=s.id, category=s.category,
                                lat=loc.lat, lon=loc.lon, at=s.created_at),
                result_type=list[DuplicateSuggestion], start_to_close_timeout=LOOKUP_TIMEOUT,
                retry_policy=LOOKUP_RETRY, summary="find duplicates"),
            return_exceptions=True,
        )
        _, located, duplicates = results
        data: dict[str, Any] = {}
        if isinstance(located, LocateResult):
            s.ward = located.ward
            s.proposed_unit = located.unit
            if located.ward:
                data.update(ward_code=located.ward.code, ward_name=located.ward.name,
                            exact=located.ward.exact, outside_city=located.ward.outside_city,
                            distance_m=located.ward.distance_m)
            data["proposed_unit_id"] = located.unit.id if located.unit else None
        else:
            workflow.logger.warning("ward lookup failed: %s", located)
            data["ward_error"] = str(located)
        if isinstance(duplicates, list):
            s.duplicates = duplicates[:MAX_DUPLICATES]
            data["duplicates"] = [d.incident_id for d in s.duplicates]
        else:
            workflow.logger.warning("duplicate search failed: %s", duplicates)
            data["duplicates_error"] = str(duplicates)
        self._located = True
        self._record(LOCATE_EVENT, SYSTEM_ACTOR, None, None, data=data, at=self._moment(
            located.at if isinstance(located, LocateResult) else None))
        await self._writes.drain()

    async def _escalate(self) -> None:
        """The deadline passed: climb one level, or past the top only remind."""
        s = self._s
        assert s.deadline is not None
        now = workflow.now()
        due = s.deadline  # the event's time: when the level was reached (see _moment)
        esc = s.escalation
        step = sla_deadline(s.priority, s.state, s.sla_scale, s.sla) or timedelta(minutes=1)
        overdue_since = esc.overdue_since or s.deadline
        if esc.level < TOP_LEVEL:
            level = esc.level + 1
            s.escalation = Escalation(level=level, overdue_since=overdue_since)
            wait = step if level < TOP_LEVEL else reminder_delay(0, s.sla_scale, s.reminders)
        else:
            level = esc.level
            n = esc.reminders + 1
            s.escalation = esc.model_copy(update={"reminders": n, "last_reminded_at": now})
            wait = reminder_delay(n, s.sla_scale, s.reminders)
        next_deadline = s.deadline + wait
        if next_deadline <= now:  # the worker was away for long: do not burst
            next_deadline = now + wait
        s.deadline = next_deadline
        common = {"incident_id": s.id, "tracking_code": s.tracking_code, "level": level,
                  "state": s.state, "priority": s.priority, "overdue_since": overdue_since,
                  "ward_code": s.ward.code if s.ward else None,
                  "unit_id": s.unit.id if s.unit else None}
        if s.escalation.reminders == 0:
            event = self._record(ESCALATE_EVENT, SYSTEM_ACTOR, None, None, data={
                "level": level, "state": s.state.value,
                "overdue_since": overdue_since.isoformat(),
                "next_deadline": next_deadline.isoformat(),
            }, at=self._moment(due))
            self._enqueue(names.RAISE_ALERT, EscalationInput(
                **common, category=s.category, seq=event.seq), f"alert level {level}")
            workflow.logger.info("incident %s overdue in %s: level %d", s.id, s.state, level)
        else:
            self._enqueue(names.REMIND_ALERT, ReminderInput(
                **common, reminder=s.escalation.reminders, at=now,
                next_deadline=next_deadline),
                f"reminder {s.escalation.reminders}")
        await self._writes.drain()

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
    async def merge(self, inp: MergeInput) -> ActionResult:
        self._authorize_merge(inp)
        s = self._s
        target = inp.into_incident_id
        request_id = str(workflow.uuid4())
        s.merging_into, self._merge_request = target, request_id
        try:
            reply = await self._ask_target(target, request_id, inp.actor)
            if not reply.accepted:
                raise refusing("IllegalTransition", reply.reason or "target_refused",
                               into_incident_id=target)
            # The target holds us; confirming makes it final there. Other state changes
            # of this incident are refused while `merging_into` is set.
            if not await self._signal(target, "merged_child", MergedChild(
                    incident_id=s.id, tracking_code=s.tracking_code, by=inp.actor,
                    at=self._when(inp))):
                raise refusing("IllegalTransition", "target_gone", into_incident_id=target)
            path = self._authorize(Action.MERGE, inp)
            s.merged_into = target
            s.primary_state = reply.target_state
            self._walk(Action.MERGE, inp, path, {
                "into_incident_id": target, "into_tracking_code": reply.target_tracking_code,
            })
        finally:
            s.merging_into, self._merge_request = None, None
        if self._early_primary is not None:
            early, self._early_primary = self._early_primary, None
            await self.primary_changed(early)
        return await self._done()

    @merge.validator
    def _check_merge(self, inp: MergeInput) -> None:
        self._authorize_merge(inp)

    async def _ask_target(self, target: str, request_id: str, actor: Actor) -> MergeReply:
        sent = await self._signal(target, "merge_request", MergeRequest(
            request_id=request_id, child_id=self._s.id,
            child_tracking_code=self._s.tracking_code, by=actor))
        if not sent:
            raise refusing("IllegalTransition", "target_gone", into_incident_id=target)
        try:
            await workflow.wait_condition(lambda: request_id in self._replies,
                                          timeout=MERGE_REPLY_TIMEOUT)
        except TimeoutError:
            await self._signal(target, "merge_cancel",
                               MergeCancel(request_id=request_id, child_id=self._s.id))
            raise refusing("IllegalTransition", "target_silent",
                           into_incident_id=target) from None
        return self._replies.pop(request_id)

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

    # --- signals between incidents ----------------------------------------------------
    @workflow.signal(name="merge_request")
    async def merge_request(self, req: MergeRequest) -> None:
        """Another incident asks to be merged into this one: decide and answer."""
        refusal = rules.absorb_refusal(self._s, req.child_id)
        if refusal is None:
            self._s.held[req.child_id] = workflow.now()
        reply = MergeReply(request_id=req.request_id, target_id=self._s.id,
                           accepted=refusal is None, target_tracking_code=self._s.tracking_code,
                           target_state=self._s.state,
                           reason=refusal.code if refusal is not None else None)
        if not await self._signal(req.child_id, "merge_reply", reply):
            self._s.held.pop(req.child_id, None)

    @workflow.signal(name="merge_reply")
    def merge_reply(self, reply: MergeReply) -> None:
        if reply.request_id == self._merge_request:
            self._replies[reply.request_id] = reply

    @workflow.signal(name="merge_cancel")
    def merge_cancel(self, sig: MergeCancel) -> None:
        self._s.held.pop(sig.child_id, None)

    @workflow.signal(name="merged_child")
    async def merged_child(self, sig: MergedChild) -> None:
        """Another report was merged into this one (it confirms what we accepted)."""
        self._s.held.pop(sig.incident_id, None)
        if sig.incident_id in self._s.told or sig.incident_id == self._s.id:
            return
        self._s.told[sig.incident_id] = None
        self._s.merged_incidents.append(sig.incident_id)
        self._record(MERGED_IN_EVENT, sig.by, None, None, data={
            "incident_id": sig.incident_id, "tracking_code": sig.tracking_code},
            at=self._moment(sig.at))
        await self._writes.drain()

    @workflow.signal(name="child_info")
    async def child_info(self, sig: ChildInfo) -> None:
        """The citizen of a merged report added information: record it here too, so this
        incident's staff see it."""
        if sig.child_id not in self._s.told:
            return
        self._record(Action.ADD_INFO.value, CITIZEN_ACTOR, None, None, data={
            "text": sig.text, "attachments": sig.attachments,
            "via_incident_id": sig.child_id, "via_tracking_code": sig.child_tracking_code},
            at=self._moment(sig.at))
        await self._writes.drain()

    @workflow.signal(name="primary_changed")
    async def primary_changed(self, sig: PrimaryChanged) -> None:
        """The incident this one was merged into changed state."""
        s = self._s
        if s.state is not State.MERGED and sig.primary_id == s.merging_into:
            self._early_primary = sig  # applied once this incident's merge commits
            return
        if s.state is not State.MERGED or sig.primary_id != s.merged_into:
            return
        if s.primary_at is not None and sig.at < s.primary_at:
            return
        s.primary_at = sig.at
        first = s.primary_state is None
        if sig.state == s.primary_state and not first:
            return
        s.primary_state = sig.state
        s.version += 1
        self._record(PRIMARY_CHANGED_EVENT, SYSTEM_ACTOR, None, None,
                     data={"primary_id": sig.primary_id, "state": sig.state.value},
                     public_note=STATE_PUBLIC_NOTES[sig.state], at=self._moment(sig.at))
        await self._writes.drain()

    def _children_behind(self) -> bool:
        return any(told != self._s.state for told in self._s.told.values())

    async def _tell_children(self) -> None:
        for child, told in list(self._s.told.items()):
            state = self._s.state
            if told == state:
                continue
            self._s.told[child] = state
            await self._signal(child, "primary_changed", PrimaryChanged(
                primary_id=self._s.id, state=state, at=workflow.now()))

    async def _signal(self, incident_id: str, name: str, arg: Any) -> bool:
        """Signal another incident's workflow; False when it is gone (closed or unknown)."""
        handle = workflow.get_external_workflow_handle(workflow_id(incident_id))
        try:
            await handle.signal(name, arg)
        except FailureError as exc:
            workflow.logger.warning("could not signal %s to %s: %s", name, incident_id, exc)
            return False
        return True

    # --- rules (schema/rules.py) ---------------------------------------------------------
    # Read-only, so validators call them too; a handler asks again (the case may have
    # moved on while the update waited for its turn).
    def _authorize(self, action: Action, inp: ActionInput) -> list[State]:
        return obey(rules.authorize, self._s, action, inp.actor, workflow.now(),
                    inp.expected_version)

    def _authorize_unit(self, action: Action, inp: RouteInput | ReassignInput) -> list[State]:
        return obey(rules.authorize_unit, self._s, action, inp.actor, inp.unit, workflow.now(),
                    inp.expected_version)

    def _authorize_merge(self, inp: MergeInput) -> list[State]:
        return obey(rules.authorize_merge, self._s, inp, workflow.now())

    def _authorize_add_info(self, inp: AddInfoInput) -> None:
        obey(rules.authorize_add_info, self._s, inp, workflow.now())

    # --- changing the case -------------------------------------------------------------
    async def _step(self, action: Action, inp: ActionInput,
                    data: dict[str, Any] | None = None) -> ActionResult:
        """The whole of an update that only changes the state: authorize, walk, write."""
        self._walk(action, inp, self._authorize(action, inp), data)
        return await self._done()

    def _walk(self, action: Action, inp: ActionInput, path: list[State],
              data: dict[str, Any] | None = None) -> None:
        """Move through `path`, one event per state; implied steps name their own action.
        Every event is at `_when(inp)`."""
        at = self._when(inp)
        for i, target in enumerate(path):
            if i == len(path) - 1:
                self._transition(action.value, inp.actor, target, data or {}, at)
            else:
                implied = IMPLIED_ACTION.get(target, action)
                self._transition(implied.value, inp.actor, target,
                                 {"implied_by": action.value}, at)

    def _when(self, inp: ActionInput) -> datetime:
        """The time of the events an action records: when the API took the request
        (`inp.at`, in history with the update); see `_moment`."""
        return self._moment(inp.at)

    def _moment(self, at: datetime | None) -> datetime:
        """An event's time from a time that history holds (an update's or a signal's
        input, an activity's result, a deadline), kept between the incident's last change
        and this task's clock; without one, the task's clock.

        Not the task's clock alone: `workflow.now()` in a replay is not always the time
        the worker saw. Temporal records a speculative update task's start when it
        completes, and a task followed by one that only waited for a local activity is
        replayed at the later task's time; the fault suite found events 40-250 ms later
        in the replayed history than in SQL. A time from history replays as written (the
        clock bounds do too: the worker's clock is never later than the replay's)."""
        now = workflow.now()
        if at is None:
            return now
        return min(max(at, self._s.updated_at), now)

    def _transition(self, action: str, actor: Actor, target: State,
                    data: dict[str, Any], at: datetime) -> None:
        s = self._s
        left = s.state
        if s.escalation.level > 0:
            self._enqueue(names.RESOLVE_ALERTS,
                          ResolveAlertsInput(incident_id=s.id, state=left, at=at),
                          f"resolve {left.value}")
        s.state = target
        s.escalation = Escalation()
        if target is State.ACKNOWLEDGED and s.acknowledged_at is None:
            s.acknowledged_at = at
        elif target is State.ON_SCENE and s.on_scene_at is None:
            s.on_scene_at = at
        elif target.is_terminal:
            s.closed_at = at
        s.version += 1
        s.last_change = ChangeNote(version=s.version, action=action, by=actor.username,
                                   at=at, unit_name=s.unit.name if s.unit else None)
        self._arm_deadline(at)
        self._record(action, actor, left, target, data=data,
                     public_note=STATE_PUBLIC_NOTES[target], at=at)

    def _arm_deadline(self, entered_at: datetime) -> None:
        s = self._s
        allowed = sla_deadline(s.priority, s.state, s.sla_scale, s.sla)
        s.deadline = None if allowed is None else entered_at + allowed

    def _record(self, action: str, actor: Actor, from_state: State | None,
                to_state: State | None, *, data: dict[str, Any] | None = None,
                public_note: str | None = None, at: datetime | None = None,
                report: IncidentInput | None = None) -> TimelineEvent:
        at = at or workflow.now()
        s = self._s
        s.seq += 1
        s.updated_at = at
        data = dict(data or {})
        request = _request_key()
        if request is not None:
            data.setdefault("request", request)
        event = TimelineEvent(seq=s.seq, at=at, actor=actor, action=action,
                              from_state=from_state, to_state=to_state, data=data,
                              public_note=public_note)
        snapshot = s.model_copy(deep=True, update={"told": {}, "held": {}})
        self._enqueue(names.PROJECT, ProjectEvent(state=snapshot, event=event, report=report),
                      f"event {event.seq} {action}")
        return event

    @staticmethod
    def _unit_data(unit: UnitRef) -> dict[str, Any]:
        return {"unit_id": unit.id, "unit_name": unit.name, "unit_kind": unit.kind,
                "ward_code": unit.ward_code}

    def _result(self) -> ActionResult:
        s = self._s
        return ActionResult(incident_id=s.id, state=s.state, version=s.version, seq=s.seq)

    # --- side effects, in order (workflows/writes.py) -------------------------------------
    def _enqueue(self, activity: str, arg: Any, summary: str) -> None:
        self._writes.enqueue(activity, arg, summary)

    async def _done(self) -> ActionResult:
        """The action's result as it stood when the action was recorded, returned once
        every write queued until then is done. A later event (the ward look-up finishing
        while this one was written) is not in it: its write may still be queued, and the
        result promises only what is in SQL. Update results are not replayed, so taking
        them earlier changes no recorded history."""
        result = self._result()
        await self._writes.drain()
        return result
