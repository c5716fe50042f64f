"""Dispatch in one step: verify, classify and route an incident from one form. Each step is
the ordinary action (take_action), so the workflow records and checks each as if sent one by
one; each carries the version the step before returned. With the form's idempotency key
the whole form keeps one receipt of its own (action "dispatch", its print taken from the
form as sent): the same form again gets the first answer, or the first refusal, and runs
no step. The steps are recomputed from the incident as it is now, so a per-step receipt
alone could not recognise a resend (a review's finding)."""

from __future__ import annotations

from typing import Any

from api import idempotency
from api.auth import Principal
from api.cases import Cases
from api.errors import ApiError
from api.services import receipts
from api.services.actions import check_key, take_action
from api.services.detail import incident_detail
from core.db import Database
from schema.incidents import IncidentDetail
from schema.states import Action, State

DISPATCH = "dispatch"  # the receipt's action for the whole form


def steps(detail: IncidentDetail, category: str, priority: Any) -> list[Action]:
    """The actions that take `detail` to routed with this category and priority: verify
    while received; classify before it is classified or when either changed (and the
    state still takes it); then route."""
    allowed = set(detail.allowed_actions)
    todo = [Action.VERIFY] if detail.state is State.RECEIVED and Action.VERIFY in allowed \
        else []
    changed = category != detail.category.value or str(priority) != str(detail.priority)
    unclassified = detail.state in (State.RECEIVED, State.VERIFIED)
    if Action.CLASSIFY in allowed and (unclassified or changed):
        todo.append(Action.CLASSIFY)
    return [*todo, Action.ROUTE]


async def dispatch(db: Database, cases: Cases, user: Principal, incident_id: str,
                   classify: dict[str, Any], route: dict[str, Any],
                   idempotency_key: str | None = None,
                   expected_version: int | None = None) -> tuple[IncidentDetail, list[Action]]:
    """Run the steps in order; the case after the last and the actions taken. A refusal
    stops the walk where it happened (the steps before it stay done, as recorded) and is
    raised as take_action raises it. `route` is the route action's body: the lead unit (or
    ward) now, and the place a later "support units" field will go."""
    check_key(idempotency_key)
    key = receipts.Key(incident_id, DISPATCH, idempotency_key, idempotency.action_fingerprint(
        user.username, DISPATCH, {"classify": classify, "route": route}, expected_version)
    ) if idempotency_key else None
    if key is not None and (first := await receipts.first_answer(db, key)) is not None:
        return first, []
    detail = await incident_detail(db, cases, user, incident_id)
    version = expected_version
    todo = steps(detail, str(classify.get("category", "")), classify.get("priority"))
    bodies: dict[Action, dict[str, Any]] = {Action.CLASSIFY: classify, Action.ROUTE: route}
    try:
        for action in todo:
            detail = await take_action(db, cases, user, incident_id, action,
                                       bodies.get(action, {}), idempotency_key=idempotency_key,
                                       expected_version=version)
            version = detail.version
    except ApiError as exc:
        if key is not None and exc.status < 500:  # a 503 may be sent again for its outcome
            await receipts.keep_refusal(db, key, exc)
        raise
    if key is not None:
        await receipts.keep_answer(db, key, detail)
    return detail, todo
