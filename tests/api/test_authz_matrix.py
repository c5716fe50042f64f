"""The authorisation matrix: every action × every kind of caller × every incident state,
over HTTP, compared with the policy as written once — schema/states.py for what is legal
and who may take it (`ACTION_ROLES`, `role_may`, `steps`, `UNIT_SCOPED`,
`may_add_info_to_merged`), api/scope.py for who sees which incident (`sees_unit`).

Everything here is generated from that policy, so a new action, role or state is covered
without touching this file:
- callers: anonymous, the citizen (the report's tracking token), one account per staff
  role, and for officers each relation to the incident (of the assigned unit, the ward
  police of the incident's ward when a city unit was assigned, another unit, no unit);
- states: each is reached by the shortest sequence of actions the policy allows from
  `received`, driven over HTTP by a caller the policy lets take them;
- the expected answer of a cell is computed from the policy (`expected`): 200 where it
  allows, else the refusal it implies (401 no staff sign-in, 404 not visible, 403 role
  never, 409 not in this state, 422 no such staff action).

The decisions the policy states (schema/states.py, ACTION_ROLES): a supervisor may do all
an operator does (verify, classify, route, reject, merge); an admin acts on no incident.

A cell that changes the state runs on an incident of its own in that state; the others
share one incident per state (which must still be in it afterwards). Each staff caller's
`allowed_actions` on GET must list exactly the actions its cells allow.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlmodel import Session, select

from api.auth import Principal, make_token
from api.scope import sees_unit
from core.db import make_sync_engine
from schema.actions import STAFF_ACTIONS
from schema.states import (
    ACTION_ROLES,
    STAFF_ROLES,
    UNIT_SCOPED,
    Action,
    Role,
    State,
    may_add_info_to_merged,
    may_take,
    steps,
)
from schema.tables import Unit, User
from tests.api.conftest import WARD_A, WARD_B, Stack, eventually

ASSIGNED_UNIT = "cs113"  # incidents are routed to a city unit: the ward police is apart
PARALLEL = 6


@dataclass(frozen=True)
class Who:
    """A kind of caller. `relation` says how an officer's unit relates to the incident."""

    name: str
    role: Role | None  # None: anonymous
    relation: str | None = None  # assigned | ward | other | None (no unit) | command


def callers() -> list[Who]:
    out = [Who("anonymous", None), Who("citizen", Role.CITIZEN)]
    for role in sorted(STAFF_ROLES):
        if role is Role.OFFICER:
            out += [Who("officer of the assigned unit", role, "assigned"),
                    Who("ward police of the incident's ward", role, "ward"),
                    Who("officer of another unit", role, "other"),
                    Who("officer without a unit", role, None)]
        else:
            out.append(Who(role.value, role, "command"))
    return out


@dataclass
class Units:
    assigned: str
    ward: str
    other: str
    command: str

    def of(self, relation: str | None) -> str | None:
        return getattr(self, relation) if relation else None


def principal(who: Who, units: Units) -> Principal:
    assert who.role is not None
    return Principal(id=who.name, username=who.name, role=who.role,
                     unit_id=units.of(who.relation), full_name="", sid="", via="bearer")


def expected(who: Who, action: Action, state: State, incident_unit: str | None,
             units: Units) -> int:
    """What the policy says the HTTP layer answers (200: allowed)."""
    if action not in STAFF_ACTIONS:  # the citizen's, by tracking token
        if who.role is Role.CITIZEN:
            # A merged report's primary is the matrix's merge target, which stays received.
            allowed = may_take(action, Role.CITIZEN, state) or (
                action is Action.ADD_INFO and may_add_info_to_merged(state, State.RECEIVED))
            return 200 if allowed else 409
        return 404 if who.role is None else 422  # a wrong token / no such staff action
    if who.role is None or who.role not in STAFF_ROLES:
        return 401
    user = principal(who, units)
    if not sees_unit(user, incident_unit):
        return 404
    if who.role not in ACTION_ROLES[action]:
        return 403
    if not may_take(action, who.role, state):
        return 409
    if who.role is Role.OFFICER and action in UNIT_SCOPED and user.unit_id != incident_unit:
        return 403
    return 200


@dataclass
class Case:
    """One incident of the matrix, with its citizen's token and the unit it is with."""

    id: str
    token: str
    state: State = State.RECEIVED
    unit: str | None = None


