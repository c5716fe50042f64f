"""The rules of schema/rules.py and the table of schema/states.py, without Temporal: what is
legal from where, who may, and every refusal's kind and code."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema import rules
from schema.payloads import (
    Actor,
    AddInfoInput,
    ChangeNote,
    IncidentState,
    Location,
    MergeInput,
    UnitRef,
)
from schema.rules import MERGE_HOLD, Refusal
from schema.states import (
    ACTION_ROLES,
    ACTION_TARGET,
    ALLOWED,
    IMPLIED_ACTION,
    IMPLIED_STEP,
    LEGAL_FROM,
    OPEN_STATES,
    UNIT_SCOPED,
    Action,
    Category,
    Priority,
    Role,
    State,
    role_may,
    steps,
)

NOW = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
UNIT = UnitRef(id="u1", name="Đội 113", kind="city")
OTHER = UnitRef(id="u2", name="Công an Phường Bến Thành", kind="ward_police", ward_code=1)


def case(state: State = State.RECEIVED, **fields: Any) -> IncidentState:
    return IncidentState(id="i-5", tracking_code="CB-5", state=state, category=Category.CRIME,
                         priority=Priority.HIGH, location=Location(lat=10.77, lon=106.7),
                         created_at=NOW, updated_at=NOW, **fields)


def actor(role: Role, unit: UnitRef | None = UNIT) -> Actor:
    return Actor(username=f"{role.value}1", role=role,
                 unit_id=unit.id if unit and role is Role.OFFICER else None)


def refusal(call: Any, *args: Any, **kwargs: Any) -> Refusal:
    with pytest.raises(Refusal) as raised:
        call(*args, **kwargs)
    return raised.value


# --- the table ----------------------------------------------------------------------------
def test_derived_tables_equal_the_literals_they_replace() -> None:
    """ALLOWED and IMPLIED_ACTION were written out by hand before LEGAL_FROM; derived
    from it they must say exactly what they said."""
    assert ALLOWED == {
        State.RECEIVED: frozenset(
            {State.VERIFIED, State.REJECTED, State.MERGED, State.CANCELLED}),
        State.VERIFIED: frozenset(
            {State.CLASSIFIED, State.ROUTED, State.REJECTED, State.MERGED, State.CANCELLED}),
        State.CLASSIFIED: frozenset(
            {State.CLASSIFIED, State.ROUTED, State.REJECTED, State.MERGED, State.CANCELLED}),
        State.ROUTED: frozenset(
            {State.ROUTED, State.ACKNOWLEDGED, State.CLOSED, State.CANCELLED}),
        State.ACKNOWLEDGED: frozenset({State.ROUTED, State.ON_SCENE, State.CLOSED}),
        State.ON_SCENE: frozenset({State.ROUTED, State.CLOSED}),
        State.CLOSED: frozenset(),
        State.REJECTED: frozenset(),
        State.MERGED: frozenset(),
        State.CANCELLED: frozenset(),
    }
    assert IMPLIED_ACTION == {State.VERIFIED: Action.VERIFY,
                              State.ACKNOWLEDGED: Action.ACKNOWLEDGE}


@given(st.sampled_from(Action), st.sampled_from(State))
def test_steps_follow_the_table(action: Action, state: State) -> None:
    path = steps(action, state)
    assert (path is not None) == (state in LEGAL_FROM[action])
    if path is None:
        return
    assert not state.is_terminal
    if action not in ACTION_TARGET:
        assert path == []
        return
    assert path[-1] is ACTION_TARGET[action]
    assert path[:-1] == ([IMPLIED_STEP[(action, state)]] if (action, state) in IMPLIED_STEP
                         else [])
    for a, b in pairwise([state, *path]):
        assert b in ALLOWED[a]


# --- authorize ----------------------------------------------------------------------------
@given(st.sampled_from(Action), st.sampled_from(State), st.sampled_from(Role))
def test_authorized_exactly_where_the_table_and_the_roles_say(
        action: Action, state: State, role: Role) -> None:
    s = case(state, unit=UNIT)
    who = actor(role)
    legal = state in LEGAL_FROM[action]
    if legal and role_may(action, role, state):
        assert rules.authorize(s, action, who, NOW) == steps(action, state)
        return
    got = refusal(rules.authorize, s, action, who, NOW)
    if not legal:
        assert (got.kind, got.code) == ("IllegalTransition", "not_from_state")
    elif role not in ACTION_ROLES[action]:
        assert (got.kind, got.code) == ("Forbidden", "role_never")
    else:
        assert (got.kind, got.code) == ("IllegalTransition", "role_not_now")
    assert got.details["action"] == action.value and got.details["state"] == state.value


@given(st.sampled_from(sorted(UNIT_SCOPED)), st.sampled_from(OPEN_STATES),
       st.sampled_from([None, OTHER]))
def test_an_officer_acts_only_on_the_own_units_incidents(
        action: Action, state: State, unit: UnitRef | None) -> None:
    who = actor(Role.OFFICER)
    if not rules_allow(action, Role.OFFICER, state):
        return
    got = refusal(rules.authorize, case(state, unit=unit), action, who, NOW)
    assert (got.kind, got.code, got.details["reason"]) == ("Forbidden", "other_unit",
                                                           "other_unit")
    assert rules.authorize(case(state, unit=UNIT), action, who, NOW) == steps(action, state)


def rules_allow(action: Action, role: Role, state: State) -> bool:
    return state in LEGAL_FROM[action] and role_may(action, role, state)


def test_a_stale_version_names_the_last_change() -> None:
    last = ChangeNote(version=3, action="route", by="operator2", at=NOW, unit_name="Đội 113")
    s = case(State.ROUTED, version=3, last_change=last, unit=UNIT)
    got = refusal(rules.authorize, s, Action.CLOSE, actor(Role.SUPERVISOR), NOW, 2)
    assert (got.kind, got.code) == ("Stale", "stale")
    assert got.details == {"action": "close", "state": "routed", "version": 3,
                           "changed_action": "route", "changed_by": "operator2",
                           "changed_at": NOW.isoformat(), "unit_name": "Đội 113"}
    assert rules.authorize(s, Action.CLOSE, actor(Role.SUPERVISOR), NOW, 3) == [State.CLOSED]
    # Stale comes first, before the state's own refusal.
    assert refusal(rules.authorize, s, Action.VERIFY, actor(Role.OPERATOR), NOW, 1).code \
        == "stale"


def test_the_unit_already_assigned_is_no_change() -> None:
    s = case(State.ROUTED, unit=UNIT)
    got = refusal(rules.authorize_unit, s, Action.REASSIGN, actor(Role.SUPERVISOR), UNIT, NOW)
    assert (got.kind, got.code) == ("NoChange", "no_change")
    assert rules.authorize_unit(s, Action.REASSIGN, actor(Role.SUPERVISOR), OTHER, NOW) == \
        [State.ROUTED]


@given(st.sampled_from(Action), st.sampled_from(OPEN_STATES))
def test_a_merge_in_progress_holds_every_change_of_state_but_its_own(
        action: Action, state: State) -> None:
    role = next((r for r in sorted(ACTION_ROLES[action]) if rules_allow(action, r, state)),
                None)
    if role is None:
        return
    s = case(state, unit=UNIT, merging_into="i-9")
    if action is Action.MERGE or not steps(action, state):
        assert rules.authorize(s, action, actor(role), NOW) == steps(action, state)
    else:
        got = refusal(rules.authorize, s, action, actor(role), NOW)
        assert (got.kind, got.code) == ("IllegalTransition", "being_merged")


def test_a_report_merging_in_holds_the_end_for_a_while() -> None:
    s = case(State.ROUTED, unit=UNIT, held={"i-1": NOW})
    sup = actor(Role.SUPERVISOR)
    assert refusal(rules.authorize, s, Action.CLOSE, sup, NOW).code == "merge_held"
    assert rules.authorize(s, Action.REASSIGN, sup, NOW) == [State.ROUTED]
    assert rules.authorize(s, Action.CLOSE, sup, NOW + MERGE_HOLD) == [State.CLOSED]


# --- the merge handshake ------------------------------------------------------------------
def merge(into: str) -> MergeInput:
    return MergeInput(actor=actor(Role.OPERATOR), into_incident_id=into)


def test_the_merging_side() -> None:
    assert rules.authorize_merge(case(), merge("i-9"), NOW) == [State.MERGED]
    for s, into, kind, code in [
        (case(), "i-5", "Invalid", "merge_into_itself"),
        (case(merging_into="i-8"), "i-9", "IllegalTransition", "already_merging"),
        (case(told={"i-9": None}), "i-9", "IllegalTransition", "target_merged_here"),
        (case(held={"i-9": NOW}), "i-9", "IllegalTransition", "merge_held"),
        (case(told={"i-1": None}), "i-9", "IllegalTransition", "has_merged_reports"),
        (case(State.ROUTED), "i-9", "IllegalTransition", "not_from_state"),
    ]:
        got = refusal(rules.authorize_merge, s, merge(into), NOW)
        assert (got.kind, got.code) == (kind, code), (s, into)
    # A hold past MERGE_HOLD is forgotten.
    assert rules.authorize_merge(case(held={"i-9": NOW}), merge("i-9"), NOW + MERGE_HOLD)


def test_the_target_side() -> None:
    assert rules.absorb_refusal(case(), "i-1") is None
    assert rules.absorb_refusal(case(State.CLOSED, told={"i-1": None}), "i-1") is None
    for s, child, code in [
        (case(State.CLOSED), "i-1", "target_closed"),
        (case(merging_into="i-8"), "i-1", "target_merging_elsewhere"),
        (case(merging_into="i-9"), "i-9", "target_merging_here"),  # into the larger id
    ]:
        got = rules.absorb_refusal(s, child)
        assert got is not None and got.code == code, (s, child)
    assert rules.absorb_refusal(case(merging_into="i-1"), "i-1") is None  # i-1 < i-5 wins


def test_two_opposite_merges_exactly_one_wins() -> None:
    x, y = case(merging_into="i-7"), case(merging_into="i-5").model_copy(update={"id": "i-7"})
    accepted = [rules.absorb_refusal(y, x.id) is None, rules.absorb_refusal(x, y.id) is None]
    assert accepted == [True, False]


def test_check_merge_target() -> None:
    rules.check_merge_target("i-1", "i-2", None)
    rules.check_merge_target("i-1", "i-2", State.ROUTED)
    assert refusal(rules.check_merge_target, "i-1", "i-1", None).details == {
        "field": "into_incident_id"}
    assert refusal(rules.check_merge_target, "i-1", "i-2", State.MERGED).code == "target_closed"


# --- a citizen's addition -----------------------------------------------------------------
def add(text: str | None = "Có khói", **fields: Any) -> AddInfoInput:
    return AddInfoInput(actor=actor(Role.CITIZEN), text=text, **fields)


@given(st.sampled_from(State), st.sampled_from([None, *State]))
def test_additions_while_open_or_merged_into_an_open_incident(
        state: State, primary: State | None) -> None:
    s = case(state, primary_state=primary)
    if not state.is_terminal or (state is State.MERGED and primary is not None
                                 and not primary.is_terminal):
        rules.authorize_add_info(s, add(), NOW)
    else:
        assert refusal(rules.authorize_add_info, s, add(), NOW).code == "not_from_state"


def test_what_an_addition_needs() -> None:
    s = case(messages=[4])
    rules.authorize_add_info(s, add(None, attachments=["a"]), NOW)
    rules.authorize_add_info(s, add(reply_to=4), NOW)
    assert refusal(rules.authorize_add_info, s, add("  "), NOW).code == "text_required"
    got = refusal(rules.authorize_add_info, s, add(reply_to=5), NOW)
    assert (got.kind, got.code, got.details) == ("Invalid", "no_such_question",
                                                 {"field": "reply_to", "reply_to": 5})
    staff = AddInfoInput(actor=actor(Role.OPERATOR), text="x")
    merged = case(State.MERGED, primary_state=State.ROUTED)
    assert refusal(rules.authorize_add_info, merged, staff, NOW).code == "role_never"
    assert refusal(rules.authorize_add_info, case(), staff, NOW).code == "role_never"


def test_a_refusal_reads_in_a_log() -> None:
    assert str(Refusal("IllegalTransition", "not_from_state", action="verify",
                       state="routed")) == \
        "IllegalTransition not_from_state (action=verify, state=routed)"
