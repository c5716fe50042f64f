"""The incident lifecycle: states, categories, priorities, the legal transitions and SLAs.

This module is the single place that says from which states each action is legal
(`LEGAL_FROM`) and where it leads (`ACTION_TARGET`, `IMPLIED_STEP`); `steps` reads them,
and the single-step table `ALLOWED` is derived from them. The refusals built on them
(schema/rules.py), the API's `allowed_actions` and the web screens all consult it, so
they cannot disagree.
"""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum, StrEnum
from itertools import pairwise

from schema import words


class State(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    CLASSIFIED = "classified"
    ROUTED = "routed"
    ACKNOWLEDGED = "acknowledged"
    ON_SCENE = "on_scene"
    CLOSED = "closed"
    REJECTED = "rejected"
    MERGED = "merged"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: frozenset[State] = frozenset(
    {State.CLOSED, State.REJECTED, State.MERGED, State.CANCELLED}
)
OPEN_STATES: tuple[State, ...] = tuple(s for s in State if s not in TERMINAL)


# What the citizen's tracking page may show for each state, as the workflow records it
# (Vietnamese: catalogue keys `note.*`; the web layer translates by state for other
# languages).
STATE_PUBLIC_NOTES: dict[State, str] = {state: words.t("vi", f"note.{state.value}")
                                        for state in State}


class Category(StrEnum):
    CRIME = "crime"
    TRAFFIC_ACCIDENT = "traffic_accident"
    FIRE_EXPLOSION = "fire_explosion"
    OTHER = "other"


class Priority(IntEnum):
    """1 is the most urgent."""

    CRITICAL = 1
    HIGH = 2
    NORMAL = 3
    LOW = 4


DEFAULT_PRIORITY: dict[Category, Priority] = {
    Category.FIRE_EXPLOSION: Priority.CRITICAL,
    Category.CRIME: Priority.HIGH,
    Category.TRAFFIC_ACCIDENT: Priority.HIGH,
    Category.OTHER: Priority.NORMAL,
}


class Role(StrEnum):
    CITIZEN = "citizen"
    OPERATOR = "operator"
    OFFICER = "officer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"


# Roles a staff account may have (citizen and system are never accounts).
STAFF_ROLES: frozenset[Role] = frozenset({Role.OPERATOR, Role.OFFICER, Role.SUPERVISOR,
                                          Role.ADMIN})


class Action(StrEnum):
    VERIFY = "verify"
    REJECT = "reject"
    MERGE = "merge"
    CLASSIFY = "classify"
    ROUTE = "route"
    ACKNOWLEDGE = "acknowledge"
    ARRIVE = "arrive"
    NOTE = "note"
    MESSAGE = "message"  # a question or instruction to the reporter, shown on the tracking page
    CLOSE = "close"
    REASSIGN = "reassign"
    PUBLISH_ALERT = "publish_alert"
    CANCEL = "cancel"
    ADD_INFO = "add_info"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    FALSE_ALARM = "false_alarm"
    REFERRED = "referred"
    UNFOUNDED = "unfounded"


# The one table of what is legal: each action and the states it may be taken from.
# `steps` reads it with ACTION_TARGET and IMPLIED_STEP; ALLOWED and IMPLIED_ACTION below are
# derived from the three. Notes: ROUTE from ROUTED is a re-route before anyone acknowledged;
# REASSIGN (a supervisor's) is from any state after routing; CLOSE from ROUTED is a
# supervisor closing what nobody took (e.g. a duplicate found late: `role_may`).
_EARLY = frozenset({State.RECEIVED, State.VERIFIED, State.CLASSIFIED})
_DISPATCHED = frozenset({State.ROUTED, State.ACKNOWLEDGED, State.ON_SCENE})
LEGAL_FROM: dict[Action, frozenset[State]] = {
    Action.VERIFY: frozenset({State.RECEIVED}),
    Action.REJECT: _EARLY,
    Action.MERGE: _EARLY,
    Action.CLASSIFY: _EARLY,
    Action.ROUTE: frozenset({State.VERIFIED, State.CLASSIFIED, State.ROUTED}),
    Action.ACKNOWLEDGE: frozenset({State.ROUTED}),
    Action.ARRIVE: frozenset({State.ROUTED, State.ACKNOWLEDGED}),
    Action.NOTE: frozenset(OPEN_STATES),
    Action.MESSAGE: frozenset(OPEN_STATES),
    Action.CLOSE: _DISPATCHED,
    Action.REASSIGN: _DISPATCHED,
    Action.PUBLISH_ALERT: frozenset(OPEN_STATES) - {State.RECEIVED},
    Action.CANCEL: _EARLY | {State.ROUTED},
    Action.ADD_INFO: frozenset(OPEN_STATES),
}

# Where each state-changing action leads. NOTE, MESSAGE, PUBLISH_ALERT and ADD_INFO keep
# the state.
ACTION_TARGET: dict[Action, State] = {
    Action.VERIFY: State.VERIFIED,
    Action.REJECT: State.REJECTED,
    Action.MERGE: State.MERGED,
    Action.CLASSIFY: State.CLASSIFIED,
    Action.ROUTE: State.ROUTED,
    Action.ACKNOWLEDGE: State.ACKNOWLEDGED,
    Action.ARRIVE: State.ON_SCENE,
    Action.CLOSE: State.CLOSED,
    Action.REASSIGN: State.ROUTED,
    Action.CANCEL: State.CANCELLED,
}

# Two-step shortcuts: an operator may verify and classify in one step, an officer may
# arrive without acknowledging first. The workflow still records the state in between.
IMPLIED_STEP: dict[tuple[Action, State], State] = {
    (Action.CLASSIFY, State.RECEIVED): State.VERIFIED,
    (Action.ARRIVE, State.ROUTED): State.ACKNOWLEDGED,
}

# Who may take each action. Unit scoping (an officer only on the own unit's incidents) is
# checked separately, against the incident's assigned unit; who *sees* which incident is
# api/scope.py. Decisions, as a police command centre (TTTTCH) works:
# - a supervisor (chỉ huy trực ban) may do everything an operator does — verify, classify,
#   route, reject, merge — as well as reassign, close and publish a public alert: the
#   commander on duty takes over a desk when the operators are overwhelmed;
# - an admin (quản trị hệ thống) manages accounts and may read every incident, but takes no
#   action on any: an operational decision is made, and answered for, by someone on duty in
#   the chain of command (so Role.ADMIN appears in no set below);
# - the citizen only cancels and adds information, through the report's tracking token.
# tests/api/test_authz_matrix.py checks every action × caller × state over HTTP against
# this table, role_may and steps.
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.VERIFY: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Action.REJECT: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Action.MERGE: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Action.CLASSIFY: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Action.ROUTE: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Action.ACKNOWLEDGE: frozenset({Role.OFFICER}),
    Action.ARRIVE: frozenset({Role.OFFICER}),
    Action.NOTE: frozenset({Role.OPERATOR, Role.OFFICER, Role.SUPERVISOR}),
    Action.MESSAGE: frozenset({Role.OPERATOR, Role.OFFICER, Role.SUPERVISOR}),
    Action.CLOSE: frozenset({Role.OFFICER, Role.SUPERVISOR}),
    Action.REASSIGN: frozenset({Role.SUPERVISOR}),
    Action.PUBLISH_ALERT: frozenset({Role.SUPERVISOR}),
    Action.CANCEL: frozenset({Role.CITIZEN}),
    Action.ADD_INFO: frozenset({Role.CITIZEN}),
}