@dataclass
class Matrix:
    stack: Stack
    units: Units
    headers: dict[str, dict[str, str]]
    merge_target: str = ""
    paths: dict[State, list[Action]] = field(default_factory=dict)
    drivers: dict[tuple[State, Action], Who] = field(default_factory=dict)

    def body(self, action: Action, driving: bool) -> dict[str, Any]:
        """A valid body: a refusal is then the policy's, never the body's. Driving routes to
        the assigned unit; a cell routes elsewhere (the same unit again changes nothing)."""
        route_to = self.units.assigned if driving else self.units.other
        bodies: dict[Action, dict[str, Any]] = {
            Action.VERIFY: {}, Action.ACKNOWLEDGE: {}, Action.ARRIVE: {},
            Action.REJECT: {"reason": "Tin báo không đúng sự thật"},
            Action.MERGE: {"into_incident_id": self.merge_target},
            Action.CLASSIFY: {"category": "crime", "priority": 2},
            Action.ROUTE: {"unit_id": route_to},
            Action.REASSIGN: {"unit_id": route_to, "reason": "Điều chỉnh lực lượng"},
            Action.NOTE: {"text": "Ghi chú kiểm tra quyền"},
            Action.MESSAGE: {"text": "Anh/chị có thấy biển số xe không?"},
            Action.CLOSE: {"outcome": "resolved", "summary": "Đã xử lý xong"},
            Action.PUBLISH_ALERT: {"headline": "Cảnh báo", "instruction": "Tránh khu vực",
                                   "radius_m": 500},
            Action.CANCEL: {"reason": "Báo nhầm"}, Action.ADD_INFO: {"text": "Thêm chi tiết"},
        }
        missing = set(Action) - set(bodies)
        assert not missing, f"give a valid body for {missing} in tests/api/test_authz_matrix.py"
        return bodies[action]

    async def call(self, who: Who, action: Action, case: Case,
                   driving: bool = False) -> httpx.Response:
        """The cell's request; sent again (at most 5 times) while the answer is 503, which
        asks to try again (Temporal slow to answer on a loaded machine): not a decision."""
        for _ in range(5):
            r = await self._call(who, action, case, driving)
            if r.status_code != 503:
                return r
            await asyncio.sleep(1)
        return r

    async def _call(self, who: Who, action: Action, case: Case,
                    driving: bool) -> httpx.Response:
        client = self.stack.client
        body = self.body(action, driving)
        if action not in STAFF_ACTIONS and who.role in (Role.CITIZEN, None):
            token = case.token if who.role is Role.CITIZEN else "no-such-token-" + case.id
            name = "info" if action is Action.ADD_INFO else action.value
            return await client.post(f"/api/v1/track/{token}/{name}", json=body)
        if who.role is Role.CITIZEN:
            headers = {"Authorization": f"Bearer {case.token}"}
        else:
            headers = self.headers.get(who.name, {})
        return await client.post(f"/api/v1/incidents/{case.id}/actions/{action.value}",
                                 json=body, headers=headers)

    async def new_case(self) -> Case:
        accepted = await self.stack.submit(WARD_A)
        await self.stack.wait_projected(accepted["incident_id"])
        return Case(accepted["incident_id"], accepted["tracking_token"])

    async def drive(self, state: State) -> Case:
        """A new incident brought to `state` along the policy's shortest path."""
        case = await self.new_case()
        for action in self.paths[state]:
            who = self.drivers[(case.state, action)]
            r = await self.call(who, action, case, driving=True)
            assert r.status_code == 200, (state, action, who.name, r.text)
            case.state = steps(action, case.state)[-1]  # type: ignore[index]
            if action in (Action.ROUTE, Action.REASSIGN):
                case.unit = self.units.assigned
        await self.settled(case)
        return case

    async def settled(self, case: Case) -> None:
        async def there() -> bool:
            r = await self.stack.detail(case.id, "supervisor")
            return r.status_code == 200 and r.json()["state"] == case.state.value
        await eventually(there, 20)

    def plan(self, everyone: list[Who]) -> None:
        """The shortest path of actions from `received` to every state, each step taken by
        a caller the policy allows (staff first, the citizen last)."""
        order = sorted(everyone, key=lambda w: (w.role is Role.CITIZEN, w.role is None))
        self.paths = {State.RECEIVED: []}
        units: dict[State, str | None] = {State.RECEIVED: None}
        queue = deque([State.RECEIVED])
        while queue:
            state = queue.popleft()
            for action in Action:
                path = steps(action, state)
                if not path:
                    continue
                unit = self.units.assigned if action in (Action.ROUTE, Action.REASSIGN) \
                    else units[state]
                driver = next((w for w in order
                               if expected(w, action, state, units[state], self.units) == 200),
                              None)
                if driver is None:
                    continue
                self.drivers.setdefault((state, action), driver)
                target = path[-1]
                if target not in self.paths:
                    self.paths[target] = [*self.paths[state], action]
                    units[target] = unit
                    queue.append(target)
        unreachable = set(State) - set(self.paths)
        assert not unreachable, f"the policy reaches no path to {unreachable}"


