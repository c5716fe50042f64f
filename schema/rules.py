"""The rules of an incident as plain functions over `IncidentState`: who may take which
action now, the merge handshake, and a citizen's addition.

A rule refuses by raising `Refusal`: its kind says how the API answers (IllegalTransition
and NoChange 409, Forbidden 403, Invalid 422, Stale 412), its code what went wrong (the
words for each code are `refusal.<code>` in schema/words/, formatted by api/wording.py),
its details what the words name. The workflow's validators and handlers call these
(workflows/case.py raises a refusal as an ApplicationError of its kind, carrying the
code and details), and so do the API's pre-checks (api/services/actions.py): both refuse
alike. Nothing here reads a clock: the caller passes `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from schema.payloads import Actor, AddInfoInput, IncidentState, MergeInput, UnitRef
from schema.states import (
    ACTION_ROLES,
    UNIT_SCOPED,
    Action,
    Role,
    State,
    may_add_info_to_merged,
    role_may,
    steps,
)

# How long a target holds a merge it accepted for a child that never confirmed nor
# cancelled.
MERGE_HOLD = timedelta(minutes=2)

Kind = Literal["IllegalTransition", "Forbidden", "Invalid", "Stale", "NoChange"]


class Refusal(Exception):
    """Why an action is refused: `kind`, `code` and the `details` its words name."""

    def __init__(self, kind: Kind, code: str, **details: Any) -> None:
        self.kind = kind
        self.code = code
        self.details = details
        said = ", ".join(f"{k}={v}" for k, v in details.items())
        super().__init__(f"{kind} {code}" + (f" ({said})" if said else ""))


def check_role(action: Action, role: Role, state: State | None = None) -> None:
    """Refused (Forbidden, role_never) when `role` never takes `action`."""
    if role not in ACTION_ROLES[action]:
        about = {"state": state.value} if state is not None else {}
        raise Refusal("Forbidden", "role_never", action=action.value, role=role.value, **about)


def permit(action: Action, role: Role, state: State) -> list[State]:
    """The states `action` passes through from `state` when `role` may take it there;
    else refused: not_from_state (nobody may, now), role_never, role_not_now (the role
    may, but not in this state: an officer closing what nobody acknowledged)."""
    path = steps(action, state)
    if path is None:
        raise Refusal("IllegalTransition", "not_from_state", action=action.value,
                      state=state.value)
    check_role(action, role, state)
    if not role_may(action, role, state):
        raise Refusal("IllegalTransition", "role_not_now", action=action.value,
                      state=state.value, role=role.value)
    return path


def changed(s: IncidentState, kind: Kind, action: Action) -> Refusal:
    """Stale (the actor saw an older version) or NoChange (the action would change
    nothing), naming the last change: what, by whom, when, with which unit."""
    details: dict[str, Any] = {"action": action.value, "state": s.state.value,
                               "version": s.version}
    last = s.last_change
    if last is not None:
        details.update(changed_action=last.action, changed_by=last.by,
                       changed_at=last.at.isoformat(), unit_name=last.unit_name)
    return Refusal(kind, "stale" if kind == "Stale" else "no_change", **details)


def live_holds(s: IncidentState, now: datetime) -> list[str]:
    """Children whose merge into this incident was accepted and not yet confirmed."""
    return [child for child, at in s.held.items() if now - at < MERGE_HOLD]


def authorize(s: IncidentState, action: Action, actor: Actor, now: datetime,
              expected_version: int | None = None) -> list[State]:
    """The states `action` by `actor` passes through, or a refusal: stale, then
    `permit`'s, then a merge in the way (this incident merging elsewhere, or holding a
    report merging into it: it must not end first), then an officer of another unit."""
    if expected_version is not None and expected_version != s.version:
        raise changed(s, "Stale", action)
    path = permit(action, actor.role, s.state)
    about = {"action": action.value, "state": s.state.value}
    # Only a change of state waits for a merge; a note, say, does not.
    if path and s.merging_into is not None and action is not Action.MERGE:
        raise Refusal("IllegalTransition", "being_merged", **about)
    if path and path[-1].is_terminal and live_holds(s, now):
        raise Refusal("IllegalTransition", "merge_held", **about)
    if actor.role is Role.OFFICER and action in UNIT_SCOPED:
        if s.unit is None or actor.unit_id != s.unit.id:
            raise Refusal("Forbidden", "other_unit", reason="other_unit", **about)
    return path


def authorize_unit(s: IncidentState, action: Action, actor: Actor, unit: UnitRef,
                   now: datetime, expected_version: int | None = None) -> list[State]:
    """Route and reassign: `authorize`, and NoChange when `unit` already has it."""
    path = authorize(s, action, actor, now, expected_version)
    if s.unit is not None and s.unit.id == unit.id:
        raise changed(s, "NoChange", action)
    return path


# --- the merge handshake -----------------------------------------------------------------
def check_merge_target(child_id: str, target_id: str, target_state: State | None) -> None:
    """What both sides (and the API, from its read model) check of a merge's target: not
    the incident itself, and still open (None: its state is not known here)."""
    if target_id == child_id:
        raise Refusal("Invalid", "merge_into_itself", field="into_incident_id")
    if target_state is not None and target_state.is_terminal:
        raise Refusal("IllegalTransition", "target_closed", into_incident_id=target_id)


def authorize_merge(s: IncidentState, inp: MergeInput, now: datetime) -> list[State]:
    """The merging incident's side: `authorize`, then a target that is not itself, no
    merge of its own in progress, a target not merged (or merging) into it, and no
    reports merged into it (they would follow an incident that ended: merge the other
    one into this one instead)."""
    path = authorize(s, Action.MERGE, inp.actor, now, inp.expected_version)
    target = inp.into_incident_id
    check_merge_target(s.id, target, None)
    about = {"action": Action.MERGE.value, "state": s.state.value}
    if s.merging_into is not None:
        raise Refusal("IllegalTransition", "already_merging", **about)
    if target in s.told or target in live_holds(s, now):
        raise Refusal("IllegalTransition", "target_merged_here", **about)
    if s.told:
        raise Refusal("IllegalTransition", "has_merged_reports", **about)
    return path


def absorb_refusal(s: IncidentState, child_id: str) -> Refusal | None:
    """The target's side: why `s` cannot take `child_id` in now, or None. Two opposite
    merges at once: exactly one wins, the one into the larger id."""
    if child_id in s.told:
        return None  # already merged here: the same answer again
    try:
        check_merge_target(child_id, s.id, s.state)
    except Refusal as refusal:
        return refusal
    if s.merging_into is not None and s.merging_into != child_id:
        return Refusal("IllegalTransition", "target_merging_elsewhere")
    if s.merging_into == child_id and not child_id < s.id:
        return Refusal("IllegalTransition", "target_merging_here")
    return None


# --- a citizen's addition ----------------------------------------------------------------
def authorize_add_info(s: IncidentState, inp: AddInfoInput, now: datetime) -> None:
    """`authorize`, or on a report merged into an open incident only the role (the
    addition is recorded on both); then some text or an attachment, and a `reply_to`
    that is one of the staff messages kept."""
    if may_add_info_to_merged(s.state, s.primary_state):
        check_role(Action.ADD_INFO, inp.actor.role, s.state)
    else:
        authorize(s, Action.ADD_INFO, inp.actor, now, inp.expected_version)
    if not (inp.text and inp.text.strip()) and not inp.attachments:
        raise Refusal("Invalid", "text_required")
    if inp.reply_to is not None and inp.reply_to not in s.messages:
        raise Refusal("Invalid", "no_such_question", field="reply_to", reply_to=inp.reply_to)
