"""The merge handshake between incidents (part of IncidentWorkflow, workflows/incident.py).

The merging incident asks its target (`merge_request`), which accepts only if it is open,
not merged and not merging elsewhere. Of two opposite merges at once (each incident
asking the other), the one into the larger id wins: a target that is itself merging into
the asker accepts only an asker with the smaller id (`schema.rules.absorb_refusal`). The
merging incident then commits and confirms (`merged_child`). The primary reports each
later state to its merged children (`primary_changed`), which complete when it is
terminal. A citizen of a merged report may still add information: it is recorded on
both (`child_info`).

The handlers are defined on `MergeHandshake`, which IncidentWorkflow inherits: Temporal
registers a workflow class's handlers from all its members, inherited ones included
(temporalio.workflow `_Definition._apply_to_class`), under the names given here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError

from workflows.case import IncidentCase, obey, refusing

with workflow.unsafe.imports_passed_through():
    from schema import rules
    from schema.ids import workflow_id
    from schema.payloads import (
        CITIZEN_ACTOR,
        SYSTEM_ACTOR,
        ActionResult,
        Actor,
        MergeInput,
    )
    from schema.signals import (
        ChildInfo,
        MergeCancel,
        MergedChild,
        MergeReply,
        MergeRequest,
        PrimaryChanged,
    )
    from schema.states import (
        MERGED_IN_EVENT,
        PRIMARY_CHANGED_EVENT,
        STATE_PUBLIC_NOTES,
        Action,
        State,
    )

# How long a merging incident waits for its target's answer (how long the target holds
# a merge it accepted is schema.rules.MERGE_HOLD).
MERGE_REPLY_TIMEOUT = timedelta(seconds=20)


class MergeHandshake(IncidentCase):
    """The `merge` update and the signals between incidents."""

    _replies: dict[str, MergeReply]  # answers to this incident's merge requests
    _merge_request: str | None  # this incident's merge in progress
    _early_primary: PrimaryChanged | None  # came before our merge committed

    def _start_merge_part(self) -> None:
        """The handshake's own fields, empty: called once from the workflow's init (a
        continued run starts with none in flight, as the hand-over drains handlers)."""
        self._replies = {}
        self._merge_request = None
        self._early_primary = None

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

    def _authorize_merge(self, inp: MergeInput) -> list[State]:
        return obey(rules.authorize_merge, self._s, inp, workflow.now())