# Actions that an officer may take only on the own unit's incidents.
UNIT_SCOPED: frozenset[Action] = frozenset(
    {Action.ACKNOWLEDGE, Action.ARRIVE, Action.CLOSE, Action.NOTE, Action.MESSAGE}
)

# Actions only a citizen takes (through the tracking link); every other one is staff's.
CITIZEN_ACTIONS: frozenset[Action] = frozenset(
    a for a, roles in ACTION_ROLES.items() if Role.CITIZEN in roles)

# Timeline event kinds that are not actions of their own. The values are in every recorded
# history and in the read model: never change one.
# - the report received (the first event of every incident);
RECEIVE_EVENT = "receive"
# - the ward and proposed unit looked up, and the possible duplicates found;
LOCATE_EVENT = "locate"
# - an escalation level reached (schema/escalation.py);
ESCALATE_EVENT = "escalate"
# - another report merged into this one (recorded on the primary);
MERGED_IN_EVENT = "merged_in"
# - the reporter's answer to a staff message (taken through ADD_INFO with `reply_to`);
REPLY_EVENT = "reply"
# - the note a merged report records each time its primary's state changes.
PRIMARY_CHANGED_EVENT = "primary_changed"

# Timeline events the reporter reads on the tracking page (web/tracking_story.py words
# them): state changes by staff, public notes (a note only when public), the closing, and
# the two-way thread. Web Push for reporters sends these; STAFF_MESSAGE_EVENTS are the ones
# that ask the reporter something and want an answer.
STAFF_MESSAGE_EVENTS: frozenset[str] = frozenset({Action.MESSAGE.value})
CITIZEN_VISIBLE_EVENTS: frozenset[str] = frozenset(
    {a.value for a in (Action.VERIFY, Action.CLASSIFY, Action.ROUTE, Action.REASSIGN,
                       Action.ACKNOWLEDGE, Action.ARRIVE, Action.NOTE, Action.CLOSE,
                       Action.REJECT, Action.MERGE)}
    | STAFF_MESSAGE_EVENTS)

def steps(action: Action, state: State) -> list[State] | None:
    """The states `action` passes through from `state`, or None when it is illegal there.

    An empty list means the action is legal and keeps the state (a note, say).
    """
    if state not in LEGAL_FROM[action]:
        return None
    target = ACTION_TARGET.get(action)
    if target is None:
        return []
    middle = IMPLIED_STEP.get((action, state))
    return [middle, target] if middle else [target]


def _single_steps() -> dict[State, frozenset[State]]:
    pairs = {(a, b) for action in Action for state in State
             for path in [steps(action, state)] if path
             for a, b in pairwise([state, *path])}
    return {s: frozenset(b for a, b in pairs if a is s) for s in State}


