"""What every part of the incident workflow shares: its state, the rules it obeys and how
it changes (IncidentCase, the base of workflows/incident.py's IncidentWorkflow and of its
parts in workflows/merge.py, workflows/intake.py and workflows/escalation.py).

- `_authorize*` ask the rules of schema/rules.py; a refusal is raised as an
  `ApplicationError` of its kind (`refused`), which the API words by its code.
- Every accepted change becomes a `TimelineEvent` (`_record`: seq + 1), queued for the
  projection on the ordered writes of workflows/writes.py; `_done` returns the action's
  result once its writes are in SQL.
- `_transition` moves the state: it resolves the alerts of the state left, resets the
  escalation and arms the new state's SLA deadline.

No handler is defined here: they are IncidentWorkflow's and its parts'.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.writes import Writes

with workflow.unsafe.imports_passed_through():
    from activities import names
    from schema import rules
    from schema.activity_args import ProjectEvent, ResolveAlertsInput
    from schema.payloads import (
        ActionInput,
        ActionResult,
        Actor,
        AddInfoInput,
        ChangeNote,
        Escalation,
        IncidentInput,
        IncidentState,
        ReassignInput,
        RouteInput,
        TimelineEvent,
        UnitRef,
    )
    from schema.rules import Kind, Refusal
    from schema.states import (
        IMPLIED_ACTION,
        STATE_PUBLIC_NOTES,
        Action,
        State,
        sla_deadline,
    )


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


class IncidentCase:
    """The incident's state and how it changes. IncidentWorkflow's `__init__` sets these
    up; a continued run gets `_s` from the previous run (`IncidentInput.resume`)."""

    _inp: IncidentInput
    _s: IncidentState
    _writes: Writes

    # --- rules (schema/rules.py) ---------------------------------------------------------
    # Read-only, so validators call them too; a handler asks again (the case may have
    # moved on while the update waited for its turn).
    def _authorize(self, action: Action, inp: ActionInput) -> list[State]:
        return obey(rules.authorize, self._s, action, inp.actor, workflow.now(),
                    inp.expected_version)

    def _authorize_unit(self, action: Action, inp: RouteInput | ReassignInput) -> list[State]:
        return obey(rules.authorize_unit, self._s, action, inp.actor, inp.unit, workflow.now(),
                    inp.expected_version)


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