def _accounts(stack: Stack, units: Units, everyone: list[Who]) -> dict[str, dict[str, str]]:
    engine = make_sync_engine(stack.settings.database_url)
    template = stack.people.users["operator"]
    headers: dict[str, dict[str, str]] = {}
    with Session(engine) as s:
        for who in everyone:
            if who.role is None or who.role not in STAFF_ROLES:
                continue
            username = "t.matrix." + who.name.replace(" ", "-").replace("'", "")
            user = s.exec(select(User).where(User.username == username)).first()
            if user is None:
                user = User(username=username, password_hash=template.password_hash,
                            role=who.role.value, unit_id=units.of(who.relation),
                            full_name=who.name)
                s.add(user)
                s.commit()
            s.refresh(user)
            headers[who.name] = {"Authorization": f"Bearer {make_token(stack.settings, user)}"}
    engine.dispose()
    return headers


def _units(stack: Stack) -> Units:
    engine = make_sync_engine(stack.settings.database_url)
    with Session(engine) as s:
        def unit(code: str) -> str:
            return s.exec(select(Unit).where(Unit.code == code)).one().id
        units = Units(assigned=unit(ASSIGNED_UNIT), ward=unit(f"cand-{WARD_A}"),
                      other=unit(f"cand-{WARD_B}"), command=unit("ttttch"))
    engine.dispose()
    return units


async def test_every_action_role_and_state_obeys_the_policy(stack: Stack) -> None:
    units = _units(stack)
    everyone = callers()
    matrix = Matrix(stack, units, _accounts(stack, units, everyone))
    matrix.plan(everyone)
    matrix.merge_target = (await matrix.new_case()).id
    gate = asyncio.Semaphore(PARALLEL)
    cells = 0
    wrong: list[str] = []

    async def check(who: Who, action: Action, case: Case, state: State) -> None:
        nonlocal cells
        want = expected(who, action, state, case.unit, units)
        r = await matrix.call(who, action, case)
        cells += 1
        if r.status_code != want:
            wrong.append(f"{action.value} by {who.name} in {state.value}: "
                         f"policy {want}, HTTP {r.status_code} {r.text[:160]}")

    async def one_state(state: State) -> None:
        async with gate:
            shared = await matrix.drive(state)
        changing: list[tuple[Who, Action]] = []
        for action in Action:
            for who in everyone:
                if expected(who, action, state, shared.unit, units) == 200 \
                        and steps(action, state):
                    changing.append((who, action))  # moves the state: an incident of its own
                    continue
                async with gate:
                    await check(who, action, shared, state)
        async with gate:
            await matrix.settled(shared)  # nothing in the shared cells moved it
            for who in everyone:
                if who.role not in STAFF_ROLES:
                    continue
                r = await stack.client.get(f"/api/v1/incidents/{shared.id}",
                                           headers=matrix.headers[who.name])
                visible = sees_unit(principal(who, units), shared.unit)
                if not visible:
                    if r.status_code != 404:
                        wrong.append(f"GET by {who.name} in {state.value}: {r.status_code}")
                    continue
                offered = set(r.json()["allowed_actions"])
                policy = {a.value for a in STAFF_ACTIONS
                          if expected(who, a, state, shared.unit, units) == 200}
                if offered != policy:
                    wrong.append(f"allowed_actions of {who.name} in {state.value}: "
                                 f"{sorted(offered)} but the policy says {sorted(policy)}")

        async def fresh(who: Who, action: Action) -> None:
            async with gate:
                case = await matrix.drive(state)
                await check(who, action, case, state)
        await asyncio.gather(*(fresh(w, a) for w, a in changing))

    await asyncio.gather(*(one_state(s) for s in State))
    size = len(list(Action)) * len(everyone) * len(list(State))
    print(f"\nauthorisation matrix: {cells} cells "  # noqa: T201
          f"({len(list(Action))} actions × {len(everyone)} callers × {len(list(State))} states)")
    assert cells == size
    assert not wrong, "\n".join(wrong)


async def test_staff_routes_refuse_anonymous_and_citizen_tokens(stack: Stack) -> None:
    """Every route that needs a staff sign-in (its dependencies include `current_user`)
    answers 401 without one and to a citizen's tracking token used as a bearer token."""
    from fastapi.routing import APIRoute

    from api.deps import current_user

    accepted = await stack.submit(WARD_A)
    token = accepted["tracking_token"]

    def needs_staff(dependant: Any) -> bool:
        return any(d.call is current_user or needs_staff(d) for d in dependant.dependencies)

    def walk(routes: list[Any]) -> list[APIRoute]:
        out: list[APIRoute] = []
        for r in routes:
            inner = getattr(r, "original_router", None)
            if inner is not None:
                out += walk(inner.routes)
            elif isinstance(r, APIRoute) and needs_staff(r.dependant):
                out.append(r)
        return out

    routes = walk(stack.app.routes)
    assert len(routes) >= 10
    fill = {"incident_id": accepted["incident_id"], "action": "note",
            "attachment_id": str(uuid.uuid4()), "kind": "thumbnail"}
    for route in routes:
        path = route.path.format(**{k: fill.get(k, "x") for k in route.param_convertors})
        for method in sorted(route.methods or ()):
            for headers in ({}, {"Authorization": f"Bearer {token}"},
                            {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
                r = await stack.client.request(method, path, headers=headers, json={})
                assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
