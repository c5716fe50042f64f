"""Which actions the console's one dispatch form sends (api/services/dispatch.py `steps`):
verify while received, classify before it is classified or when category or priority
changed, then route; never an action the caller may not take."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any, cast

import pytest

from api.auth import Principal
from api.services.detail import allowed_actions
from api.services.dispatch import steps
from schema.incidents import IncidentDetail
from schema.states import Action, Category, Role, State
from tests.api.conftest import WARD_A, Stack

V, C, R = Action.VERIFY, Action.CLASSIFY, Action.ROUTE


def _case(state: State, priority: int = 2, allowed: Any = None) -> IncidentDetail:
    if allowed is None:
        operator = Principal(id="u", username="operator", role=Role.OPERATOR, unit_id=None,
                             full_name="", sid="", via="bearer")
        allowed = allowed_actions(operator, state, None)
    return cast(IncidentDetail, SimpleNamespace(
        state=state, category=Category.CRIME, priority=priority, allowed_actions=allowed))


@pytest.mark.parametrize(("state", "category", "priority", "expected"), [
    (State.RECEIVED, "crime", 2, [V, C, R]),  # classified even unchanged: its own event
    (State.RECEIVED, "fire_explosion", 1, [V, C, R]),
    (State.VERIFIED, "crime", 2, [C, R]),
    (State.CLASSIFIED, "crime", 2, [R]),
    (State.CLASSIFIED, "crime", 1, [C, R]),
    (State.CLASSIFIED, "other", "2", [C, R]),
    (State.ROUTED, "crime", 1, [R]),  # classify is no longer open: re-route only
])
def test_steps(state: State, category: str, priority: Any, expected: list[Action]) -> None:
    assert steps(_case(state), category, priority) == expected


def test_no_verify_for_a_caller_who_may_not() -> None:
    assert steps(_case(State.RECEIVED, allowed=[C]), "crime", 2) == [C, R]


async def test_the_same_dispatch_form_again_gets_the_first_answer(stack: Stack) -> None:
    """Sent twice with one idempotency key (a double tap, a resend after a dropped
    answer): one verify, one classify, one route; both answers 200."""
    accepted = await stack.submit()
    iid = accepted["incident_id"]
    await stack.wait_projected(iid)
    version = (await stack.detail(iid)).json()["version"]
    form = {"category": "fire_explosion", "priority": "1", "ward_code": str(
        stack.people.places[WARD_A].code), "idempotency_key": f"form-{uuid.uuid4()}",
        "version": str(version)}
    for _ in range(2):
        r = await stack.client.post(f"/console/incidents/{iid}/dispatch", data=form,
                                    headers={**stack.auth("operator"), "HX-Request": "true"})
        assert r.status_code == 200, r.text
    timeline = (await stack.detail(iid)).json()["timeline"]
    assert [e["action"] for e in timeline if e["action"] in ("verify", "classify", "route")] \
        == ["verify", "classify", "route"]