# Every single step from a state to the next that some action takes (derived from
# LEGAL_FROM): a state missing from a set cannot be reached from it in one step.
ALLOWED: dict[State, frozenset[State]] = _single_steps()

# The action recorded for the state an implied step passes through (VERIFIED: verify):
# the one action that takes its starting state there in a single step.
IMPLIED_ACTION: dict[State, Action] = {
    middle: next(a for a in Action if steps(a, start) == [middle])
    for (_, start), middle in IMPLIED_STEP.items()
}


def may_add_info_to_merged(state: State, primary_state: State | None) -> bool:
    """A citizen of a report merged into another may still add information while the
    primary is open: it is recorded on both incidents (`steps` answers for the others)."""
    return state is State.MERGED and primary_state is not None and not primary_state.is_terminal


def role_may(action: Action, role: Role, state: State) -> bool:
    """Whether `role` may take `action` in `state` (unit scoping is checked apart)."""
    if role not in ACTION_ROLES[action]:
        return False
    # An officer cannot close an incident nobody acknowledged; a supervisor can.
    if action is Action.CLOSE and state is State.ROUTED and role is Role.OFFICER:
        return False
    return True


def may_take(action: Action, role: Role, state: State) -> bool:
    """Whether `role` may take `action` now: a legal step from `state` that the role may
    take (the citizen's "can cancel" is `may_take(Action.CANCEL, Role.CITIZEN, state)`)."""
    return steps(action, state) is not None and role_may(action, role, state)


# --- SLA ---------------------------------------------------------------------------------
# How long an incident may stay in a state before it is overdue, by priority.
# Anchors: NENA (answer within 15 s), NFPA 1225 (alarm processed within 60 s), Singapore
# Police (urgent: officer on scene within 15 min). Multiplied by CANHBAO_SLA_SCALE.
_M = 60.0
SLA_DEFAULTS: dict[Priority, dict[State, float]] = {
    Priority.CRITICAL: {
        State.RECEIVED: 1 * _M, State.VERIFIED: 2 * _M, State.CLASSIFIED: 2 * _M,
        State.ROUTED: 3 * _M, State.ACKNOWLEDGED: 15 * _M, State.ON_SCENE: 120 * _M,
    },
    Priority.HIGH: {
        State.RECEIVED: 2 * _M, State.VERIFIED: 5 * _M, State.CLASSIFIED: 5 * _M,
        State.ROUTED: 5 * _M, State.ACKNOWLEDGED: 20 * _M, State.ON_SCENE: 240 * _M,
    },
    Priority.NORMAL: {
        State.RECEIVED: 5 * _M, State.VERIFIED: 15 * _M, State.CLASSIFIED: 15 * _M,
        State.ROUTED: 15 * _M, State.ACKNOWLEDGED: 60 * _M, State.ON_SCENE: 480 * _M,
    },
    Priority.LOW: {
        State.RECEIVED: 15 * _M, State.VERIFIED: 60 * _M, State.CLASSIFIED: 60 * _M,
        State.ROUTED: 60 * _M, State.ACKNOWLEDGED: 240 * _M, State.ON_SCENE: 1440 * _M,
    },
}


# The share of real incidents that should meet each step's deadlines, against which the
# statistics colour their compliance (red below it). Anchor: NENA's 90% of calls answered
# within 15 s. Overridden by CANHBAO_SLA_TARGET.
SLA_TARGET = 0.9


# Overrides of SLA_DEFAULTS: {priority: {state value: seconds}}, e.g. {1: {"routed": 120}}.
SlaOverrides = dict[int, dict[str, float]]


def sla_seconds(priority: Priority, state: State,
                overrides: SlaOverrides | None = None) -> float | None:
    """Seconds allowed in `state`, before scaling; None for terminal states."""
    if state.is_terminal:
        return None
    custom = (overrides or {}).get(int(priority), {}).get(state.value)
    if custom is not None:
        return float(custom)
    return float(SLA_DEFAULTS[Priority(priority)][state])


def sla_deadline(priority: Priority, state: State, scale: float,
                 overrides: SlaOverrides | None = None) -> timedelta | None:
    seconds = sla_seconds(priority, state, overrides)
    return None if seconds is None else timedelta(seconds=seconds * scale)


def check_sla_overrides(overrides: SlaOverrides) -> SlaOverrides:
    """Refuse an override that names no real priority or open state, or no positive time."""
    open_states = {s.value for s in OPEN_STATES}
    for priority, states in overrides.items():
        if int(priority) not in {p.value for p in Priority}:
            raise ValueError(f"SLA: priority {priority} is not one of 1, 2, 3, 4")
        for state, seconds in states.items():
            if state not in open_states:
                raise ValueError(f"SLA: {state!r} is not an open state "
                                 f"({', '.join(sorted(open_states))})")
            if not seconds > 0:
                raise ValueError(f"SLA: {priority}/{state} must be a positive number of seconds")
    return {int(p): {st: float(v) for st, v in states.items()} for p, states in overrides.items()}
